"""The ``chaosdemo`` command: run the operator, print the CRD it serves, follow demos, or score a diagnosis engine.

``chaosdemo watch|list|report`` is the kubectl plugin (``kubectl chaosdemo ...``) under this name.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chaosdemo.core.scoring import Outcome

__all__ = ["main"]


PLUGIN_COMMANDS = ("watch", "list", "report")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in PLUGIN_COMMANDS:
        from chaosdemo.plugin.cli import main as plugin

        return plugin(argv, prog="chaosdemo")
    parser = argparse.ArgumentParser(prog="chaosdemo", description=__doc__,
                                     epilog="Also: chaosdemo watch NAME | list [-A] | report NAME (kubectl chaosdemo)")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the operator (all namespaces unless --namespace is given)")
    run.add_argument("-n", "--namespace", action="append", default=[], help="watch only this namespace")
    run.add_argument("--liveness", default=None, help="serve a liveness probe, e.g. http://0.0.0.0:8080/healthz")
    run.add_argument("-v", "--verbose", action="store_true")
    sub.add_parser("crd", help="print the ChaosDemo CustomResourceDefinition (YAML)")
    ev = sub.add_parser("eval", help="score a diagnosis engine over a corpus of recorded cases (docs/diagnosis.md)")
    ev.add_argument("--corpus", type=Path, default=Path("tests/data/diagnosis-corpus"))
    ev.add_argument("--engine", choices=["rules", "claude"], default=None,
                    help="default: claude when ANTHROPIC_API_KEY is set, else rules")
    ev.add_argument("--model", default=None, help="Claude model (default: CHAOSDEMO_CLAUDE_MODEL's)")
    ev.add_argument("--min-graded", type=float, default=None, metavar="SHARE",
                    help="exit 1 when the share of cases graded right (0 to 1) is below this")
    ev.add_argument("--label", default="", help="the engine's name in the report (e.g. 'STAND-IN, not Claude')")
    ev.add_argument("--json", type=Path, default=None, help="also write the whole report, every case, here")
    args = parser.parse_args(argv)

    if args.command == "crd":
        from chaosdemo.api.crd import render_crd

        sys.stdout.write(render_crd())
        return 0
    if args.command == "eval":
        return evaluate(args)

    import kopf

    import chaosdemo.edge.handlers  # noqa: F401  (registers the handlers)

    kopf.configure(verbose=args.verbose)
    kopf.run(
        clusterwide=not args.namespace,
        namespaces=args.namespace,
        standalone=True,
        liveness_endpoint=args.liveness,
        memo=kopf.Memo(namespaces=tuple(args.namespace)),  # what the handlers serve: the watchdog looks only there
    )
    return 0


def evaluate(args: argparse.Namespace) -> int:
    import asyncio
    import json

    from chaosdemo.api.settings import Settings
    from chaosdemo.clients.metrics import Metrics
    from chaosdemo.core.scoring import render, report
    from chaosdemo.edge.wiring import claude_from
    from chaosdemo.service.evaluate import ask_claude, load_corpus, run_rules

    settings = Settings.from_env()
    cases = load_corpus(args.corpus)
    engine = args.engine or ("claude" if settings.anthropic_api_key is not None else "rules")
    if engine == "rules":
        if args.engine is None:
            print("ANTHROPIC_API_KEY is not set: Claude is not run, the rules engine is scored. `make eval` also "
                  "runs the cases against the local Anthropic-compatible STAND-IN, to prove the plumbing.",
                  file=sys.stderr)
        outcomes = run_rules(cases)
        name = args.label or "rules"
    else:
        claude = claude_from(settings, Metrics())
        if claude is None:
            print("--engine claude needs ANTHROPIC_API_KEY (and ANTHROPIC_BASE_URL for another endpoint)",
                  file=sys.stderr)
            return 2
        model = args.model or settings.claude_model

        async def ask() -> list[Outcome]:
            try:
                return await ask_claude(cases, claude, model)
            finally:
                await claude.aclose()

        outcomes = asyncio.run(ask())
        name = f"{args.label or 'claude'} ({model})"
    rep = report(outcomes, name)
    print(f"{len(cases)} cases from {args.corpus}\n\n{render(rep)}")
    if args.json is not None:
        args.json.write_text(json.dumps(rep, indent=1) + "\n")
    graded = rep["overall"]["graded"] or 0.0
    if args.min_graded is not None and graded < args.min_graded:
        print(f"graded {graded:.1%} < --min-graded {args.min_graded:.1%}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
