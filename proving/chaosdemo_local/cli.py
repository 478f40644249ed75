"""``chaosdemo-local``: the local proving ground's commands (simulated TiKV, PD and kubelets)."""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import get_args

from chaosdemo.api.models import FaultAction

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    passed_on = {"pd-sim": "chaosdemo_local.simulation.pd_sim", "bench": "chaosdemo_local.bench.benchmark",
                 "eval": "chaosdemo_local.bench.evaluation", "bench-kind": "chaosdemo_local.bench.kind_bench",
                 "bench-canary": "chaosdemo_local.bench.canary_cost"}
    if argv[:1] and argv[0] in passed_on:  # commands with parsers of their own
        return int(importlib.import_module(passed_on[argv[0]]).main(argv[1:]))
    parser = argparse.ArgumentParser(prog="chaosdemo-local", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("pd-sim", help="run the SIMULATED PD (see chaosdemo-local pd-sim --help)")
    sub.add_parser("bench", help="make bench: detection, apply-to-inject, fleets, a warm demo (see bench --help)")
    sub.add_parser("eval", help="make eval: the diagnosis benchmark: rules, and Claude or its STAND-IN")
    sub.add_parser("bench-kind", help="make bench-kind: who saw each fault first on the kind tier (see --help)")
    sub.add_parser("bench-canary", help="make bench-canary: the SQL canary's CPU and memory in the operator")
    fc = sub.add_parser("fake-claude", help="run the local Anthropic-compatible test endpoint")
    fc.add_argument("--host", default="127.0.0.1")
    fc.add_argument("--port", type=int, required=True)
    demo = sub.add_parser("demo", help="the whole story on the local tier, as `make demo` runs it")
    demo.add_argument("--action", default="pod-delete", choices=["pod-delete", "pod-kill", "node-kill"])
    demo.add_argument("--time-scale", type=float, default=0.25,
                      help="PD/TiKV time multiplier for the simulation (1 = real time)")
    demo.add_argument("--keep", action="store_true", help="leave the environment running at the end")
    kd = sub.add_parser("kind-demo", help="the demo on a real kind cluster built here (no registry needed)")
    kd.add_argument("--action", default="pod-delete", choices=list(get_args(FaultAction)))
    kd.add_argument("--keep", action="store_true", help="leave the cluster running at the end")
    up = sub.add_parser("up", help="start the environment and print how to use it; Ctrl-C stops it")
    up.add_argument("--time-scale", type=float, default=1.0)
    args = parser.parse_args(argv)
    if args.command == "fake-claude":
        from chaosdemo_local.simulation.fake_claude import main as fc_main

        fc_main(args.host, args.port)
        return 0
    if args.command == "kind-demo":
        from chaosdemo_local.kind.env import run_kind_demo

        return run_kind_demo(action=args.action, keep=args.keep)
    from chaosdemo_local.demo import run_demo, run_up

    if args.command == "demo":
        return run_demo(action=args.action, time_scale=args.time_scale, keep=args.keep)
    return run_up(time_scale=args.time_scale)


if __name__ == "__main__":
    raise SystemExit(main())
