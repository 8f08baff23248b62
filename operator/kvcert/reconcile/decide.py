"""`reconcile(inp) -> Decision`: the ladder that decides the next step for one Certificate.

The ladder is an ordered list of early returns, one comment per rung; the first rung that
applies decides. Rungs either return a *step* (effects to perform, after which the handler folds
the outcomes into the input and calls `reconcile` again) or a *final* decision (a status patch
and a requeue hint). There are no side effects here: no I/O, no clock, no randomness.
"""

from __future__ import annotations

from kvcert.reconcile import (
    adopt,
    deletion,
    existing,
    lifecycle,
    operation,
    pending,
    readiness,
    recovery,
    requests,
    secret,
    updates,
)
from kvcert.reconcile.actions import ReadMergeSecret, ReadOperation
from kvcert.reconcile.advice import explain
from kvcert.reconcile.conditions import find
from kvcert.reconcile.decision import FAILURE_KEYS, Decision, conclude, failures, step
from kvcert.reconcile.inputs import Input, InvalidSpec
from kvcert.reconcile.observed import OperationStatus
from kvcert.reconcile.operation import UNSUCCESSFUL, OperationView
from kvcert.reconcile.outcomes import (
    Conflict,
    Failed,
    Imported,
    Merged,
    Rejected,
)
from kvcert.reconcile.patch import merge_patch_diff
from kvcert.reconcile.readiness import Verdict
from kvcert.reconcile.reasons import Reason
from kvcert.reconcile.schedule import backoff


