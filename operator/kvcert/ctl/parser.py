"""The CLI's arguments: registration on `kvcert` (kvcert.cli) and the `kubectl-kvcert` entry
point. Cheap to import: the commands (kubernetes, cryptography, pydantic) load only when one runs.

Exit codes: kvcert.ctl (0 ok, 1 failed/timeout, 2 usage, 3 not found, 4 refused locally,
5 API server error).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from kvcert import __version__
from kvcert.ctl import EXIT_CODES_HELP, CtlError

RENEW_ANNOTATION = "kvcert.io/renew"
RETRY_ANNOTATION = "kvcert.io/retry"
"""kvcert.api.lifecycle's, spelled here so that --help does not load the models (a unit test
checks they agree)."""
DEFAULT_TIMEOUT = 300.0
"""Seconds `merge` waits for Ready by default."""


def _connection(parser: argparse.ArgumentParser, default: Any = None) -> None:
    """-n/--namespace, --context, --kubeconfig. The sub-commands' copies default to SUPPRESS, so
    that the plugin's own (before the command, as `kubectl kvcert -n team-a status web`) are
    not overwritten by a sub-command's defaults (argparse's sub-parsers write their defaults
    over the parent's)."""
    group = parser.add_argument_group("cluster")
    group.add_argument(
        "-n",
        "--namespace",
        default=default,
        help="default: the context's namespace, else default",
    )
    group.add_argument(
        "--context", default=default, help="kubeconfig context (default: the current one)"
    )
    group.add_argument(
        "--kubeconfig", default=default, help="default: KUBECONFIG, else ~/.kube/config"
    )


def _output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o", "--output", choices=("text", "json", "yaml"), default="text", help="default: text"
    )


def register(commands: Any) -> None:
    """Add status, csr, merge, renew, retry, cancel and inspect to a sub-parsers action."""
    parent = argparse.ArgumentParser(add_help=False)
    _connection(parent, argparse.SUPPRESS)

    def add(name: str, run: str, help_: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = commands.add_parser(
            name, parents=[parent], help=help_, description=help_, epilog=EXIT_CODES_HELP
        )
        parser.set_defaults(run=lambda args: _run(run, args))
        return parser

    parser = add("status", "run_status", "the whole story of a Certificate on one screen")
    parser.add_argument("name", help="the Certificate")
    _output(parser)

    parser = add("csr", "run_csr", "the pending CSR as PEM (subject and SANs on stderr)")
    parser.add_argument("name", help="the Certificate")
    parser.add_argument("-o", "--out", metavar="FILE", help="write the PEM here, not to stdout")

    parser = add("merge", "run_merge", "check a signed chain locally and hand it to kvcert")
    _merge_arguments(parser)

    for name, help_ in (
        ("renew", f"ask for one renewal now (sets {RENEW_ANNOTATION})"),
        ("retry", f"ask for a new create after a failure (sets {RETRY_ANNOTATION})"),
        ("cancel", "ask Key Vault to cancel the pending operation (sets spec.cancel: true)"),
    ):
        parser = add(name, "run_request", help_)
        parser.add_argument("name", help="the Certificate")

    inspect = commands.add_parser("inspect", help="decode an object", epilog=EXIT_CODES_HELP)
    kinds = inspect.add_subparsers(dest="inspect_kind", required=True)
    parser = kinds.add_parser(
        "secret",
        parents=[parent],
        help="decode an output Secret (never the key)",
        epilog=EXIT_CODES_HELP,
    )
    parser.set_defaults(run=lambda args: _run("run_inspect_secret", args))
    parser.add_argument("name", help="the Secret")
    _output(parser)


def _merge_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="the Certificate")
    parser.add_argument("--chain", required=True, metavar="FILE", help="the signed chain (PEM)")
    parser.add_argument("--no-wait", action="store_true", help="return once the Secret is written")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help=f"seconds to wait for Ready; default {DEFAULT_TIMEOUT:g}",
    )


def _run(command: str, args: argparse.Namespace) -> int:
    """Run `command` (a function name of kvcert.ctl.commands or merge) with a Cluster; a
    CtlError becomes one line on stderr and its exit code."""
    from kvcert.ctl import commands, merge  # noqa: PLC0415 - heavy: only when a command runs
    from kvcert.ctl.kubeclient import Cluster  # noqa: PLC0415

    run = getattr(merge if command == "run_merge" else commands, command)
    try:
        cluster = Cluster(
            getattr(args, "kubeconfig", None),
            getattr(args, "context", None),
            getattr(args, "namespace", None),
        )
        try:
            code: int = run(cluster, args)
        finally:
            cluster.close()
    except CtlError as error:
        print(f"kvcert: {error}", file=sys.stderr)
        return error.code
    return code


def build_plugin_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubectl kvcert",
        description=(sys.modules["kvcert.ctl"].__doc__ or "").split("\n\n")[0],
        epilog=EXIT_CODES_HELP,
    )
    parser.add_argument("--version", action="version", version=f"kubectl-kvcert {__version__}")
    _connection(parser)
    register(parser.add_subparsers(dest="command", required=True))
    return parser


def plugin_main(argv: Sequence[str] | None = None) -> int:
    """`kubectl-kvcert`: the same commands, as the kubectl plugin `kubectl kvcert`."""
    args = build_plugin_parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    return run(args)
