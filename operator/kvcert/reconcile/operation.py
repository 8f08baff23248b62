"""The owner of `status.operation`: the Key Vault pending operation and the operator's notes.

Besides mirroring what Key Vault said, `status.operation` holds the three records that make the
operator safe to crash and restart: the `intent` written before a create or import (so a restart
reads and adopts instead of creating twice), the last `merge` attempt (so one chain is merged
once), and a refused cancellation (so it is not retried).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Literal

from kvcert.api.base import ObjectMeta
from kvcert.api.certificate import CertificateSpec
from kvcert.api.status import (
    CsrRef,
    Intent,
    MergeAttempt,
    OperationError,
    OperationState,
)
from kvcert.reconcile.inputs import Input
from kvcert.reconcile.observed import (
    NOT_FOUND,
    ObservedCertificate,
    ObservedOperation,
    OperationStatus,
)
from kvcert.reconcile.outcomes import (
    CancelRefused,
    CsrPublished,
    Imported,
    Merged,
    MergeRefused,
    Rejected,
)

MANAGED_BY_TAG = "managed-by"
MANAGED_BY = "kvcert"
UID_TAG = "kvcert-uid"
OWNER_TAG = "kvcert-owner"
INTENT_TAG = "kvcert-intent"
UNSUCCESSFUL = (OperationStatus.FAILED, OperationStatus.CANCELLED)


@dataclass(frozen=True)
class OperationView:
    """The pending operation this Certificate follows, from this round's read or from status."""

    intent: Intent | None
    request_id: str | None
    op: ObservedOperation | None
    """Read in this reconcile and ours to follow."""
    status: OperationStatus | None
    """As read in this reconcile, else as recorded in status."""
    read: bool
    """The operation was read in this reconcile (found or not)."""
    vanished: bool
    """Read as 404 while status recorded a request: deleted or overwritten out of band."""
    previous: ObservedOperation | None = None
    """The operation from before the recorded intent: the intent's create has not happened."""

    @property
    def in_progress(self) -> bool:
        return self.status is OperationStatus.IN_PROGRESS


def view(inp: Input) -> OperationView:
    """Which operation this Certificate follows and in what state, from the read or from status."""
    known = inp.status.operation or OperationState()
    intent = known.intent
    observed = inp.operation
    if isinstance(observed, ObservedOperation):
        if (
            known.request_id is None
            and intent is not None
            and intent.previous_request_id is not None
            and observed.request_id == intent.previous_request_id
        ):
            return OperationView(intent, None, None, None, True, False, previous=observed)
        if (
            known.request_id is not None
            and observed.request_id != known.request_id
            and known.status == OperationStatus.IN_PROGRESS.value
        ):
            # Ours was in progress, so nothing could overwrite it: it was deleted and someone
            # else created anew. Never adopt that silently: it is reported as vanished.
            return OperationView(
                intent, known.request_id, None, OperationStatus.DELETED, read=True, vanished=True
            )
        return OperationView(
            intent, observed.request_id, observed, observed.status, read=True, vanished=False
        )
    if observed == NOT_FOUND:
        vanished = known.request_id is not None and known.status != OperationStatus.DELETED.value
        status = OperationStatus.DELETED if known.request_id is not None else None
        return OperationView(intent, known.request_id, None, status, read=True, vanished=vanished)
    recorded = OperationStatus.parse(known.status) if known.status else None
    return OperationView(intent, known.request_id, None, recorded, read=False, vanished=False)


