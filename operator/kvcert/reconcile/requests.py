"""Rungs that ask Key Vault for a certificate: create, import, and their crash recovery.

Every request is preceded by a recorded intent (one status write), so that after a crash the
next reconcile reads and adopts what Key Vault has instead of asking twice; a 409 is adopted
when the operation is ours and reported otherwise, never retried in a loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from kvcert.api.certificate import CertificateSpec
from kvcert.api.status import OperationError, OperationState
from kvcert.reconcile import lifecycle, operation, readiness, secret
from kvcert.reconcile.actions import (
    CreateCertificate,
    Emit,
    ImportCertificate,
    ReadCertificate,
    ReadImportSecret,
    ReadOperation,
    RecordIntent,
)
from kvcert.reconcile.decision import Decision, conclude, describe, step
from kvcert.reconcile.inputs import Input
from kvcert.reconcile.observed import ObservedCertificate, OperationStatus
from kvcert.reconcile.operation import INTENT_TAG, OperationView
from kvcert.reconcile.outcomes import (
    Conflict,
    Created,
    Imported,
    Rejected,
)
from kvcert.reconcile.patch import merge_patch_diff
from kvcert.reconcile.readiness import Verdict
from kvcert.reconcile.reasons import Reason
from kvcert.reconcile.schedule import SOURCE_RECHECK, backoff


def conflict(inp: Input, current: OperationView, conflict: Conflict) -> Decision | None:
    """409: find out from the certificate's tags whose pending operation it is; adopt ours
    (None: the ladder goes on with it), report anyone else's once, as stalled."""
    cert = inp.certificate
    if cert is None:
        return step("409: find out whose operation it is", ReadCertificate(inp.certificate_name))
    if isinstance(cert, ObservedCertificate) and operation.is_ours(cert, inp.meta):
        if not current.read:
            return step("409: read our operation to adopt it", ReadOperation(inp.certificate_name))
        return None  # adopted: the rest of the ladder follows the operation just read
    name = inp.certificate_name
    message = (
        f"a pending operation of {name} not managed by this Certificate is in progress and"
        f" blocks the {conflict.action}: wait for it to end or delete it in Key Vault"
        f" (az keyvault certificate pending delete --name {name}), then edit the spec to retry"
    )
    error = OperationError(code=Reason.CONFLICT.value, message=message)
    verdict = Verdict(Reason.CONFLICT, message, stalled=True)
    return conclude(inp, verdict, current, rung="409 not ours", error=error)


def refusal_reason(error: OperationError) -> Reason:
    """The reason a refusal recorded in status.operation.error was reported with."""
    if error.code in (Reason.CONFLICT.value, Reason.NAME_SOFT_DELETED.value):
        return Reason(error.code)
    return Reason.REJECTED


def rejected_message(rejected: Rejected) -> str:
    """Key Vault's refusal in its own words, and what makes kvcert ask again."""
    fix = "the importFrom Secret or the spec" if rejected.action == "import" else "spec.policy"
    who = (
        "the Secret could not be read for" if rejected.error.status == 422 else "Key Vault refused"
    )
    return (
        f"{who} the {rejected.action}: {describe(rejected.error)}; fix {fix}, and an edit of"
        " the spec asks again"
    )


def intent_step(
    inp: Input,
    spec: CertificateSpec,
    intent_action: CreateCertificate | ImportCertificate,
    *,
    fingerprint: str | None = None,
    events: Sequence[Emit] = (),
    why: str = "",
    trigger: str | None = None,
) -> Decision:
    """Record the intent (one status write, with Issuing conditions), then act. `trigger`
    (lifecycle.TRIGGER_*) says why: a renewal keeps Ready while the current version serves."""
    kind: Literal["create", "import"] = (
        "create" if isinstance(intent_action, CreateCertificate) else "import"
    )
    intent = operation.new_intent(inp, spec, kind, fingerprint, trigger)
    renewing = trigger in (lifecycle.TRIGGER_RENEW, lifecycle.TRIGGER_RENEW_BEFORE)
    reason = Reason.RENEWING if renewing else Reason.ISSUING
    message = f"{why}asking Key Vault to {kind} {inp.certificate_name}"
    verdict = readiness.serving(inp, Verdict(reason, message, issuing=True))
    recorded = inp.status.to_wire()
    keys = ("observedGeneration", "conditions", "operation", "handledRequests", "appliedUpdate")
    have: dict[str, Any] = {key: recorded[key] for key in keys if key in recorded}
    handled = lifecycle.handled_after_create(inp)
    want = {
        "observedGeneration": inp.generation,
        "conditions": [item.to_wire() for item in readiness.conditions(inp, verdict)],
        "operation": operation.intent_only(intent).to_wire(),
        "handledRequests": handled.to_wire() if handled is not None else None,
        # The create sends the lifetime actions and tags: nothing is left to apply in place.
        "appliedUpdate": lifecycle.update_digest(spec) if kind == "create" else None,
    }
    patch = merge_patch_diff(have, want)
    return step(f"record the intent, then {kind}", *events, RecordIntent(patch), intent_action)


