"""The frozen `Input` of one reconcile: everything a decision may look at, gathered by the handler.

Observations follow one convention: `None` means "not read in this reconcile", so a decision that
needs it asks for a read; `NOT_FOUND` means "read, and Key Vault answered 404". Outcomes of the
actions performed in this reconcile are folded in with `with_outcome`, which both updates the
observations and remembers the outcome, so the next decision sees what just happened.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, TypeVar

from kvcert.api.base import InvalidResource, ObjectMeta, section
from kvcert.api.certificate import Certificate, CertificateSpec, parse_certificate_status
from kvcert.api.status import CertificateStatus
from kvcert.reconcile.facts import SecretFacts, SourceFacts, VaultFacts
from kvcert.reconcile.observed import (
    NOT_FOUND,
    NotFound,
    ObservedCertificate,
    ObservedOperation,
    OperationStatus,
)
from kvcert.reconcile.outcomes import (
    CancelRequested,
    CertificateDeleted,
    CertificateRead,
    Created,
    Imported,
    ImportSecretRead,
    Merged,
    MergeSecretRead,
    OperationRead,
    Outcome,
    PendingDeleted,
    Recovered,
    SecretRead,
    SecretWritten,
    StatusWritten,
)
from kvcert.reconcile.patch import apply_merge_patch

_O = TypeVar("_O")


@dataclass(frozen=True)
class InvalidSpec:
    """The spec did not parse; `message` names fields and rules, never values."""

    message: str


@dataclass(frozen=True)
class Input:
    """One Certificate and what is known about its world right now."""

    meta: ObjectMeta
    spec: CertificateSpec | InvalidSpec
    status: CertificateStatus
    now: datetime
    marker: str
    """Client-chosen and unique (e.g. uuid4().hex): names a new intent if one is recorded."""
    vault: VaultFacts = field(default_factory=VaultFacts)
    operation: ObservedOperation | NotFound | None = None
    certificate: ObservedCertificate | NotFound | None = None
    secret: SecretFacts | None = None
    merge_secret: SourceFacts | None = None
    import_secret: SourceFacts | None = None
    jitter: float = 0.5
    """Uniform in [0, 1), drawn by the handler: spreads requeues without randomness in here."""
    attempt: int = 0
    """How many times in a row this object's reconcile failed (kopf's `retry`), for backoff."""
    last_look: datetime | None = None
    """When this operator process last read this Certificate's Key Vault certificate (kept in
    memory by kvcert.runtime.loop); None since start-up or a re-list: a source Existing
    certificate is looked at again then (issue #19 §3)."""
    outcomes: tuple[Outcome, ...] = ()

    @classmethod
    def from_body(
        cls, body: Mapping[str, Any], *, now: datetime, marker: str, **facts: Any
    ) -> Input:
        """Parse a kopf body; an invalid spec becomes `InvalidSpec`, not an exception."""
        meta = ObjectMeta.model_validate(section(body, "metadata"))
        spec: CertificateSpec | InvalidSpec
        try:
            spec = Certificate.from_body(body, with_status=False).spec
        except InvalidResource as error:
            spec = InvalidSpec(error.message)
        status = parse_certificate_status(section(body, "status"))
        return cls(meta=meta, spec=spec, status=status, now=now, marker=marker, **facts)

    @property
    def deleting(self) -> bool:
        return self.meta.deletion_timestamp is not None

    @property
    def generation(self) -> int:
        return self.meta.generation

    @property
    def certificate_name(self) -> str:
        """The name in Key Vault: spec.certificateName, else metadata.name."""
        if isinstance(self.spec, CertificateSpec) and self.spec.certificate_name:
            return self.spec.certificate_name
        return self.meta.name

    def last(self, kind: type[_O]) -> _O | None:
        """The most recent outcome of type `kind` in this reconcile, if any."""
        for outcome in reversed(self.outcomes):
            if isinstance(outcome, kind):
                return outcome
        return None

    def with_outcome(self, outcome: Outcome | None) -> Input:
        """This input after `outcome`: observations updated, the outcome remembered."""
        if outcome is None:
            return self
        folded = replace(self, outcomes=(*self.outcomes, outcome))
        match outcome:
            case StatusWritten(patch=patch):
                merged = apply_merge_patch(self.status.to_wire(), patch)
                return replace(folded, status=parse_certificate_status(merged))
            case Created(operation=op) | CancelRequested(operation=op):
                return replace(folded, operation=op)
            case OperationRead(operation=read):
                return replace(folded, operation=read)
            case Imported(certificate=cert) | CertificateRead(certificate=cert):
                return replace(folded, certificate=cert)
            case Merged(certificate=cert):
                before = self.operation
                if isinstance(before, ObservedOperation):
                    before = replace(before, status=OperationStatus.COMPLETED, target=cert.id)
                return replace(folded, certificate=cert, operation=before)
            case SecretRead(facts=facts):
                return replace(folded, secret=facts)
            case MergeSecretRead(facts=source):
                return replace(folded, merge_secret=source)
            case ImportSecretRead(facts=source):
                return replace(folded, import_secret=source)
            case SecretWritten(x5t=x5t, version=version, output_hash=digest):
                written = SecretFacts(
                    exists=True, ours=True, x5t=x5t, version=version, output_hash=digest
                )
                return replace(folded, secret=written)
            case PendingDeleted():
                return replace(folded, operation=NOT_FOUND)
            case CertificateDeleted():
                return replace(folded, certificate=NOT_FOUND)
            case Recovered():
                return replace(folded, certificate=None)  # changed: read it again
            case _:
                return folded
