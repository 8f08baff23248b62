"""The rung for spec changes Key Vault applies in place (issue #15 §3): lifetimeActions
(PATCH /certificates/{name}/policy) and tags (PATCH /certificates/{name}/): no new version.

Changes that need a new version (subject, SANs, key, validity, issuer, EKUs, key usage, content
type) are the create rung's: `operation.same_issuance` tells them apart.
"""

from __future__ import annotations

from kvcert.api.certificate import (
    CertificateSpec,
    LifetimeAction,
    LifetimeActionType,
    LifetimeTrigger,
)
from kvcert.reconcile import lifecycle, operation
from kvcert.reconcile.actions import UpdateInPlace
from kvcert.reconcile.decision import Decision, conclude, describe, step
from kvcert.reconcile.inputs import Input
from kvcert.reconcile.operation import OperationView
from kvcert.reconcile.outcomes import UpdatedInPlace, UpdateRefused
from kvcert.reconcile.readiness import Verdict
from kvcert.reconcile.reasons import Reason


def update_in_place(inp: Input, spec: CertificateSpec, current: OperationView) -> Decision | None:
    """Apply changed lifetimeActions and tags to the existing certificate, once per change;
    None when there is nothing to apply (or no certificate yet: the create sends them)."""
    if spec.policy is None or spec.import_from is not None or current.in_progress:
        return None
    recorded = inp.status.certificate
    if recorded is None or not recorded.x5t:
        return None
    if (refused := inp.last(UpdateRefused)) is not None:
        message = (
            f"Key Vault refused to update lifetimeActions or tags of {inp.certificate_name}:"
            f" {describe(refused.error)}; fix the spec"
        )
        verdict = Verdict(Reason.UPDATE_REFUSED, message, stalled=True)
        return conclude(inp, verdict, current, rung="update refused")
    if inp.last(UpdatedInPlace) is not None or not lifecycle.update_needed(inp, spec):
        return None
    intent = current.intent
    actions_changed, tags_changed = lifecycle.update_parts(inp, spec)
    actions = _actions(spec) if actions_changed else None
    tags = (
        operation.tags_for(inp, marker=intent.marker if intent is not None else None)
        if tags_changed
        else None
    )
    digest = lifecycle.update_digest(spec)
    return step(
        "apply lifetimeActions and tags in place",
        UpdateInPlace(inp.certificate_name, digest, actions, tags),
    )


def _actions(spec: CertificateSpec) -> tuple[LifetimeAction, ...]:
    """The spec's lifetime actions; none means Key Vault's default for the issuer again."""
    assert spec.policy is not None
    if spec.policy.lifetime_actions:
        return tuple(spec.policy.lifetime_actions)
    return tuple(
        LifetimeAction(
            trigger=LifetimeTrigger(
                lifetime_percentage=rule.lifetime_percentage,
                days_before_expiry=rule.days_before_expiry,
            ),
            action=LifetimeActionType(rule.action),
        )
        for rule in lifecycle.rules_of(spec, None)
    )
