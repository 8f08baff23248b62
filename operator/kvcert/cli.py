"""The `kvcert` command: one entry point for the operator, the local vault and developer tools.

Each sub-command lives beside the code it drives and registers itself here, so this module
stays a table of contents.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from kvcert import __version__, operator_cli
from kvcert.ctl import parser as ctl_cli
from kvcert.devcluster import cli as devcluster_cli
from kvcert.vault import cli as vault_cli

Runner = Callable[[argparse.Namespace], int]
DESCRIPTION = (
    "kvcert: Azure Key Vault certificates as Kubernetes resources. `kvcert status NAME` tells"
    " what a Certificate is doing; `operator run` runs the operator, `vault serve` the local"
    " Key Vault, `dev up` both with a local control plane (make demo)."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kvcert", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"kvcert {__version__}")
    ctl_cli.add_connection(parser)  # as in kubectl: `kvcert -n team-a status web`
    commands = parser.add_subparsers(dest="command", required=True)
    operator_cli.register(commands)
    vault_cli.register(commands)
    devcluster_cli.register(commands)
    ctl_cli.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    ctl_cli.check_connection(parser, args)
    run: Runner = args.run
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
