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
from kvcert.ctl import FAILED, OK, REFUSED, CtlError, status
from kvcert.ctl.kubeclient import Cluster, event_time
from kvcert.ctl.merge import pending_csr, refuse_existing
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
    body = cluster.certificate(args.name)
    spec = body.get("spec") or {}
    existing = spec.get("source") == "Existing"
    if existing and args.command != "renew":
        refuse_existing(body, args.name, args.command)
    state = ((body.get("status") or {}).get("operation") or {}).get("status") or "none"
    if args.command == "cancel" and state != "inProgress":
        raise CtlError(
            f"Certificate {where}: nothing is in progress (pending operation: {state}), so"
            " there is nothing to cancel: nothing written",
            REFUSED,
        )
    if args.command != "cancel" and spec.get("cancel"):
        raise CtlError(
            f"Certificate {where} has spec.cancel: true, and no new request is made while it"
            f" is: set it to false first (kubectl -n {cluster.namespace} patch kvcert"
            f' {args.name} --type merge -p \'{{"spec":{{"cancel":false}}}}\'), or in'
            " Git if it comes from there",
            REFUSED,
        )
    if args.command == "cancel":
        cluster.patch_certificate(args.name, {"spec": {"cancel": True}})
        print(f"Certificate {where}: set spec.cancel: true (pending operation: {state})")
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
    return FAILED if facts.get("error") else OK


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
