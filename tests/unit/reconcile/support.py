"""Builders for reconcile tests: bodies, observations, and a fake world that plays the handler.

The fake world performs actions the way the handler and Key Vault would (a Self request
completes on its first poll, a manual one on merge), so that whole flows, and their cost, can be
checked without any I/O.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from kvcert.reconcile import (
    NOT_FOUND,
    Action,
    CallError,
    CancelOperation,
    CreateCertificate,
    Decision,
    DeleteCertificate,
    DeletePendingOperation,
    Emit,
    ImportCertificate,
    Input,
    MergeChain,
    ObservedCertificate,
    ObservedOperation,
    OperationStatus,
    ReadCertificate,
    ReadImportSecret,
    ReadMergeSecret,
    ReadOperation,
    ReadSecret,
    RecordIntent,
    RecoverCertificate,
    SecretFacts,
    SourceFacts,
    WriteCsrConfigMap,
    WriteSecret,
    reconcile,
    settle,
)
from kvcert.reconcile.operation import (
    INTENT_TAG,
    MANAGED_BY,
    MANAGED_BY_TAG,
    OWNER_TAG,
    UID_TAG,
    policy_hash,
)
from kvcert.reconcile.patch import apply_merge_patch

NOW = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)
UID = "0b8f2a3c-1111-2222-3333-444455556666"
CSR = "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n"
OURS = {MANAGED_BY_TAG: MANAGED_BY, UID_TAG: UID, OWNER_TAG: "team-a/web", INTENT_TAG: "m0"}
FOREIGN = {"owner": "someone-else"}


def spec(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "vaultRef": {"name": "main"},
        "secretName": "web-tls",
        "policy": {
            "issuer": {"name": "Self"},
            "subject": "CN=web.example.com",
            "dnsNames": ["web.example.com"],
            "key": {"type": "EC", "curve": "P-256"},
        },
    }
    base.update(overrides)
    return {key: value for key, value in base.items() if value is not None}


def body(
    status: dict[str, Any] | None = None,
    *,
    generation: int = 1,
    deleting: bool = False,
    **spec_overrides: Any,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": "web",
        "namespace": "team-a",
        "uid": UID,
        "generation": generation,
    }
    if deleting:
        metadata["deletionTimestamp"] = "2026-11-22T12:00:00Z"
    return {
        "apiVersion": "kvcert.io/v1alpha1",
        "kind": "Certificate",
        "metadata": metadata,
        "spec": spec(**spec_overrides),
        "status": status or {},
    }


def make(raw: dict[str, Any] | None = None, **facts: Any) -> Input:
    facts.setdefault("now", NOW)
    facts.setdefault("marker", "m1")
    return Input.from_body(raw or body(), **facts)


def op(status: str = "inProgress", request_id: str = "r1", **kw: Any) -> ObservedOperation:
    kw.setdefault("issuer_name", "Self")
    return ObservedOperation(request_id=request_id, status=OperationStatus.parse(status), **kw)


def cert(version: str = "v1", x5t: str | None = "x5t-1", **kw: Any) -> ObservedCertificate:
    kw.setdefault("tags", dict(OURS))
    kw.setdefault("enabled", x5t is not None)
    return ObservedCertificate(
        id=f"https://kv.example.vault.azure.net/certificates/web/{version}",
        version=version,
        x5t=x5t,
        serial_number="0A1B",
        not_before=NOW,
        not_after=NOW + timedelta(days=365),
        **kw,
    )


def intent(generation: int = 1, marker: str = "m0", **kw: Any) -> dict[str, Any]:
    """A recorded create intent for the default spec (its policy hash computed for real)."""
    probe = make()
    assert not isinstance(probe.spec, type(None))
    value: dict[str, Any] = {
        "generation": generation,
        "marker": marker,
        "action": "create",
        "policyHash": policy_hash(probe, probe.spec),  # type: ignore[arg-type]
        "recordedAt": "2026-11-22T11:59:00Z",
    }
    value.update(kw)
    return value


def ready_status(**operation: Any) -> dict[str, Any]:
    """The status of a Certificate issued and delivered as version v1."""
    return {
        "observedGeneration": 1,
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Issued",
                "observedGeneration": 1,
                "lastTransitionTime": "2026-11-22T11:00:00Z",
            },
        ],
        "operation": {"requestId": "r1", "status": "completed", "intent": intent(), **operation},
        "certificate": {"id": "https://kv/certificates/web/v1", "version": "v1", "x5t": "x5t-1"},
    }


def kinds(decision: Decision) -> list[str]:
    return [type(action).__name__ for action in decision.actions]


def condition(patch: dict[str, Any], type_: str = "Ready") -> dict[str, Any] | None:
    for item in patch.get("conditions") or []:
        if item["type"] == type_:
            return dict(item)
    return None


def events(decision: Decision) -> list[tuple[str, str]]:
    return [(event.type, event.reason) for event in decision.events]


@dataclass
class World:
    """Key Vault and the cluster as the handler sees them, plus a ledger of what it cost."""

    raw: dict[str, Any]
    issuer: str = "Self"
    pending: ObservedOperation | None = None
    certificate: ObservedCertificate | None = None
    secret: SecretFacts = field(default_factory=SecretFacts.absent)
    merge_source: SourceFacts | None = None
    calls: Counter[str] = field(default_factory=Counter)
    status_writes: int = 0
    emitted: list[Emit] = field(default_factory=list)
    written_text: list[str] = field(default_factory=list)
    requests: int = 0
    crash_after: str | None = None
    refuse_status_writes: bool = False
    soft_deleted: bool = False
    """The name is soft-deleted: creates meet 409 ObjectIsDeletedButRecoverable until recovered."""

    def write_status(self, patch: dict[str, Any]) -> None:
        self.status_writes += 1
        self.written_text.append(json.dumps(patch))
        self.raw["status"] = apply_merge_patch(self.raw.get("status") or {}, patch)

    def perform(self, action: Action) -> object:
        self.calls[type(action).__name__] += 1
        match action:
            case RecordIntent():
                if self.refuse_status_writes:
                    return CallError(500, "InternalError", "etcd is unhappy")
                self.write_status(dict(action.patch))
                return None
            case CreateCertificate():
                if self.soft_deleted:
                    return CallError(
                        409,
                        "Conflict",
                        "Certificate web is currently in a deleted but recoverable state",
                        inner_code="ObjectIsDeletedButRecoverable",
                    )
                if self.pending is not None and self.pending.status is OperationStatus.IN_PROGRESS:
                    return CallError(409, "Conflict", "A new key vault certificate can not be ...")
                self.requests += 1
                self.pending = ObservedOperation(
                    request_id=f"r{self.requests}",
                    status=OperationStatus.IN_PROGRESS,
                    issuer_name=self.issuer,
                    csr_pem=CSR,
                    retry_after=10.0,
                )
                self.certificate = cert(
                    version=f"v{self.requests}", x5t=None, tags=dict(action.tags)
                )
                return self.pending
            case ReadOperation():
                if self.pending is None:
                    return CallError(
                        404, "PendingCertificateNotFound", "Pending certificate not found"
                    )
                if self.issuer == "Self" and self.pending.status is OperationStatus.IN_PROGRESS:
                    self._complete()
                return self.pending
            case ReadCertificate():
                if self.soft_deleted:
                    return CallError(404, "CertificateNotFound", "not found")
                return self.certificate or CallError(404, "CertificateNotFound", "not found")
            case RecoverCertificate():
                if not self.soft_deleted:
                    return CallError(404, "CertificateNotFound", "Deleted Certificate not found")
                self.soft_deleted = False
                self.certificate = self.certificate or cert(tags=dict(FOREIGN))
                return self.certificate
            case ReadSecret():
                return self.secret
            case WriteSecret():
                self.secret = SecretFacts(True, True, action.x5t, action.version)
                return None
            case WriteCsrConfigMap():
                return None
            case ReadMergeSecret():
                return self.merge_source or SourceFacts.absent()
            case MergeChain():
                assert self.pending is not None
                self._complete()
                return self.certificate
            case CancelOperation() | DeletePendingOperation() | DeleteCertificate():
                return self.pending
            case ImportCertificate() | ReadImportSecret():
                raise NotImplementedError
            case Emit():
                self.emitted.append(action)
                return None
        raise AssertionError(action)

    def _complete(self) -> None:
        assert self.pending is not None
        assert self.certificate is not None
        self.pending = replace(self.pending, status=OperationStatus.COMPLETED, target="t")
        self.certificate = replace(
            self.certificate, enabled=True, x5t=f"x5t-{self.certificate.version}"
        )

    def reconcile_once(self, *, now: datetime = NOW, marker: str = "m1") -> Decision:
        """What the handler does for one event or timer tick: the operator's own loop
        (kvcert.reconcile.settle), run against this world, then the final status write."""

        async def perform(_: Decision, action: Action) -> object:
            result = self.perform(action)
            if self.crash_after == type(action).__name__:
                self.crash_after = None
                raise Crash
            return result

        inp = Input.from_body(self.raw, now=now, marker=marker)
        decision = asyncio.run(settle(inp, perform)).decision
        if decision.status_patch:
            self.write_status(dict(decision.status_patch))
        return decision


class Crash(Exception):
    """The operator died right after an action."""


def not_found() -> str:
    return NOT_FOUND


def assert_transition(inp: Input, expected: list[str], ready: tuple[str, str] | None) -> None:
    """One row of a transition table: the actions decided, and Ready as it would be written
    (by the intent write when there is one, else by the final status patch)."""
    decision = reconcile(inp)
    assert kinds(decision) == expected
    if ready is not None:
        patch = next(
            (dict(a.patch) for a in decision.actions if isinstance(a, RecordIntent)),
            dict(decision.status_patch),
        )
        got = condition(patch) or {}
        assert (got.get("status"), got.get("reason")) == ready
