"""The CLI's sub-commands but merge (kvcert.ctl.merge): status, csr, renew, retry, cancel,
inspect secret. Each takes a Cluster and the parsed arguments (kvcert.ctl.parser), prints, and
returns an exit code (kvcert.ctl), or raises CtlError.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from kvcert.api.lifecycle import RENEW_ANNOTATION, RETRY_ANNOTATION
from kvcert.ctl import OK, REFUSED, CtlError, status
from kvcert.ctl.kubeclient import Cluster, event_time
from kvcert.ctl.merge import pending_csr
from kvcert.ctl.x509facts import csr_facts, load_csr, secret_facts

Command = Callable[[Cluster, argparse.Namespace], int]
COMMANDS = ("status", "csr", "merge", "renew", "retry", "cancel", "inspect")


def _print(facts: Any, output: str, text: Callable[[], str]) -> None:
    if output == "json":
        print(json.dumps(facts, indent=2, default=str))
    elif output == "yaml":
        print(yaml.safe_dump(facts, sort_keys=False), end="")
    else:
        print(text(), end="")


def _secret_facts(secret: client.V1Secret) -> dict[str, Any]:
    data: dict[str, str] = {k: str(v) for k, v in (secret.data or {}).items()}
    return secret_facts(secret.type or "Opaque", data)


def run_status(cluster: Cluster, args: argparse.Namespace) -> int:
    body = cluster.certificate(args.name)
    secret_name = (body.get("spec") or {}).get("secretName")
    secret = cluster.secret_or_none(secret_name) if secret_name else None
    events = [
        {
            "type": e.type,
            "reason": e.reason,
            "message": e.message,
            "count": e.count,
            "time": event_time(e),
        }
        for e in cluster.events(args.name)
    ]
    facts = status.status_facts(body, _secret_facts(secret) if secret is not None else None, events)
    now = datetime.now(UTC)
    _print(facts, args.output, lambda: status.render(facts, now))
    return OK


def run_csr(cluster: Cluster, args: argparse.Namespace) -> int:
    pem = pending_csr(cluster, args.name)
    facts = csr_facts(load_csr(pem))
    if args.out:
        Path(args.out).write_text(pem)
        print(f"wrote the CSR of {args.name} to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(pem if pem.endswith("\n") else pem + "\n")
    print(f"subject: {facts['subject']}", file=sys.stderr)
    print(f"SANs:    {', '.join(facts['sans']) or '-'}", file=sys.stderr)
    return OK


def run_request(cluster: Cluster, args: argparse.Namespace) -> int:
    """renew / retry: set the annotation to the time now (a new value each time); cancel:
    spec.cancel true."""
    where = f"{cluster.namespace}/{args.name}"
    existing = (cluster.certificate(args.name).get("spec") or {}).get("source") == "Existing"
    if existing and args.command != "renew":
        # Refused here, with the reason, rather than by the API server's rule (issue #19 §3).
        raise CtlError(
            f"Certificate {where} has source: Existing: kvcert only delivers it and never asks"
            f" Key Vault for anything, so there is nothing to {args.command}; do it in Key"
            " Vault, or set source: Managed (with adopt: true) to let kvcert manage it",
            REFUSED,
        )
    if args.command == "cancel":
        body = cluster.patch_certificate(args.name, {"spec": {"cancel": True}})
        op = (body.get("status") or {}).get("operation") or {}
        state = op.get("status") or "none"
        print(f"Certificate {where}: set spec.cancel: true (pending operation: {state})")
        if state != "inProgress":
            print("  nothing is in progress: Key Vault has nothing to cancel", file=sys.stderr)
        return OK
    annotation = RENEW_ANNOTATION if args.command == "renew" else RETRY_ANNOTATION
    value = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    cluster.patch_certificate(args.name, {"metadata": {"annotations": {annotation: value}}})
    what = "one renewal" if args.command == "renew" else "one retry"
    if existing:
        what = "a look at Key Vault now (source: Existing: kvcert delivers versions, makes none)"
    print(f"Certificate {where}: asked for {what} ({annotation}={value})")
    return OK


def run_inspect_secret(cluster: Cluster, args: argparse.Namespace) -> int:
    secret = cluster.secret(args.name, "check the name and -n")
    facts = {"name": args.name, "namespace": cluster.namespace, **_secret_facts(secret)}
    labels = (secret.metadata.labels or {}) if secret.metadata else {}
    facts["certificate"] = labels.get("kvcert.io/certificate")
    if not facts.get("leaf") and not facts.get("error"):
        facts["error"] = "no tls.crt"
    _print(facts, args.output, lambda: _render_secret(facts))
    return OK


def _render_secret(facts: dict[str, Any]) -> str:
    lines = [f"Secret {facts['namespace']}/{facts['name']}: {facts['type']}"]
    if facts.get("certificate"):
        lines.append(f"  Certificate: {facts['certificate']} (kvcert output)")
    lines.append(f"  Keys:        {', '.join(facts['keys']) or '-'}")
    leaf = facts.get("leaf")
    if leaf:
        lines += [
            f"  Subject:     {leaf['subject']}",
            f"  SANs:        {', '.join(leaf['sans']) or '-'}",
            f"  Issuer:      {leaf['issuer']}",
            f"  Serial:      {leaf['serialNumber']}",
            f"  x5t:         {leaf['x5t']}",
            f"  Valid:       {leaf['notBefore']} to {leaf['notAfter']}",
            f"  Chain:       {facts['chainLength']} certificate(s)",
        ]
    if facts.get("error"):
        lines.append(f"  Error:       {facts['error']}")
    said = {True: "yes", False: "NO: tls.key is not the leaf's key", None: "unknown (no key)"}
    lines.append(f"  Key matches leaf: {said[facts['keyMatchesLeaf']]}")
    return "\n".join(lines) + "\n"