def create_action(inp: Input, spec: CertificateSpec) -> CreateCertificate:
    """The create for the spec, tagged so that the operator recognises its own later."""
    assert spec.policy is not None  # validated: policy is required unless importFrom is set
    return CreateCertificate(inp.certificate_name, spec.policy, operation.tags_for(inp))


def create(
    inp: Input,
    spec: CertificateSpec,
    current: OperationView,
    *,
    events: Sequence[Emit] = (),
    why: str = "",
    trigger: str = lifecycle.TRIGGER_SPEC,
) -> Decision:
    """A new create for the spec: intent first, never while spec.cancel is true."""
    if spec.cancel:
        message = "spec.cancel is true: no new request is made until it is false"
        verdict = Verdict(Reason.OPERATION_CANCELLED, message, stalled=True)
        return conclude(inp, verdict, current, rung="cancel asked, nothing to create")
    if (refused := first_write_refused(inp, current, "created")) is not None:
        return refused
    action = create_action(inp, spec)
    return intent_step(inp, spec, action, events=events, why=why, trigger=trigger)


def first_write_refused(inp: Input, current: OperationView, verb: str) -> Decision | None:
    """Before the first create or import of a Certificate (no intent recorded): a certificate
    of that name must be this Certificate's, or none, else the write would add a version to
    what kvcert does not manage (DESIGN §5; issue #18 §4: a certificateName that is another
    Certificate's). A certificate delivered without an intent (source Existing, switched to
    Managed) is checked too (issue #19 §3). A step reading the certificate (404 for a free
    name), NotOwned (stalled, nothing `verb`; spec.adopt is the way to take it), or None: the
    write may go ahead."""
    if current.intent is not None:
        return None
    if inp.certificate is None:
        return step("first write: whose is the name", ReadCertificate(inp.certificate_name))
    if not isinstance(inp.certificate, ObservedCertificate) or operation.is_ours(
        inp.certificate, inp.meta
    ):
        return None
    owner = operation.owner_of(inp.certificate, inp.meta)
    name = inp.certificate_name
    if owner is not None:
        message = (
            f"Key Vault certificate {name} exists and is Certificate {owner}'s: nothing is"
            f" {verb}; choose another spec.certificateName (spec.adopt never takes another"
            " Certificate's certificate)"
        )
    else:
        adopt = (
            "set spec.adopt: true to adopt it (kvcert tags it, keeps its current version and"
            " manages it from there), "
            if verb == "created"
            else ""
        )
        message = (
            f"Key Vault certificate {name} exists and is not managed by kvcert: nothing is"
            f" {verb}; {adopt}choose another spec.certificateName, or remove it from Key Vault"
        )
    verdict = Verdict(Reason.NOT_OWNED, message, stalled=True)
    return conclude(inp, verdict, current, rung="the name is someone else's")


def unresolved_create(inp: Input, spec: CertificateSpec, current: OperationView) -> Decision | None:
    """An intent with no request id: the create may or may not have reached Key Vault.

    Reading the pending operation tells: a new one is adopted, none (or only the one from
    before the intent) means the create never happened and is made now, under the intent
    already recorded, so there is still one create per intent.
    """
    known = inp.status.operation or OperationState()
    intent = current.intent
    if intent is None or intent.action != "create" or current.request_id is not None:
        return None
    if intent.trigger == lifecycle.TRIGGER_ADOPT:
        return None  # an adoption asked Key Vault for no create (reconcile/adopt.py)
    if known.error is not None:
        if operation.needs_create(inp, spec, current) or lifecycle.retry_due(inp, spec, current):
            return None  # an edit or kvcert.io/retry: a new intent replaces the refusal
        reason = refusal_reason(known.error)
        message = known.error.message or known.error.code
        return conclude(
            inp, Verdict(reason, message, stalled=True), current, rung="refused earlier"
        )
    if not current.read:
        return step(
            "intent without request id: read before creating", ReadOperation(inp.certificate_name)
        )
    if current.op is not None:
        return None  # the intent's create happened: adopted, the ladder follows it
    if not operation.same_issuance(inp, spec, intent):
        return None  # the spec changed since: the create rung records a new intent
    if inp.last(Conflict) is not None or inp.last(Created) is not None:
        # Asked once in this round already: never a second create from the same reconcile.
        message = "Key Vault answered 409 but shows no pending operation; looking again"
        verdict = Verdict(Reason.CONFLICT, message, issuing=True)
        delay = backoff(inp.attempt, inp.jitter)
        return conclude(inp, verdict, current, rung="409 without operation", requeue_after=delay)
    if current.previous is not None and current.previous.status is OperationStatus.IN_PROGRESS:
        return None  # not ours to replace; the ladder reports it
    # Key Vault never saw the intended create: make it now, under the intent already recorded.
    action = CreateCertificate(
        inp.certificate_name,
        create_action(inp, spec).policy,
        {**operation.tags_for(inp), INTENT_TAG: intent.marker},
    )
    return step("create under the recorded intent", action)


