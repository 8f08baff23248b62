"""The rung for a name that is soft-deleted in Key Vault (409 ObjectIsDeletedButRecoverable).

Key Vault keeps a deleted certificate's name for its retention period: a create or import of
that name is refused until the deleted certificate is recovered or purged. Which of the two is
right only a human knows (purging destroys what someone may still need, recovering brings back
what someone deleted), so `spec.onSoftDeleted: Fail`, the default, reports `NameSoftDeleted`,
stalled, and the "refused earlier" rungs keep it so without a new request until the spec
changes. With `Recover`, kvcert recovers the certificate, reads it until Key Vault has finished
the recovery (it may answer the recover before), and then sends the refused request again under
the intent already recorded: Key Vault never accepted the first, so it still accepts one
request per intent.
"""

from __future__ import annotations

from kvcert.api.certificate import CertificateSpec, OnSoftDeleted
from kvcert.api.status import OperationError, OperationState
from kvcert.reconcile import readiness
from kvcert.reconcile.actions import CreateCertificate, ReadCertificate, RecoverCertificate
from kvcert.reconcile.conditions import find
from kvcert.reconcile.decision import Decision, conclude, poll, step
from kvcert.reconcile.inputs import Input
from kvcert.reconcile.observed import ObservedCertificate
from kvcert.reconcile.operation import INTENT_TAG, OperationView, tags_for
from kvcert.reconcile.outcomes import Created, Imported, Outcome, Recovered, SoftDeleted
from kvcert.reconcile.readiness import Verdict
from kvcert.reconcile.reasons import Reason


def soft_deleted(inp: Input, spec: CertificateSpec, current: OperationView) -> Decision | None:
    """Report a soft-deleted name, or recover it and go on; None: nothing soft-deleted here."""
    name = inp.certificate_name
    latest = _latest(inp, (SoftDeleted, Recovered, Created, Imported))
    # The create or import was refused for a soft-deleted name: report it, or recover it once.
    if isinstance(latest, SoftDeleted):
        if spec.on_soft_deleted is OnSoftDeleted.FAIL or inp.last(Recovered) is not None:
            return refuse(inp, current, latest)
        return step("name soft-deleted: recover it", RecoverCertificate(name))
    recovering = isinstance(latest, Recovered) or (
        latest is None and _recovery_recorded(inp, spec, current)
    )
    if not recovering:
        return None
    # Recovering: the certificate reads back once Key Vault has finished.
    cert = inp.certificate
    if cert is None:
        return step("recovering: read the certificate", ReadCertificate(name))
    if not isinstance(cert, ObservedCertificate):
        if inp.last(Recovered) is None:
            # Recorded in an earlier round: ask again (a 404 says it is no longer deleted).
            return step("recovering: recover again", RecoverCertificate(name))
        message = f"recovering the soft-deleted certificate {name} in Key Vault"
        verdict = Verdict(Reason.RECOVERING, message, issuing=True)
        return conclude(
            inp, verdict, current, rung="recovery not complete", requeue_after=poll(inp, current)
        )
    intent = current.intent
    refused_now = inp.last(SoftDeleted)
    if (
        refused_now is None
        or refused_now.action != "create"
        or intent is None
        or intent.action != "create"
        or spec.policy is None
    ):
        return None  # an import, or recorded earlier: the ladder's own rungs ask again
    # Recovered in this round: the refused create, again under the same intent.
    tags = {**tags_for(inp), INTENT_TAG: intent.marker}
    return step(
        "recovered: create under the recorded intent", CreateCertificate(name, spec.policy, tags)
    )


def refuse(inp: Input, current: OperationView, refused: SoftDeleted) -> Decision:
    """NameSoftDeleted, stalled, with the refusal recorded so that no request follows it."""
    name = inp.certificate_name
    again = " again while kvcert recovered it" if inp.last(Recovered) is not None else ""
    message = (
        f"{name} is soft-deleted in Key Vault{again}, so the {refused.action} was refused: recover"
        f" or purge the deleted certificate in Key Vault (az keyvault certificate recover or"
        f" purge --name {name}), or set spec.onSoftDeleted: Recover to let kvcert recover it"
    )
    error = OperationError(code=Reason.NAME_SOFT_DELETED.value, message=message)
    verdict = Verdict(Reason.NAME_SOFT_DELETED, message, stalled=True)
    return conclude(inp, verdict, current, rung="name soft-deleted", error=error)


def _recovery_recorded(inp: Input, spec: CertificateSpec, current: OperationView) -> bool:
    """An earlier round left the certificate recovering, and its request is still to be made."""
    ready = find(inp.status.conditions, readiness.READY)
    known = inp.status.operation or OperationState()
    return (
        spec.on_soft_deleted is OnSoftDeleted.RECOVER
        and ready is not None
        and ready.reason == Reason.RECOVERING.value
        and current.intent is not None
        and current.request_id is None
        and known.error is None
    )


def _latest(inp: Input, kinds: tuple[type, ...]) -> Outcome | None:
    """The most recent outcome of this round that is one of `kinds`."""
    for outcome in reversed(inp.outcomes):
        if isinstance(outcome, kinds):
            return outcome
    return None
