"""``nslookup`` of the stand-in images: resolve a name with the pod's own resolver.

    nslookup basic-pd-0.basic-pd-peer.tidb-cluster.svc

tidb-operator's PD start script waits until ``nslookup`` finds the pod's own
name. That name is not fully qualified, so it resolves only through the
search domains of the pod's resolv.conf, which bind's nslookup (in PD's own
image) applies and busybox's does not. This one asks the C library's
resolver, which applies them, and exits non-zero when the name is not found.
"""

from __future__ import annotations

import socket
import sys


def main(argv: list[str] | None = None) -> int:
    args = [a for a in (sys.argv[1:] if argv is None else argv) if not a.startswith("-")]
    if not args:
        print("usage: nslookup NAME", file=sys.stderr)
        return 2
    name = args[0]
    try:
        found = sorted({info[4][0] for info in socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)})
    except OSError as e:
        print(f"** server can't find {name}: {e}", file=sys.stderr)
        return 1
    print(f"Name:\t{name}")
    for address in found:
        print(f"Address: {address}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