def vanished(inp: Input, spec: CertificateSpec, current: OperationView) -> Decision:
    """The followed operation is gone (404): a certificate it completed is delivered; else the
    loss is reported and nothing is created by itself (for a paid CA a create is a new order,
    and deleting the pending object is how a person clears it): kvcert.io/retry or a spec edit
    asks anew (issue #15 §5)."""
    cert = inp.certificate
    if cert is None:
        return step(
            "operation vanished: read the certificate", ReadCertificate(inp.certificate_name)
        )
    recorded = inp.status.certificate
    if (
        isinstance(cert, ObservedCertificate)
        and cert.enabled
        and cert.x5t is not None
        and (recorded is None or recorded.x5t != cert.x5t)
        and operation.is_ours(cert, inp.meta)
    ):
        return secret.deliver(inp, spec, current)
    return operation_deleted(inp, current)


def operation_deleted(inp: Input, current: OperationView) -> Decision:
    """OperationDeleted: stalled, one Warning event, no new create until asked."""
    message = (
        f"the pending operation {current.request_id or ''} of {inp.certificate_name} was"
        " deleted out of band; set the annotation kvcert.io/retry (any new value) or edit the"
        " spec to create anew"
    )
    verdict = Verdict(Reason.OPERATION_DELETED, message, stalled=True)
    return conclude(inp, verdict, current, rung="operation deleted")


def import_source(inp: Input, spec: CertificateSpec, current: OperationView) -> Decision:
    """importFrom: one import per distinct content of the Secret (by fingerprint), with the
    same intent-first crash safety as a create; the import's tag recognises it after a crash."""
    source = spec.import_from
    assert source is not None
    facts = inp.import_secret
    if facts is None:
        return step(
            "read the import Secret", ReadImportSecret(source.secret_name, source.password_key)
        )
    if not facts.exists or facts.fingerprint is None:
        reason = Reason.IMPORT_SECRET_MISSING if not facts.exists else Reason.IMPORT_SECRET_INVALID
        message = (
            f"Secret {source.secret_name} does not exist"
            if not facts.exists
            else f"Secret {source.secret_name}: "
            + (facts.problem or "holds neither a PFX nor a PEM certificate and key")
        )
        verdict = Verdict(reason, message, stalled=facts.exists)
        # A Secret labelled kvcert.io/source is watched: its next change reconciles at once.
        delay = None if facts.watched else backoff(0, inp.jitter, SOURCE_RECHECK)
        return conclude(inp, verdict, current, rung="import source unusable", requeue_after=delay)
    action = ImportCertificate(
        inp.certificate_name,
        source.secret_name,
        facts.fingerprint,
        source.password_key,
        spec.policy,
        operation.tags_for(inp),
    )
    intent = current.intent
    if (
        intent is None
        or intent.action != "import"
        or intent.source_fingerprint != facts.fingerprint
    ):
        if (refused := first_write_refused(inp, current, "imported")) is not None:
            return refused
        return intent_step(inp, spec, action, fingerprint=facts.fingerprint)
    if inp.last(Imported) is not None or current.status is OperationStatus.COMPLETED:
        return secret.deliver(inp, spec, current)
    known = inp.status.operation or OperationState()
    if known.error is not None:
        if intent.generation < inp.generation:
            # Any edit of the spec is the way to ask again (e.g. onSoftDeleted: Recover).
            return intent_step(inp, spec, action, fingerprint=facts.fingerprint)
        message = known.error.message or known.error.code
        verdict = Verdict(refusal_reason(known.error), message, stalled=True)
        return conclude(inp, verdict, current, rung="import refused earlier")
    if inp.last(Conflict) is not None:
        # Ours, in progress (the conflict rung adopted it): the import waits for it to end.
        message = f"a pending operation of {inp.certificate_name} is in progress; import waits"
        verdict = Verdict(Reason.CONFLICT, message, issuing=True)
        delay = backoff(inp.attempt, inp.jitter, SOURCE_RECHECK)
        return conclude(inp, verdict, current, rung="import blocked", requeue_after=delay)
    cert = inp.certificate
    if cert is None:
        return step("import intent without result: read", ReadCertificate(inp.certificate_name))
    if isinstance(cert, ObservedCertificate) and cert.tags.get(INTENT_TAG) == intent.marker:
        return secret.deliver(inp, spec, current)
    tags = {**action.tags, INTENT_TAG: intent.marker}
    return step(
        "import under the recorded intent",
        ImportCertificate(
            action.certificate_name,
            action.secret_name,
            action.fingerprint,
            action.password_key,
            action.policy,
            tags,
        ),
    )
