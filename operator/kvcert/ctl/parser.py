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


def _connection(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    """-n/--namespace, --context, --kubeconfig, stored as `{prefix}namespace` and so on.
    Before the command they use the prefix "before_" (argparse's sub-parsers write their own
    defaults over the parent's same-named ones, and the operator's own `run` has --kubeconfig
    and --namespace of its own)."""
    group = parser.add_argument_group("cluster")
    group.add_argument(
        "-n",
        "--namespace",
        dest=f"{prefix}namespace",
        metavar="NAMESPACE",
        help="default: the context's namespace, else default",
    )
    group.add_argument(
        "--context",
        dest=f"{prefix}context",
        metavar="CONTEXT",
        help="kubeconfig context (default: the current one)",
    )
    group.add_argument(
        "--kubeconfig",
        dest=f"{prefix}kubeconfig",
        metavar="PATH",
        help="default: KUBECONFIG, else ~/.kube/config",
    )


BEFORE = "before_"
COMMANDS = ("status", "csr", "merge", "renew", "retry", "cancel", "inspect")
CONNECTION = ("namespace", "context", "kubeconfig")


def add_connection(parser: argparse.ArgumentParser) -> None:
    """The connection flags before the command, as kubectl takes them (`kvcert -n ns status
    web`, `kubectl kvcert -n ns status web`); those after the command win."""
    _connection(parser, BEFORE)


def check_connection(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Exit 2 (argparse's usage error) when connection flags came before a command that does
    not take them (operator, vault, dev): they would be silently ignored otherwise."""
    given = [name for name in CONNECTION if getattr(args, BEFORE + name, None) is not None]
    if given and getattr(args, "command", None) not in COMMANDS:
        flags = ", ".join(f"--{name}" for name in given)
        parser.error(f"{flags} before the command is for {', '.join(COMMANDS)}")


def _flag(args: argparse.Namespace, name: str) -> str | None:
    value = getattr(args, name, None)
    return value if value is not None else getattr(args, BEFORE + name, None)


def _output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o", "--output", choices=("text", "json", "yaml"), default="text", help="default: text"
    )


def register(commands: Any) -> None:
    """Add status, csr, merge, renew, retry, cancel and inspect to a sub-parsers action."""
    parent = argparse.ArgumentParser(add_help=False)
    _connection(parent)

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
            _flag(args, "kubeconfig"), _flag(args, "context"), _flag(args, "namespace")
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
    add_connection(parser)
    register(parser.add_subparsers(dest="command", required=True))
    return parser


def plugin_main(argv: Sequence[str] | None = None) -> int:
    """`kubectl-kvcert`: the same commands, as the kubectl plugin `kubectl kvcert`."""
    args = build_plugin_parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    return run(args)
