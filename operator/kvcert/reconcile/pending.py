"""Rungs for a pending operation: cancel it once, publish a manual CSR, merge a signed chain,
wait with a growing poll interval, or report how it ended.
"""

from __future__ import annotations

from kvcert.api.certificate import CertificateSpec, IssuerKind
from kvcert.api.status import OperationState
from kvcert.reconcile import lifecycle, operation
from kvcert.reconcile.actions import (
    CancelOperation,
    MergeChain,
    ReadMergeSecret,
    ReadOperation,
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
    OperationRead,
)
from kvcert.reconcile.readiness import Verdict
from kvcert.reconcile.reasons import Reason
from kvcert.reconcile.schedule import SOURCE_RECHECK


def cancel(inp: Input, current: OperationView) -> Decision | None:
    """spec.cancel: one PATCH per operation. A refusal means the operation already ended
    (Key Vault cancels only inProgress ones), so it is recorded and reported, not retried."""
    known = inp.status.operation or OperationState()
    if (refused := inp.last(CancelRefused)) is not None:
        if not _read_since(inp, refused):
            # A refusal means the operation is no longer in progress: see how it ended now,
            # rather than report a stale inProgress until the next poll.
            return step("cancel refused: read the operation", ReadOperation(inp.certificate_name))
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


def _read_since(inp: Input, outcome: object) -> bool:
    """Whether the operation was read after `outcome` in this round."""
    seen = False
    for item in inp.outcomes:
        if item is outcome:
            seen = True
        elif seen and isinstance(item, OperationRead):
            return True
    return False


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
    return WriteCsrConfigMap(
        operation.csr_ref_name(inp.meta),
        inp.certificate_name,
        op.csr_pem,
        # A renewal's CSR replaces the ConfigMap of the first one: one write, not a 409 + one.
        exists=inp.status.certificate is not None,
    )


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
        message = f"merge of Secret {source.secret_name} refused: {describe(refused.error)}"
        return _merge_refused(inp, current, refused.forbidden, message, rung="merge refused")
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
    delivered = inp.status.certificate
    if facts.leaf_x5t is not None and delivered is not None and delivered.x5t == facts.leaf_x5t:
        # The chain of the version already delivered (a renewal's new CSR needs a new chain):
        # merging it again could only be refused. Wait for the new chain.
        return None
    if operation.should_merge(inp, current, facts.fingerprint):
        return step(
            "merge the chain",
            MergeChain(inp.certificate_name, source.secret_name, facts.fingerprint),
        )
    last = inp.status.operation.merge if inp.status.operation else None
    if last is not None and last.fingerprint == facts.fingerprint and last.result != "Merged":
        # The refused chain is still there: keep saying so (no new event) until it changes,
        # rather than fall back to "awaiting a merge" as if nothing had been tried.
        message = f"merge of Secret {source.secret_name} refused: {last.message or last.result}"
        forbidden = last.result == "Forbidden"
        return _merge_refused(inp, current, forbidden, message, rung="refused chain unchanged")
    return None


def _merge_refused(
    inp: Input, current: OperationView, forbidden: bool, message: str, *, rung: str
) -> Decision:
    """A refused merge: stalled unless only an issuer's request in progress forbids it. The
    merge Secret is not watched, so it is looked at again on the next poll (a Kubernetes GET;
    Key Vault is read only while the operation is in progress)."""
    reason = Reason.MERGE_FORBIDDEN if forbidden else Reason.MERGE_REJECTED
    verdict = Verdict(
        reason,
        message,
        issuing=current.in_progress,
        stalled=not forbidden or not current.in_progress,
    )
    return conclude(inp, verdict, current, rung=rung, requeue_after=poll(inp, current))


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
        trigger = current.intent.trigger if current.intent is not None else None
        renewing = trigger in (lifecycle.TRIGGER_RENEW, lifecycle.TRIGGER_RENEW_BEFORE)
        verdict = Verdict(
            Reason.RENEWING if renewing else Reason.ISSUING,
            f"operation {request} is in progress{details}",
            issuing=True,
        )
    return conclude(inp, verdict, current, rung="in progress", requeue_after=poll(inp, current))


def ended(inp: Input, spec: CertificateSpec, current: OperationView) -> Decision:
    """Failed or cancelled: stalled with Key Vault's error; Key Vault is never polled again,
    so no retry storm. With mergeFrom, a chain obtained elsewhere may still be merged: the
    Secret (never watched) is looked at again with a growing delay, a Kubernetes GET only."""
    cancelled = current.status is OperationStatus.CANCELLED
    reason = Reason.OPERATION_CANCELLED if cancelled else Reason.OPERATION_FAILED
    op = current.op
    known = inp.status.operation or OperationState()
    error = op.error if op is not None else known.error
    detail = f": {error.code}: {error.message}" if error is not None else ""
    retry = "edit the spec to retry"
    delay = None
    if spec.merge_from is not None:
        retry += f", or put a chain signed elsewhere in Secret {spec.merge_from.secret_name}"
        delay = poll(inp, current)
    message = f"operation {current.request_id} {current.status}{detail}; {retry}"
    verdict = Verdict(reason, message, stalled=True)
    return conclude(
        inp, verdict, current, rung="operation ended without a certificate", requeue_after=delay
    )
