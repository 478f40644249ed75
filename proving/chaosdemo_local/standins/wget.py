"""``wget -qO- -T SECONDS URL`` of the stand-in images, the one call tidb-operator's start scripts make.

PD's start script asks tidb-operator's discovery service for its first
arguments with it, and prints what comes back into PD's command line. This
prints the body of a 2xx answer and exits 0; anything else exits 1, so the
script's ``until`` loop asks again, as it does with wget.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    timeout, urls = 900.0, []
    while args:
        a = args.pop(0)
        if a == "-T" and args:
            timeout = float(args.pop(0))
        elif a.startswith("-T") and a[2:]:
            timeout = float(a[2:])
        elif not a.startswith("-"):
            urls.append(a)
    if len(urls) != 1:
        print("usage: wget -qO- [-T SECONDS] URL", file=sys.stderr)
        return 2
    try:
        with urllib.request.urlopen(urls[0], timeout=timeout) as r:
            sys.stdout.buffer.write(r.read())
    except (urllib.error.URLError, OSError, ValueError) as e:
        print(f"wget: {urls[0]}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