def policy_hash(inp: Input, spec: CertificateSpec) -> str:
    """A digest of what a create sends: a change of it is what asks for a new certificate."""
    policy = spec.policy.to_wire() if spec.policy is not None else {}
    text = json.dumps({"name": inp.certificate_name, "policy": policy}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def tags_for(inp: Input, marker: str | None = None) -> dict[str, str]:
    """Tags on what the operator creates in Key Vault: spec.tags, then kvcert's own (which win:
    they are how it recognises its own later). `marker` defaults to this round's."""
    user = inp.spec.tags if isinstance(inp.spec, CertificateSpec) else None
    return {
        **(user or {}),
        MANAGED_BY_TAG: MANAGED_BY,
        UID_TAG: inp.meta.uid,
        OWNER_TAG: f"{inp.meta.namespace or ''}/{inp.meta.name}",
        INTENT_TAG: marker or inp.marker,
    }


def owner_of(certificate: ObservedCertificate, meta: ObjectMeta) -> str | None:
    """The other Certificate (`namespace/name`, or its uid) whose kvcert tags the certificate
    carries; None when it is untagged, or this resource's own."""
    tags = certificate.tags
    if tags.get(MANAGED_BY_TAG) != MANAGED_BY or is_ours(certificate, meta):
        return None
    return tags.get(OWNER_TAG) or tags.get(UID_TAG) or None


def is_ours(certificate: ObservedCertificate, meta: ObjectMeta) -> bool:
    """Managed by kvcert for this resource (same uid, or same namespace/name after a re-apply)."""
    tags = certificate.tags
    if tags.get(MANAGED_BY_TAG) != MANAGED_BY:
        return False
    return tags.get(UID_TAG) == meta.uid or tags.get(OWNER_TAG) == (
        f"{meta.namespace or ''}/{meta.name}"
    )


def issuance_hash(inp: Input, spec: CertificateSpec) -> str:
    """A digest of what only a new version can change: the policy without lifetimeActions,
    which Key Vault updates in place (PATCH .../policy; issue #15 §3)."""
    policy = spec.policy.to_wire() if spec.policy is not None else {}
    policy.pop("lifetimeActions", None)
    text = json.dumps({"name": inp.certificate_name, "policy": policy}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def same_issuance(inp: Input, spec: CertificateSpec, intent: Intent) -> bool:
    """The intent asked for the certificate the spec describes (lifetime actions aside). An
    intent recorded before issuanceHash existed is compared on the whole policy."""
    if intent.issuance_hash is not None:
        return intent.issuance_hash == issuance_hash(inp, spec)
    return intent.policy_hash == policy_hash(inp, spec)


def new_intent(
    inp: Input,
    spec: CertificateSpec,
    action: Literal["create", "import"],
    fingerprint: str | None = None,
    trigger: str | None = None,
) -> Intent:
    """An intent for the next create or import, remembering the request it replaces."""
    known = inp.status.operation
    return Intent(
        generation=inp.generation,
        marker=inp.marker,
        action=action,
        trigger=trigger,
        policy_hash=policy_hash(inp, spec) if action == "create" else None,
        issuance_hash=issuance_hash(inp, spec) if action == "create" else None,
        source_fingerprint=fingerprint,
        recorded_at=inp.now.replace(microsecond=0),
        previous_request_id=known.request_id if known is not None else None,
    )


def needs_create(inp: Input, spec: CertificateSpec, current: OperationView) -> bool:
    """Whether the spec asks for a create that has not been intended yet."""
    intent = current.intent
    if intent is None:
        return current.op is None  # an operation adopted without an intent stands for the spec
    if intent.action != "create":
        return True
    if not same_issuance(inp, spec, intent):
        return True
    if intent.generation >= inp.generation or spec.cancel:
        return False
    # Any edit of the spec after an unsuccessful end is the way to ask for a new attempt.
    known = inp.status.operation
    refused = known is not None and known.error is not None and current.request_id is None
    return refused or current.status in (*UNSUCCESSFUL, OperationStatus.DELETED)


def should_merge(inp: Input, current: OperationView, fingerprint: str) -> bool:
    """Merge once per distinct chain; a chain refused while an issuer's request was in
    progress is tried once more after that request failed or was cancelled."""
    last = inp.status.operation.merge if inp.status.operation else None
    if last is None or last.fingerprint != fingerprint:
        return True
    return (
        last.result == "Forbidden"
        and current.status in UNSUCCESSFUL
        and last.operation_status not in ("failed", "cancelled")
    )


def csr_ref_name(meta: ObjectMeta) -> str:
    """The CSR ConfigMap of a manual request: `<metadata.name>-csr`."""
    return f"{meta.name}-csr"


def intent_only(intent: Intent) -> OperationState:
    """`status.operation` right after a new intent: the previous operation's fields cleared."""
    return OperationState(intent=intent)


def desired(
    inp: Input, current: OperationView, error: OperationError | None = None
) -> OperationState | None:
    """`status.operation` after this reconcile: the recorded state, updated by what was read
    and by this round's outcomes. `error` overrides the operation error (e.g. a 409 not ours).
    None for source Existing: kvcert follows no operation of a certificate it does not manage."""
    if isinstance(inp.spec, CertificateSpec) and inp.spec.existing:
        return None
    state = inp.status.operation or OperationState()
    op = current.op
    if op is not None:
        new_request = op.request_id != state.request_id
        state = state.model_copy(
            update={
                "request_id": op.request_id,
                "status": op.status.value,
                "status_details": op.status_details or None,
                "cancellation_requested": op.cancellation_requested,
                "issuer": op.issuer_name,
                "csr": op.csr_pem,
                "target": op.target,
                "error": OperationError(code=op.error.code, message=op.error.message)
                if op.error
                else None,
                "csr_ref": None if new_request else state.csr_ref,
                "cancel_refused": None if new_request else state.cancel_refused,
            }
        )
        if state.intent is None and isinstance(inp.spec, CertificateSpec):
            # Adopted with no intent on record (status lost): record one for the current spec,
            # so that a later policy change is recognised as one.
            state = state.model_copy(update={"intent": new_intent(inp, inp.spec, "create")})
    elif current.vanished:
        state = state.model_copy(update={"status": OperationStatus.DELETED.value})
    state = _with_notes(inp, state, current)
    if error is not None:
        state = state.model_copy(update={"error": error})
    return None if state == OperationState() else state


def merge_unrecorded(inp: Input, current: OperationView) -> bool:
    """A manual operation status recorded in progress now reads completed, with no merge of
    this round: a merge whose answer the operator never recorded (it crashed after the call,
    before its status write; issue #18 §1) or one made out of band. Whether it was mergeFrom's
    chain is told by `merged_unseen` once the merge Secret and the certificate are read."""
    known = inp.status.operation
    return (
        isinstance(inp.spec, CertificateSpec)
        and inp.spec.merge_from is not None
        and known is not None
        and known.status == OperationStatus.IN_PROGRESS.value
        and (known.merge is None or known.merge.result != "Merged")
        and current.status is OperationStatus.COMPLETED
        and inp.last(Merged) is None
    )


def merged_unseen(inp: Input, current: OperationView) -> bool:
    """`merge_unrecorded`, and the completed certificate's leaf is mergeFrom's (same x5t)."""
    facts, cert = inp.merge_secret, inp.certificate
    return (
        merge_unrecorded(inp, current)
        and facts is not None
        and facts.fingerprint is not None
        and facts.leaf_x5t is not None
        and isinstance(cert, ObservedCertificate)
        and cert.x5t == facts.leaf_x5t
    )


def import_unrecorded(inp: Input, current: OperationView) -> str | None:
    """The version an import of this Certificate's intent made, when this round did not make it
    and status does not record it yet: an import whose answer the operator never recorded (a
    crash after the call; issue #18 §1). None otherwise."""
    intent, cert = current.intent, inp.certificate
    if intent is None or intent.action != "import" or inp.last(Imported) is not None:
        return None
    if not isinstance(cert, ObservedCertificate) or cert.tags.get(INTENT_TAG) != intent.marker:
        return None
    known = inp.status.operation
    if (
        known is not None
        and known.status == OperationStatus.COMPLETED.value
        and known.target == cert.id
    ):
        return None  # recorded (an Imported event was told): its Secret may still be failing
    recorded = inp.status.certificate
    return cert.version if recorded is None or recorded.version != cert.version else None


def _with_notes(inp: Input, state: OperationState, current: OperationView) -> OperationState:
    """Fold this round's outcomes that status.operation remembers."""
    status_now = current.status.value if current.status else None
    if (published := inp.last(CsrPublished)) is not None:
        state = state.model_copy(update={"csr_ref": CsrRef(name=published.name)})
    if (refused := inp.last(MergeRefused)) is not None:
        attempt = MergeAttempt(
            fingerprint=refused.fingerprint,
            result="Forbidden" if refused.forbidden else "Rejected",
            operation_status=status_now,
            message=refused.error.message or refused.error.code,
        )
        state = state.model_copy(update={"merge": attempt})
    merged = inp.last(Merged) is not None or merged_unseen(inp, current)
    if merged and inp.merge_secret and inp.merge_secret.fingerprint:
        attempt = MergeAttempt(fingerprint=inp.merge_secret.fingerprint, result="Merged")
        state = state.model_copy(update={"merge": attempt, "status": "completed"})
    if (cancel := inp.last(CancelRefused)) is not None:
        reason = cancel.error.message or cancel.error.code or f"HTTP {cancel.error.status}"
        state = state.model_copy(update={"cancel_refused": reason})
    if (rejected := inp.last(Rejected)) is not None:
        error = OperationError(code=rejected.error.code, message=rejected.error.message)
        state = state.model_copy(update={"error": error})
    imported = inp.last(Imported)
    cert = imported.certificate if imported is not None else inp.certificate
    intent = state.intent
    if (
        isinstance(cert, ObservedCertificate)
        and intent is not None
        and intent.action == "import"
        and (imported is not None or cert.tags.get(INTENT_TAG) == intent.marker)
    ):
        update = {"status": "completed", "target": cert.id, "error": None}
        state = state.model_copy(update=update)
    return state
