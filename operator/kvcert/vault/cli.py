"""`kvcert vault ...` sub-commands."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import uvicorn

from kvcert.vault import tls
from kvcert.vault.app import create_app
from kvcert.vault.profiles import PROFILES
from kvcert.vault.service import VaultService
from kvcert.vault.store import Store


def register(commands: Any) -> None:
    vault = commands.add_parser("vault", help="the local Key Vault certificates service")
    sub = vault.add_subparsers(dest="vault_command", required=True)
    serve = sub.add_parser("serve", help="serve the local Key Vault over HTTPS")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8443, help="port to listen on")
    serve.add_argument("--data-dir", required=True, type=Path, help="state and TLS files")
    tokens = serve.add_mutually_exclusive_group()
    tokens.add_argument(
        "--token",
        default=None,
        help="the only bearer token accepted (visible in ps: prefer --token-file)",
    )
    tokens.add_argument(
        "--token-file",
        type=Path,
        default=None,
        help="read the token from this file (e.g. a Secret)",
    )
    serve.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default="documented",
        help="documented (service documentation) or service (live service)",
    )
    serve.add_argument(
        "--hostname",
        action="extend",
        nargs="+",
        default=[],
        metavar="NAME",
        help="extra names in the server certificate (--hostname a b, or repeat the option)",
    )
    serve.add_argument(
        "--ca-delay",
        type=float,
        default=20.0,
        help="seconds the simulated CA takes to sign (default 20)",
    )
    serve.set_defaults(run=serve_command)


def serve_command(args: argparse.Namespace) -> int:
    """Build the service from the data directory and serve it with uvicorn until stopped."""
    data_dir: Path = args.data_dir
    files = tls.ensure(data_dir, list(args.hostname), time.time())
    store = Store(data_dir / "vault.sqlite3")
    service = VaultService(store, PROFILES[args.profile], ca_delay=args.ca_delay)
    token = args.token
    if args.token_file is not None:
        try:
            token = args.token_file.read_text().strip()
        except OSError as error:
            print(f"kvcert vault: cannot read --token-file: {error.strerror}", file=sys.stderr)
            return 2
        if not token:
            print(f"kvcert vault: --token-file {args.token_file} is empty", file=sys.stderr)
            return 2
    app = create_app(service, token=token)
    print(
        f"kvcert vault: https://{args.host}:{args.port} profile={args.profile} ca={files.ca}",
        file=sys.stderr,
        flush=True,
    )
    try:
        uvicorn.run(
            app,
            host=args.host,
            port=args.port,
            ssl_certfile=str(files.cert),
            ssl_keyfile=str(files.key),
            log_level="warning",
            access_log=False,
            # idle keep-alive TLS connections would otherwise hold a stop for the close_notify
            timeout_graceful_shutdown=1,
        )
    finally:
        store.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m kvcert.vault serve ...`: the same command without the rest of `kvcert`."""
    parser = argparse.ArgumentParser(prog="kvcert")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["vault", *(sys.argv[1:] if argv is None else argv)])
    return int(args.run(args))
