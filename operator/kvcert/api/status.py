"""The status shapes: written only by the operator, through the status subresource.

They live beside the specs because the CRDs are generated from both. Every field is optional on
read: a status written by an older operator, or half a status after a crash, must still parse.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field
from pydantic.config import JsonDict

from kvcert.api.base import KvModel

ConditionStatus = Literal["True", "False", "Unknown"]
OperationStatusValue = Literal["inProgress", "completed", "cancelled", "failed", "deleted"]
LIST_MAP_BY_TYPE: JsonDict = {
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["type"],
}


class Condition(KvModel):
    """A Kubernetes-style condition; `lastTransitionTime` moves only when `status` flips."""

    type: str = Field(min_length=1, max_length=316)
    status: ConditionStatus
    reason: str = Field(default="", max_length=1024)
    message: str = Field(default="", max_length=32768)
    last_transition_time: datetime | None = None
    observed_generation: int | None = Field(default=None, ge=0)


class OperationError(KvModel):
    """The error Key Vault reported on a failed operation (already scrubbed and truncated)."""

    code: str = ""
    message: str = ""


class CsrRef(KvModel):
    """Where the CSR of a manual (issuer Unknown) request is published for a human or a CA."""

    kind: Literal["ConfigMap"] = "ConfigMap"
    name: str


class Intent(KvModel):
    """What the operator is about to ask Key Vault, written to status *before* it asks.

    After a crash this is what turns "create again" into "read and adopt": a pending operation
    found with an intent recorded and no request id is the one this intent started.
    """

    generation: int = Field(ge=0)
    marker: str = Field(min_length=1, max_length=64, description="client-chosen, unique")
    action: Literal["create", "import"]
    policy_hash: str | None = Field(default=None, description="digest of the policy created")
    issuance_hash: str | None = Field(
        default=None,
        description="digest of what needs a new version (the policy but lifetimeActions)",
    )
    trigger: str | None = Field(
        default=None,
        description="why: spec, renewBefore, renew (kvcert.io/renew), retry (kvcert.io/retry)",
    )
    source_fingerprint: str | None = Field(default=None, description="digest of the import")
    recorded_at: datetime
    previous_request_id: str | None = Field(
        default=None, description="the request id before this intent, to tell old from new"
    )


class MergeAttempt(KvModel):
    """The last chain merged (or refused), so that one chain is merged once."""

    fingerprint: str
    result: Literal["Merged", "Forbidden", "Rejected"]
    operation_status: OperationStatusValue | None = None
    message: str | None = None


class OperationState(KvModel):
    """The Key Vault pending certificate operation as last observed, plus the operator's notes."""

    request_id: str | None = None
    status: OperationStatusValue | None = None
    status_details: str | None = None
    cancellation_requested: bool | None = None
    issuer: str | None = None
    csr: str | None = Field(default=None, description="PEM certificate signing request")
    csr_ref: CsrRef | None = None
    target: str | None = None
    error: OperationError | None = None
    intent: Intent | None = None
    merge: MergeAttempt | None = None
    cancel_refused: str | None = Field(
        default=None, description="why Key Vault refused the cancellation requested by spec"
    )


class CertificateInfo(KvModel):
    """The issued certificate version delivered to the output Secret (public facts only)."""

    id: str | None = None
    version: str | None = None
    x5t: str | None = None
    serial_number: str | None = None
    not_before: datetime | None = None
    not_after: datetime | None = None


class HandledRequests(KvModel):
    """The last value of each request annotation acted on: one renewal, one retry per value."""

    renew: str | None = Field(default=None, description="kvcert.io/renew")
    retry: str | None = Field(default=None, description="kvcert.io/retry")


class CertificateStatus(KvModel):
    """What the operator last observed and concluded for a Certificate."""

    observed_generation: int | None = None
    conditions: list[Condition] | None = Field(default=None, json_schema_extra=LIST_MAP_BY_TYPE)
    operation: OperationState | None = None
    certificate: CertificateInfo | None = None
    renewal_time: datetime | None = Field(
        default=None,
        description="when kvcert next looks at Key Vault for this certificate: its AutoRenew"
        " point, its renewBefore point, or its refreshInterval; for source Existing, the first"
        " look of a schedule that repeats every refreshInterval (set when the spec changes, so"
        " that an idle look costs no status write)",
    )
    handled_requests: HandledRequests | None = None
    applied_update: str | None = Field(
        default=None,
        description="digest of the lifetimeActions and tags last applied to Key Vault in place",
    )
    failed_attempts: int | None = Field(
        default=None,
        ge=0,
        description="rounds in a row that failed and are retried with exponential backoff (a"
        " Key Vault or Kubernetes call that failed, the vault not ready, an output refused, an"
        " unexpected error); absent once a round succeeds (cert-manager's failedIssuanceAttempts)",
    )
    last_failure_time: datetime | None = Field(
        default=None, description="when the last failed round ended (RFC 3339)"
    )
