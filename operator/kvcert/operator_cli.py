"""`kvcert operator run`: the operator process (kopf), in a cluster or against KUBECONFIG."""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any


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
        "--liveness", help="serve a liveness endpoint, e.g. http://0.0.0.0:8080/healthz"
    )
    run.add_argument("--verbose", "-v", action="store_true", help="debug logging")
    run.set_defaults(run=run_operator)


def run_operator(args: argparse.Namespace) -> int:
    if args.kubeconfig:
        os.environ["KUBECONFIG"] = args.kubeconfig
        # The kubernetes client (which kopf logs in with) reads KUBECONFIG when it is first
        # imported, which may already have happened: tell it directly.
        from kubernetes.config import kube_config  # noqa: PLC0415

        kube_config.KUBE_CONFIG_DEFAULT_LOCATION = args.kubeconfig
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("kubernetes.client.rest", "urllib3", "httpx", "httpcore", "azure"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    import kopf  # noqa: PLC0415 - kopf is heavy; the vault and dev commands do not need it

    import kvcert.handlers  # noqa: F401, PLC0415 - registers the handlers

    kopf.run(
        standalone=True,
        clusterwide=not args.namespace,
        namespaces=list(args.namespace),
        liveness_endpoint=args.liveness,
    )
    return 0
