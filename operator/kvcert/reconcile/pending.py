"""Rungs for a pending operation: cancel it once, publish a manual CSR, merge a signed chain,
wait with a growing poll interval, or report how it ended.
"""

from __future__ import annotations

from kvcert.api.certificate import CertificateSpec, IssuerKind
from kvcert.api.status import OperationState
from kvcert.reconcile import operation
from kvcert.reconcile.actions import (
    CancelOperation,
    MergeChain,
    ReadMergeSecret,
    WriteCsrConfigMap,
)
from kvcert.reconcile.decision import Decision, conclude, describe, poll, step
from kvcert.reconcile.inputs import Input
from kvcert.reconcile.observed import OperationStatus
from kvcert.reconcile.operation import UNSUCCESSFUL, OperationView
from kvcert.reconcile.outcomes import (
    CancelRefused,
    CancelRequested,
    CsrPublished,
    Merged,
    MergeRefused,
)
from kvcert.reconcile.readiness import Verdict
from kvcert.reconcile.reasons import Reason
from kvcert.reconcile.schedule import SOURCE_RECHECK


def cancel(inp: Input, current: OperationView) -> Decision | None:
    """spec.cancel: one PATCH per operation. A refusal means the operation already ended
    (Key Vault cancels only inProgress ones), so it is recorded and reported, not retried."""
    known = inp.status.operation or OperationState()
    if (refused := inp.last(CancelRefused)) is not None:
        message = f"Key Vault refused the cancellation: {describe(refused.error)}"
        verdict = Verdict(Reason.CANCEL_REFUSED, message, issuing=True)
        return conclude(
            inp, verdict, current, rung="cancel refused", requeue_after=poll(inp, current)
        )
    op = current.op
    if op is None or op.cancellation_requested or known.cancel_refused:
        return None
    if inp.last(CancelRequested) is not None:
        return None
    return step("cancel once", CancelOperation(inp.certificate_name))


def is_manual(spec: CertificateSpec, current: OperationView) -> bool:
    """Issuer Unknown, as Key Vault reports it (else as the spec asks): a human signs."""
    issuer = current.op.issuer_name if current.op is not None else None
    if issuer:
        return issuer.casefold() == "unknown"
    return spec.policy is not None and spec.policy.issuer.kind is IssuerKind.UNKNOWN


def csr_to_publish(
    inp: Input, spec: CertificateSpec, current: OperationView
) -> WriteCsrConfigMap | None:
    """The CSR of a manual request goes to a ConfigMap once per request: whoever signs it may
    read ConfigMaps without being allowed to read Certificates' status."""
    op = current.op
    if op is None or not current.in_progress or not op.csr_pem or not is_manual(spec, current):
        return None
    known = inp.status.operation or OperationState()
    if known.csr_ref is not None and known.request_id == op.request_id:
        return None
    if inp.last(CsrPublished) is not None:
        return None
    return WriteCsrConfigMap(operation.csr_ref_name(inp.meta), inp.certificate_name, op.csr_pem)


def merge(inp: Input, spec: CertificateSpec, current: OperationView) -> Decision | None:
    """mergeFrom: merge while Key Vault can accept it (in progress, or after an issuer's request
    failed or was cancelled), once per chain. None: nothing to merge now, the ladder goes on."""
    source = spec.merge_from
    assert source is not None
    if (
        current.status not in (OperationStatus.IN_PROGRESS, *UNSUCCESSFUL)
        or inp.last(Merged) is not None
    ):
        return None
    if (refused := inp.last(MergeRefused)) is not None:
        reason = Reason.MERGE_FORBIDDEN if refused.forbidden else Reason.MERGE_REJECTED
        message = f"merge of Secret {source.secret_name} refused: {describe(refused.error)}"
        verdict = Verdict(
            reason,
            message,
            issuing=current.in_progress,
            stalled=not refused.forbidden or not current.in_progress,
        )
        delay = poll(inp, current) if current.in_progress else None
        return conclude(inp, verdict, current, rung="merge refused", requeue_after=delay)
    facts = inp.merge_secret
    if facts is None:
        return step("read the merge Secret", ReadMergeSecret(source.secret_name))
    if not facts.exists:
        return None  # waiting for it; the in-progress or ended rungs report
    if facts.fingerprint is None:
        message = f"Secret {source.secret_name} has no PEM certificate chain in tls.crt"
        verdict = Verdict(
            Reason.MERGE_SECRET_INVALID, message, issuing=current.in_progress, stalled=True
        )
        delay = poll(inp, current) if current.in_progress else SOURCE_RECHECK
        return conclude(inp, verdict, current, rung="merge source unusable", requeue_after=delay)
    if operation.should_merge(inp, current, facts.fingerprint):
        return step(
            "merge the chain",
            MergeChain(inp.certificate_name, source.secret_name, facts.fingerprint),
        )
    return None


def waiting(inp: Input, spec: CertificateSpec, current: OperationView) -> Decision:
    """In progress: say what it waits for, and when to poll again (never a terminal one)."""
    op = current.op
    request = current.request_id or "?"
    if op is not None and op.cancellation_requested:
        verdict = Verdict(Reason.CANCELLING, f"cancellation of {request} requested", issuing=True)
    elif operation.needs_create(inp, spec, current):
        message = f"the spec changed; waiting for operation {request} of the previous spec"
        verdict = Verdict(Reason.SUPERSEDED, message, issuing=True)
    elif is_manual(spec, current):
        where = (
            f"Secret {spec.merge_from.secret_name}"
            if spec.merge_from
            else "a Secret named by spec.mergeFrom"
        )
        message = (
            f"sign the CSR in ConfigMap {operation.csr_ref_name(inp.meta)} (csr.pem) and put"
            f" the chain in {where}"
        )
        verdict = Verdict(Reason.AWAITING_MERGE, message, issuing=True)
    else:
        details = f": {op.status_details}" if op is not None and op.status_details else ""
        verdict = Verdict(
            Reason.ISSUING, f"operation {request} is in progress{details}", issuing=True
        )
    return conclude(inp, verdict, current, rung="in progress", requeue_after=poll(inp, current))


def ended(inp: Input, current: OperationView) -> Decision:
    """Failed or cancelled: stalled with Key Vault's error; no requeue, so no retry storm."""
    cancelled = current.status is OperationStatus.CANCELLED
    reason = Reason.OPERATION_CANCELLED if cancelled else Reason.OPERATION_FAILED
    op = current.op
    known = inp.status.operation or OperationState()
    error = op.error if op is not None else known.error
    detail = f": {error.code}: {error.message}" if error is not None else ""
    message = f"operation {current.request_id} {current.status}{detail}; edit the spec to retry"
    verdict = Verdict(reason, message, stalled=True)
    return conclude(inp, verdict, current, rung="operation ended without a certificate")