def reconcile(inp: Input) -> Decision:
    """Decide the next step for one Certificate. Pure: the same input gives the same decision."""
    current = operation.view(inp)
    # Being deleted: honour deletionPolicy and nothing else (an invalid spec retains).
    if inp.deleting:
        return deletion.decide(inp, current)
    # An invalid spec: say why and wait for an edit; nothing else is safe to do.
    if isinstance(inp.spec, InvalidSpec):
        verdict = Verdict(Reason.INVALID_SPEC, inp.spec.message, stalled=True)
        return conclude(inp, verdict, current, rung="invalid spec")
    spec = inp.spec
    # A call failed transiently in this round: report it, back off, lose nothing recorded.
    if (failed := inp.last(Failed)) is not None:
        return _transient(inp, current, failed)
    # The vault is missing or not Ready: wait for it.
    if not inp.vault.ready:
        message = inp.vault.message or f"vault {spec.vault_ref.kind}/{spec.vault_ref.name}"
        verdict = Verdict(Reason.VAULT_NOT_READY, message, issuing=current.in_progress)
        delay = backoff(inp.attempt, inp.jitter)
        return conclude(inp, verdict, current, rung="vault not ready", requeue_after=delay)
    # source Existing: only read and deliver; nothing is ever written to Key Vault.
    if spec.existing:
        return existing.decide(inp, spec, current)
    # A create or import met 409: adopt the pending operation if it is ours, else report it.
    if (conflict := inp.last(Conflict)) is not None and (
        decided := requests.conflict(inp, current, conflict)
    ):
        return decided
    # The name is soft-deleted in Key Vault: report it, or (onSoftDeleted: Recover) recover it,
    # wait until Key Vault has, then ask again under the same intent.
    if (decided := recovery.soft_deleted(inp, spec, current)) is not None:
        return decided
    # Key Vault refused the create or import as invalid: stalled until the spec changes.
    if (rejected := inp.last(Rejected)) is not None:
        message = requests.rejected_message(rejected)
        verdict = Verdict(Reason.REJECTED, message, stalled=True)
        return conclude(inp, verdict, current, rung="rejected")
    # importFrom: import the Secret's content once per distinct content.
    if spec.import_from is not None:
        return requests.import_source(inp, spec, current)
    # spec.adopt: a certificate of the name that is not ours yet is adopted in place (tagged,
    # the policy applied for the next version), never created anew; another's is refused.
    if (decided := adopt.adopt(inp, spec, current)) is not None:
        return decided
    # An intent without a request id: a crash (or a refusal) between intent and create.
    if (decided := requests.unresolved_create(inp, spec, current)) is not None:
        return decided
    # The followed operation is in progress and was not read in this round: poll it.
    if current.in_progress and not current.read:
        return step("poll the operation", ReadOperation(inp.certificate_name))
    # The operation vanished out of band: report it, recover from the certificate or recreate.
    if current.vanished:
        return requests.vanished(inp, spec, current)
    # The spec asks for a certificate not yet intended, and nothing is in progress: create.
    if not current.in_progress and operation.needs_create(inp, spec, current):
        return requests.create(inp, spec, current)
    # A renewal is due (a new kvcert.io/renew value, or spec.renewBefore reached): the next
    # version is created; the delivered one serves until it is issued.
    if (trigger := lifecycle.renewal_due(inp, spec, current)) is not None:
        why = (
            "renewal asked by kvcert.io/renew; "
            if trigger == lifecycle.TRIGGER_RENEW
            else "renewBefore; "
        )
        return requests.create(inp, spec, current, why=why, trigger=trigger)
    # A new kvcert.io/retry value after an operation failed, was cancelled or deleted, a
    # refused create, or a certificate deleted in Key Vault: create anew.
    if lifecycle.retry_due(inp, spec, current):
        why = "retry asked by kvcert.io/retry; "
        return requests.create(inp, spec, current, why=why, trigger=lifecycle.TRIGGER_RETRY)
    # lifetimeActions or tags changed: Key Vault applies them in place, no new version.
    if (decided := updates.update_in_place(inp, spec, current)) is not None:
        return decided
    # spec.cancel: request cancellation once; a refusal is reported, never retried.
    if (
        spec.cancel
        and current.in_progress
        and (decided := pending.cancel(inp, current)) is not None
    ):
        return decided
    # A manual request: publish its CSR in a ConfigMap for whoever signs it.
    if (publish := pending.csr_to_publish(inp, spec, current)) is not None:
        return step("publish the CSR", publish)
    # mergeFrom: merge its chain once per distinct fingerprint, while a merge can succeed.
    if spec.merge_from is not None and (decided := pending.merge(inp, spec, current)) is not None:
        return decided
    # The next version is pending, failed or deleted: the delivered one keeps its Secret.
    if current.status in (OperationStatus.IN_PROGRESS, *UNSUCCESSFUL, OperationStatus.DELETED) and (
        decided := secret.keep_serving(inp, spec, current)
    ):
        return decided
    # In progress: wait; poll again after a delay that grows with the operation's age.
    if current.in_progress:
        return pending.waiting(inp, spec, current)
    # Completed while status recorded a manual request in progress, with no merge seen: read
    # mergeFrom, so that a merge whose answer was lost (a crash) is recorded and told.
    if operation.merge_unrecorded(inp, current) and inp.merge_secret is None:
        assert spec.merge_from is not None
        return step(
            "a merge not recorded: read mergeFrom", ReadMergeSecret(spec.merge_from.secret_name)
        )
    # Completed (now or earlier), merged or imported: deliver to the Secret, then Ready.
    if (
        current.status is OperationStatus.COMPLETED
        or inp.last(Merged) is not None
        or inp.last(Imported) is not None
    ):
        return secret.deliver(inp, spec, current)
    # Failed or cancelled: report, stalled, no retry storm; a spec edit asks for a new attempt.
    if current.status in UNSUCCESSFUL:
        return pending.ended(inp, spec, current)
    # The operation vanished and was reported earlier: stalled until kvcert.io/retry or an edit.
    if current.status is OperationStatus.DELETED:
        return requests.operation_deleted(inp, current)
    # Nothing in flight and nothing to create: keep the Secret in sync with the certificate.
    return secret.deliver(inp, spec, current)


def _transient(inp: Input, current: OperationView, failed: Failed) -> Decision:
    """Report a retryable failure once; a Ready certificate keeps serving and stays Ready."""
    delay = backoff(inp.attempt, inp.jitter, failed.error.retry_after)
    ready = find(inp.status.conditions, readiness.READY)
    if failed.action == "RecordIntent":
        # A failed status write cannot report itself: counted in memory, retried.
        return Decision(requeue_after=delay, rung="transient failure, retry quietly", failed=True)
    if ready is not None and ready.status == "True":
        # A Ready certificate is still served: only the count of failures is written.
        patch = merge_patch_diff(
            {key: value for key, value in inp.status.to_wire().items() if key in FAILURE_KEYS},
            failures(inp, failed=True),
        )
        return Decision(
            status_patch=patch,
            requeue_after=delay,
            rung="transient failure, retry quietly",
            failed=True,
        )
    # No delay in the message: a retry with the same error must not cost a status write.
    reason, message = explain(inp, failed)
    verdict = Verdict(reason, message, issuing=current.in_progress)
    return conclude(inp, verdict, current, rung="transient failure", requeue_after=delay)
