"""`spec.adopt: true` (issue #19 §3): a Key Vault certificate of this Certificate's name that
kvcert does not manage yet becomes this Certificate's, in place, only when the user asks.

Adoption tags the certificate with kvcert's own tags (those `operation.is_ours` reads, the
certificate's other tags kept), applies spec.policy to it in place (PATCH .../policy: Key Vault
uses it for the next version) and records an intent with trigger `adopt` whose issuance hash is
the spec's, so that `operation.needs_create` is false afterwards: the current version is
delivered as it is and no version is created by the adoption; new versions come from renewal
(lifetime actions, renewBefore, kvcert.io/renew). The intent is recorded first: after a crash
before the PATCHes, the next round makes them (they are idempotent), never a create. A
certificate that another kvcert Certificate manages (its owner tag) is never adopted.
"""

from __future__ import annotations

from kvcert.api.certificate import CertificateSpec
from kvcert.reconcile import lifecycle, operation, readiness
from kvcert.reconcile.actions import ReadCertificate, RecordIntent, UpdateInPlace
from kvcert.reconcile.conditions import find
from kvcert.reconcile.decision import Decision, conclude, describe, step
from kvcert.reconcile.inputs import Input
from kvcert.reconcile.observed import ObservedCertificate
from kvcert.reconcile.operation import OperationView
from kvcert.reconcile.outcomes import UpdatedInPlace, UpdateRefused
from kvcert.reconcile.patch import merge_patch_diff
from kvcert.reconcile.readiness import Verdict
from kvcert.reconcile.reasons import Reason


def adopt(inp: Input, spec: CertificateSpec, current: OperationView) -> Decision | None:
    """Adopt the Key Vault certificate, finish an adoption, or refuse one; None when there is
    nothing to adopt (a free name, a certificate not ours without spec.adopt, or an intent of
    this Certificate's own). A certificate already tagged as this Certificate's, delivered
    without an intent (source Existing switched back to Managed) is taken back the same way:
    no new version for a change of source."""
    name = inp.certificate_name
    # An adoption recorded earlier (or just now): tag it and apply the policy, once.
    if lifecycle.adopting(inp, current):
        return _finish(inp, spec, current)
    delivered = inp.status.certificate is not None and bool(inp.status.certificate.x5t)
    if current.intent is not None or spec.import_from is not None:
        return None
    if not spec.adopt and not delivered:
        return None
    cert = inp.certificate
    # Ownership is read on the certificate's tags before anything is written.
    if cert is None:
        return step("adopt: whose is the name", ReadCertificate(name))
    # A free name: the create rung creates it.
    if not isinstance(cert, ObservedCertificate):
        return None
    ours = operation.is_ours(cert, inp.meta)
    # Not ours and not asked to adopt: the create rung reports NotOwned (and names spec.adopt).
    if not ours and not spec.adopt:
        return None
    # Another Certificate's: never adopted, even when asked.
    if (owner := operation.owner_of(cert, inp.meta)) is not None:
        message = (
            f"Key Vault certificate {name} exists and is Certificate {owner}'s: spec.adopt"
            " never takes a certificate another Certificate manages; choose another"
            " spec.certificateName, or delete that Certificate first"
        )
        verdict = Verdict(Reason.NOT_OWNED, message, stalled=True)
        return conclude(inp, verdict, current, rung="adopt: another Certificate's")
    # Nothing issued to adopt: wait for an issued, enabled version (an edit asks again).
    if cert.x5t is None or not cert.enabled:
        if ours:
            return None  # this Certificate's own, not issued: the ladder creates as before
        state = "only a pending version" if cert.x5t is None else "its current version disabled"
        message = (
            f"Key Vault certificate {name} has {state}: spec.adopt adopts an issued, enabled"
            " version; issue or enable one in Key Vault, then edit the spec"
        )
        verdict = Verdict(Reason.NOT_OWNED, message, stalled=True)
        return conclude(inp, verdict, current, rung="adopt: nothing issued to adopt")
    # Adopt: the intent first (no create follows it), then the tags and the policy in place.
    return _begin(inp, spec, cert)


def _begin(inp: Input, spec: CertificateSpec, cert: ObservedCertificate) -> Decision:
    """Record the adoption's intent (the spec's issuance hash, trigger adopt), then PATCH."""
    intent = operation.new_intent(inp, spec, "create", trigger=lifecycle.TRIGGER_ADOPT)
    recorded = inp.status.to_wire()
    # observedGeneration too: the write's own echo must not look like a spec change to act on.
    have = {key: recorded.get(key) for key in ("observedGeneration", "operation", "appliedUpdate")}
    want = {
        "observedGeneration": inp.generation,
        "operation": operation.intent_only(intent).to_wire(),
        "appliedUpdate": None,
    }
    return step(
        "adopt: record the intent, then tag and apply the policy",
        RecordIntent(merge_patch_diff(have, want)),
        _update(inp, spec, cert, intent.marker),
    )


def _finish(inp: Input, spec: CertificateSpec, current: OperationView) -> Decision | None:
    """The adoption's PATCHes: made once (None afterwards: the ladder delivers the current
    version); a refusal is reported, stalled until the spec changes."""
    if inp.last(UpdatedInPlace) is not None:
        return None
    if (refused := inp.last(UpdateRefused)) is not None:
        message = (
            f"Key Vault refused to adopt {inp.certificate_name} (tags and policy in place):"
            f" {describe(refused.error)}; fix spec.policy"
        )
        verdict = Verdict(Reason.UPDATE_REFUSED, message, stalled=True)
        return conclude(inp, verdict, current, rung="adopt: refused")
    ready = find(inp.status.conditions, readiness.READY)
    if (
        (inp.status.applied_update or "").startswith(lifecycle.REFUSED_PREFIX)
        and ready is not None
        and ready.reason == Reason.UPDATE_REFUSED
        and ready.observed_generation == inp.generation
    ):
        # Refused for this generation: the certificate is not tagged ours, so nothing is
        # delivered as ours and nothing asked again until the spec changes.
        message = ready.message or f"Key Vault refused to adopt {inp.certificate_name}"
        verdict = Verdict(Reason.UPDATE_REFUSED, message, stalled=True)
        return conclude(inp, verdict, current, rung="adopt: refused earlier")
    cert = inp.certificate
    if cert is None:
        return step("adopt: read the certificate", ReadCertificate(inp.certificate_name))
    if not isinstance(cert, ObservedCertificate):
        return None  # deleted meanwhile: the ladder reports it
    intent = current.intent
    assert intent is not None  # lifecycle.adopting checked it
    if not operation.same_issuance(inp, spec, intent):
        # The policy was edited after a refusal: adopt under the edited policy, so that the
        # adoption still creates no version.
        return _begin(inp, spec, cert)
    return step("adopt: tag and apply the policy", _update(inp, spec, cert, intent.marker))


def _update(
    inp: Input, spec: CertificateSpec, cert: ObservedCertificate, marker: str
) -> UpdateInPlace:
    """Tags: the certificate's own, then spec.tags and kvcert's (which win); the whole policy."""
    tags = {**cert.tags, **operation.tags_for(inp, marker=marker)}
    return UpdateInPlace(
        inp.certificate_name, lifecycle.update_digest(spec), tags=tags, policy=spec.policy
    )
