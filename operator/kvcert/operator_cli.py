"""`kvcert operator run`: the operator process (kopf), in a cluster or against KUBECONFIG."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from kvcert.runtime.settings import LOG_LEVELS, OperatorSettings


def register(commands: Any) -> None:
    operator = commands.add_parser("operator", help="the Kubernetes operator")
    sub = operator.add_subparsers(dest="operator_command", required=True)
    run = sub.add_parser("run", help="run the operator until stopped")
    run.add_argument(
        "--namespace",
        "-n",
        action="append",
        default=[],
        help="watch only this namespace (repeatable); default: all namespaces",
    )
    run.add_argument("--kubeconfig", help="kubeconfig file (default: in-cluster or KUBECONFIG)")
    run.add_argument(
        "--liveness", help="serve kopf's liveness endpoint, e.g. http://0.0.0.0:8080/healthz"
    )
    run.add_argument(
        "--readiness",
        help="serve readiness (200 once every watched kind can be listed), "
        "e.g. http://0.0.0.0:8081/readyz",
    )
    run.add_argument("--log-level", choices=LOG_LEVELS, default="info", help="default: info")
    run.add_argument("--verbose", "-v", action="store_true", help="same as --log-level debug")
    run.set_defaults(run=run_operator)


def run_operator(args: argparse.Namespace) -> int:
    level = "debug" if args.verbose else args.log_level
    try:
        settings = OperatorSettings.load(
            namespaces=args.namespace,
            liveness=args.liveness,
            readiness=args.readiness,
            log_level=level,
        )
    except ValueError as error:
        print(f"kvcert operator run: {error}", file=sys.stderr)
        return 2
    if args.kubeconfig:
        os.environ["KUBECONFIG"] = args.kubeconfig
        # The kubernetes client (which kopf logs in with) reads KUBECONFIG when it is first
        # imported, which may already have happened: tell it directly.
        from kubernetes.config import kube_config  # noqa: PLC0415

        kube_config.KUBE_CONFIG_DEFAULT_LOCATION = args.kubeconfig
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("kubernetes.client.rest", "urllib3", "httpx", "httpcore", "azure"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    import kopf  # noqa: PLC0415 - kopf is heavy; the vault and dev commands do not need it

    import kvcert.handlers  # noqa: F401, PLC0415 - registers the handlers

    kopf.run(
        standalone=True,
        clusterwide=settings.clusterwide,
        namespaces=list(settings.namespaces),
        liveness_endpoint=settings.liveness,
        memo=kopf.Memo(settings=settings),
    )
    return 0
