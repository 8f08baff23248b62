"""What deleting a Certificate does in Key Vault, by `spec.deletionPolicy`.

Retain (the default) touches nothing: deleting a Kubernetes object must not destroy a
certificate by surprise. DeletePending removes only an in-progress pending object; Delete
soft-deletes the certificate, and only one this resource manages. A `Decision` with
`requeue_after` None means clean-up is over and the finalizer may be removed.
"""

from __future__ import annotations

from kvcert.api.certificate import CertificateSpec, DeletionPolicy
from kvcert.reconcile import operation
from kvcert.reconcile.actions import (
    DeleteCertificate,
    DeletePendingOperation,
    Emit,
    ReadCertificate,
    ReadOperation,
)
from kvcert.reconcile.advice import explain
from kvcert.reconcile.decision import Decision, step
from kvcert.reconcile.inputs import Input
from kvcert.reconcile.observed import ObservedCertificate
from kvcert.reconcile.operation import OperationView
from kvcert.reconcile.outcomes import CertificateDeleted, Failed, PendingDeleted
from kvcert.reconcile.reasons import Reason
from kvcert.reconcile.schedule import backoff


def _done(rung: str, *events: Emit) -> Decision:
    return Decision(actions=events, rung=rung)


def decide(inp: Input, current: OperationView) -> Decision:
    """The deletion ladder. Status is not written: the object is going away."""
    spec = inp.spec
    # An unreadable spec has no trustworthy policy: retain, the safe default.
    if not isinstance(spec, CertificateSpec):
        return _done("deletion: invalid spec, retained")
    # Retain: Key Vault keeps everything.
    if spec.deletion_policy is DeletionPolicy.RETAIN:
        return _done("deletion: retain")
    # A call failed transiently: say why in an event, retry later, the finalizer stays.
    if (failed := inp.last(Failed)) is not None:
        delay = backoff(inp.attempt, inp.jitter, failed.error.retry_after)
        reason, message = explain(inp, failed)
        warning = Emit("Warning", reason, f"deletionPolicy {spec.deletion_policy}: {message}")
        return Decision(actions=(warning,), requeue_after=delay, rung="deletion: transient failure")
    # The vault is gone: nothing can be cleaned up; say so and let the object go.
    if inp.vault.missing:
        message = f"vault {spec.vault_ref.name} is gone; nothing was deleted in Key Vault"
        return _done("deletion: vault missing", Emit("Warning", Reason.VAULT_MISSING, message))
    # The vault is not ready: wait for it rather than leak what should be deleted.
    if not inp.vault.ready:
        return Decision(requeue_after=backoff(inp.attempt, inp.jitter), rung="deletion: wait")
    if spec.deletion_policy is DeletionPolicy.DELETE_PENDING:
        return _delete_pending(inp, current)
    return _delete_certificate(inp)


def _delete_pending(inp: Input, current: OperationView) -> Decision:
    """DeletePending: remove a pending object still in progress; a terminal one is history."""
    name = inp.certificate_name
    # Deleted in this round: done.
    if inp.last(PendingDeleted) is not None:
        message = f"deleted the pending operation of {name}"
        return _done("deletion: pending deleted", Emit("Normal", Reason.PENDING_DELETED, message))
    unresolved = current.intent is not None and current.request_id is None
    # Maybe in progress (recorded so, or an intent whose create may have happened): read it.
    if not current.read and (current.in_progress or unresolved):
        return step("deletion: read the pending operation", ReadOperation(name))
    # In progress: delete it; a terminal one is left as history.
    if current.op is not None and current.in_progress:
        return step("deletion: delete the pending operation", DeletePendingOperation(name))
    return _done("deletion: no pending operation in progress")


def _delete_certificate(inp: Input) -> Decision:
    """Delete: soft-delete the certificate, only after its tags show it is ours."""
    name = inp.certificate_name
    # Soft-deleted in this round (or already gone): done.
    if inp.last(CertificateDeleted) is not None:
        message = f"soft-deleted {name} in Key Vault"
        return _done("deletion: deleted", Emit("Normal", Reason.CERTIFICATE_DELETED, message))
    cert = inp.certificate
    # Ownership is checked on the certificate's tags before anything is deleted.
    if cert is None:
        return step("deletion: read the certificate", ReadCertificate(name))
    if not isinstance(cert, ObservedCertificate):
        return _done("deletion: nothing in Key Vault")
    # Not ours: never delete someone else's certificate.
    if not operation.is_ours(cert, inp.meta):
        message = f"{name} in Key Vault is not managed by this Certificate; not deleted"
        return _done("deletion: not ours", Emit("Warning", Reason.NOT_OWNED, message))
    return step("deletion: soft-delete the certificate", DeleteCertificate(name))
