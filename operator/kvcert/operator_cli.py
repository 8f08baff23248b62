"""`kvcert operator run`: the operator process (kopf), in a cluster or against KUBECONFIG."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from kvcert.runtime import crashpoints, logs
from kvcert.runtime.logs import LOG_FORMATS
from kvcert.runtime.settings import DEFAULT_LEASE_NAME, LOG_LEVELS, OperatorSettings


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
    run.add_argument(
        "--metrics",
        help="serve Prometheus metrics, e.g. http://0.0.0.0:9402/metrics; default: none",
    )
    run.add_argument("--log-level", choices=LOG_LEVELS, default="info", help="default: info")
    run.add_argument("--verbose", "-v", action="store_true", help="same as --log-level debug")
    run.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default="text",
        help="text, or json: one JSON object per line (time, level, logger, message, and "
        "namespace, name, reason, requestId when known); default: text",
    )
    election = run.add_argument_group(
        "leader election", "one replica reconciles at a time, elected with a Lease"
    )
    election.add_argument(
        "--leader-elect",
        action="store_true",
        help="stand by until this process holds the Lease; exit when it is lost",
    )
    election.add_argument(
        "--leader-election-namespace",
        help="the Lease's namespace "
        "(default: POD_NAMESPACE / KVCERT_NAMESPACE, else kvcert-system)",
    )
    election.add_argument(
        "--lease-name", default=DEFAULT_LEASE_NAME, help=f"default: {DEFAULT_LEASE_NAME}"
    )
    for flag, default, meaning in (
        ("--lease-duration", 15, "seconds a standby waits after the last renewal it saw"),
        ("--renew-deadline", 10, "seconds the leader may fail to renew before it exits"),
        ("--retry-period", 2, "seconds between attempts to acquire or renew"),
    ):
        election.add_argument(flag, type=int, default=default, help=f"{meaning}; default {default}")
    run.set_defaults(run=run_operator)


def run_operator(args: argparse.Namespace) -> int:
    level = "debug" if args.verbose else args.log_level
    try:
        settings = OperatorSettings.load(
            namespaces=args.namespace,
            liveness=args.liveness,
            readiness=args.readiness,
            metrics=args.metrics,
            log_level=level,
            leader_elect=args.leader_elect,
            leader_election_namespace=args.leader_election_namespace,
            lease_name=args.lease_name,
            lease_duration=args.lease_duration,
            renew_deadline=args.renew_deadline,
            retry_period=args.retry_period,
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
    logs.configure(level, args.log_format)
    crashpoints.arm(settings.crash_at)  # test-only; None (disarmed) unless KVCERT_CRASH_AT
    if settings.leader_election is not None:
        # A standby starts nothing of kopf's: it waits here, answering its probes.
        from kvcert.runtime import kubeconfig, leader  # noqa: PLC0415

        probes = [url for url in (settings.liveness, settings.readiness) if url]
        api = kubeconfig.load_api_client(args.kubeconfig)
        leader.await_leadership(settings.leader_election, api, probes, settings.metrics)
    import kopf  # noqa: PLC0415 - kopf is heavy; the vault and dev commands do not need it
    import uvloop  # noqa: PLC0415

    import kvcert.handlers  # noqa: F401, PLC0415 - registers the handlers

    # uvloop, as kopf's own CLI runs it when installed: its TLS and socket paths are native
    # code, where asyncio's TLS is Python per read and write (issue #17: a third of the
    # operator's CPU was in the transports of its Kubernetes and Key Vault calls).
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        kopf.run(
            loop=runner.get_loop(),
            standalone=True,
            clusterwide=settings.clusterwide,
            namespaces=list(settings.namespaces),
            liveness_endpoint=settings.liveness,
            memo=kopf.Memo(settings=settings),
        )
    return 0
