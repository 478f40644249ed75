"""``make eval``: the diagnosis benchmark on the recorded corpus, every engine this machine can run.

The rules engine always. Claude when ANTHROPIC_API_KEY is set; without it, the same cases go to the local
Anthropic-compatible STAND-IN (``simulation/fake_claude``), labelled as such: that run proves the plumbing
(prompt, structured output, parsing, tokens, scoring), never anything about Claude.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

from chaosdemo_local.cluster.control_plane import REPO, free_port
from chaosdemo_local.reaper import die_with_parent, stop_on_signals

__all__ = ["main"]


def chaosdemo_eval(*args: str, env: dict[str, str] | None = None) -> int:
    return subprocess.run([sys.executable, "-m", "chaosdemo", "eval", *args], cwd=REPO, env=env).returncode


def standin(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-m", "chaosdemo_local.cli", "fake-claude", "--port", str(port)],
                            preexec_fn=die_with_parent)
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_requests", timeout=1).close()
            return proc
        except (urllib.error.URLError, OSError):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"the Anthropic stand-in did not start on port {port}") from None
            time.sleep(0.1)


def main(argv: list[str]) -> int:
    stop_on_signals()
    p = argparse.ArgumentParser(prog="chaosdemo-local eval", description=__doc__)
    p.add_argument("--min-graded", default=None, help="exit 1 when the rules engine or Claude grades below this")
    p.add_argument("--corpus", default="tests/data/diagnosis-corpus")
    args = p.parse_args(argv)
    common = ["--corpus", args.corpus]
    threshold = ["--min-graded", args.min_graded] if args.min_graded else []
    print("==> the rules engine", flush=True)
    rc = chaosdemo_eval("--engine", "rules", *common, *threshold)
    if os.environ.get("ANTHROPIC_API_KEY"):
        print("\n==> Claude (ANTHROPIC_API_KEY is set)", flush=True)
        return rc or chaosdemo_eval("--engine", "claude", *common, *threshold)
    print("\n==> ANTHROPIC_API_KEY is not set: Claude is not run. The same cases go to the local "
          "Anthropic-compatible STAND-IN, to prove the plumbing; its figures say nothing about Claude.", flush=True)
    port = free_port()
    proc = standin(port)
    try:
        env = {**os.environ, "ANTHROPIC_API_KEY": "stand-in-key", "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{port}"}
        # Its answers are 'unknown' by design: the user's threshold is not applied to it.
        standin_rc = chaosdemo_eval("--engine", "claude", "--label", "STAND-IN, not Claude", *common, env=env)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return rc or standin_rc
