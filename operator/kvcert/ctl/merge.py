"""`kvcert merge NAME --chain signed.pem`: check a signed chain locally, put it in the
Certificate's spec.mergeFrom Secret, and wait for the operator to merge it.

Checked before anything is written (exit 4, nothing written, when one fails): the Certificate
has spec.mergeFrom and a pending CSR; a certificate of the chain is for the CSR's public key;
every certificate on the path leaf -> issuers (kvcert.chain.order) is valid now. The Secret is
Opaque with `tls.crt` (the chain leaf first, as Key Vault's merge wants it) and labelled
`kvcert.io/source: "true"` so the operator watches it (README "Lifecycle"); an existing Secret
keeps its other keys and labels.

Then, unless --no-wait, it polls the Certificate every POLL seconds and prints one line each
time the Ready condition's reason changes, until Ready is True with the chain's leaf delivered
(status.certificate.x5t; exit 0), the merge of this chain is refused (operation.merge: result
Rejected or Forbidden, fingerprint this chain's; exit 1: the operator merges one chain once, so
writing it again would not help), or --timeout seconds pass (exit 1).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kvcert.ctl import FAILED, NOT_FOUND, OK, REFUSED, CtlError
from kvcert.ctl.kubeclient import Cluster
from kvcert.ctl.x509facts import ChainRefused, check_chain, load_csr, x5t

POLL = 1.0
"""Seconds between two reads of the Certificate while waiting."""


def _condition(body: dict[str, Any], kind: str) -> dict[str, Any]:
    for item in (body.get("status") or {}).get("conditions") or []:
        if item.get("type") == kind:
            return dict(item)
    return {}


MERGEABLE = ("inProgress", "cancelled", "failed")
"""Operation statuses whose CSR can still be signed and merged: Key Vault keeps the pending
operation after a cancel or an issuer's failure, and the operator merges a chain put in
mergeFrom then (tests/integration/operator/test_manual.py: salvage, rescue)."""


def refuse_existing(body: dict[str, Any], name: str, verb: str) -> None:
    """CtlError(REFUSED) for a source: Existing Certificate (issue #19 §3): kvcert only
    delivers it and asks Key Vault to change nothing, so there is nothing to `verb`."""
    if (body.get("spec") or {}).get("source") != "Existing":
        return
    raise CtlError(
        f"Certificate {name} has source: Existing: kvcert only delivers it and never asks Key"
        f" Vault to change anything, so there is nothing to {verb}; do it in Key Vault, or set"
        " source: Managed (with adopt: true) to let kvcert manage it",
        REFUSED,
    )


def pending_csr(cluster: Cluster, name: str) -> str:
    """The PEM CSR of the Certificate's pending operation (status in MERGEABLE), from its
    ConfigMap (csrRef, key csr.pem), else status.operation.csr. Raises CtlError(REFUSED) when
    there is none, CtlError(NOT_FOUND) when only a ConfigMap is named and it is missing."""
    body = cluster.certificate(name)
    refuse_existing(body, name, "sign or merge")
    op = (body.get("status") or {}).get("operation") or {}
    ref = (op.get("csrRef") or {}).get("name")
    issuer = (((body.get("spec") or {}).get("policy") or {}).get("issuer") or {}).get("name")
    if (issuer or "").lower() == "self":
        raise CtlError(
            f"Certificate {name} has issuer Self: Key Vault signs it itself, there is no CSR"
            " to sign (issuer Unknown is the one whose CSR a CA of your choice signs)",
            REFUSED,
        )
    if op.get("status") not in MERGEABLE or not (ref or op.get("csr")):
        state = op.get("status") or "none"
        raise CtlError(
            f"Certificate {name} has no pending CSR (operation: {state}): a CSR exists while "
            "an operation is inProgress, cancelled or failed; see kvcert status",
            REFUSED,
        )
    if ref:
        fix = "the operator publishes it; wait a moment or see kvcert status"
        try:
            data = cluster.config_map(ref, fix).data or {}
        except CtlError as error:
            if error.code != NOT_FOUND or not op.get("csr"):
                raise
            data = {}
        if data.get("csr.pem"):
            return str(data["csr.pem"])
    return str(op["csr"])


def run_merge(cluster: Cluster, args: argparse.Namespace) -> int:
    try:
        pem = Path(args.chain).read_bytes()
    except OSError as error:
        raise CtlError(
            f"cannot read {args.chain} ({error.strerror}): check --chain", NOT_FOUND
        ) from None
    body = cluster.certificate(args.name)
    refuse_existing(body, args.name, "merge")
    target = ((body.get("spec") or {}).get("mergeFrom") or {}).get("secretName")
    if not target:
        raise CtlError(
            f"Certificate {args.name} has no spec.mergeFrom: add spec.mergeFrom.secretName "
            "to its spec, then merge again",
            REFUSED,
        )
    csr = load_csr(pending_csr(cluster, args.name))
    try:
        checked = check_chain(pem, csr, datetime.now(UTC))
    except ChainRefused as error:
        raise CtlError(f"{args.chain}: {error}: nothing written", REFUSED) from None
    data = {"tls.crt": base64.b64encode(checked.pem).decode("ascii")}
    done = cluster.put_source_secret(target, data)
    extra = f", {checked.unlinked} not linked" if checked.unlinked else ""
    print(
        f"Secret {cluster.namespace}/{target} {done}: {checked.length} certificate(s) on the "
        f"path{extra}, leaf {checked.leaf.subject.rfc4514_string()}"
    )
    if args.no_wait:
        return OK
    ours = hashlib.sha256(checked.pem).hexdigest()
    return _wait(cluster, args.name, x5t(checked.leaf), ours, args.timeout)


def _wait(cluster: Cluster, name: str, leaf_x5t: str, ours: str, timeout: float) -> int:
    """Poll until Ready with `leaf_x5t` delivered (OK), the merge of this chain refused
    (FAILED), or `timeout` seconds (FAILED). `ours` is the chain's fingerprint as the operator
    records it in status.operation.merge.fingerprint: sha256, hex, of tls.crt's bytes
    (kvcert.runtime.sources.fingerprint)."""
    deadline = time.monotonic() + timeout
    shown: tuple[str, str] | None = None
    while True:
        body = cluster.certificate(name)
        status = body.get("status") or {}
        ready = _condition(body, "Ready")
        seen = (str(ready.get("status", "Unknown")), str(ready.get("reason", "")))
        if seen != shown:
            shown = seen
            message = f": {ready['message']}" if ready.get("message") else ""
            print(f"  Ready={seen[0]} {seen[1]}{message}", flush=True)
        delivered = (status.get("certificate") or {}).get("x5t")
        if seen[0] == "True" and delivered == leaf_x5t:
            print(f"Certificate {cluster.namespace}/{name} is Ready with the merged chain")
            return OK
        merge = (status.get("operation") or {}).get("merge") or {}
        refused = merge.get("result") in ("Rejected", "Forbidden")
        if refused and merge.get("fingerprint") == ours:
            detail = f": {merge['message']}" if merge.get("message") else ""
            print(
                f"kvcert: Key Vault refused the merge ({merge['result']}{detail}): see "
                f"kvcert status {name}",
                file=sys.stderr,
            )
            return FAILED
        if time.monotonic() >= deadline:
            print(
                f"kvcert: Certificate {name} not Ready after {timeout:g} s (Ready={seen[0]} "
                f"{seen[1]}): see kvcert status {name}, or wait with a longer --timeout",
                file=sys.stderr,
            )
            return FAILED
        time.sleep(POLL)
