"""The ``chaosdemo`` command: run the operator, print the CRD it serves, or follow demos.

``chaosdemo watch|list|report`` is the kubectl plugin (``kubectl chaosdemo ...``) under this name.
"""

from __future__ import annotations

import argparse
import sys

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
    args = parser.parse_args(argv)

    if args.command == "crd":
        from chaosdemo.api.crd import render_crd

        sys.stdout.write(render_crd())
        return 0

    import kopf

    import chaosdemo.edge.handlers  # noqa: F401  (registers the handlers)

    kopf.configure(verbose=args.verbose)
    kopf.run(
        clusterwide=not args.namespace,
        namespaces=args.namespace,
        standalone=True,
        liveness_endpoint=args.liveness,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
