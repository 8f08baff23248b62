"""The owner of `status.renewalTime`, `status.handledRequests` and `status.appliedUpdate`:
when kvcert looks at Key Vault again, which request annotations it has acted on, and what it
last applied in place (issue #15 §1-§3, §5).

An idle Ready certificate holds one scheduled look, never a poll: its AutoRenew point (plus a
margin, for Key Vault to finish), its renewBefore point (kvcert creates the next version), or
its refreshInterval, whichever comes first. `renewalTime` changes only when a look happened,
a new version was delivered or the spec changed, so an idle round costs no status write.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from kvcert.api.certificate import CertificateSpec, IssuerKind, LifetimeActionType
from kvcert.api.lifecycle import EXISTING_JITTER, RENEW_ANNOTATION, RETRY_ANNOTATION
from kvcert.api.status import CertificateInfo, HandledRequests
from kvcert.reconcile.inputs import Input
from kvcert.reconcile.observed import LifetimeRule, ObservedCertificate, OperationStatus
from kvcert.reconcile.operation import UNSUCCESSFUL, OperationView
from kvcert.reconcile.outcomes import (
    CertificateRead,
    SecretWritten,
    UpdatedInPlace,
    UpdateRefused,
)
from kvcert.reconcile.reasons import Reason

RENEWAL_MARGIN = timedelta(minutes=10)
"""Look for Key Vault's renewed version this long after its AutoRenew trigger."""
RENEWAL_RECHECK = timedelta(hours=1)
"""An AutoRenew point passed and no new version yet: look again hourly (rare, bounded)."""
DEFAULT_PERCENTAGE = 80
"""Key Vault's lifetime action when a policy has none: at 80 % of the lifetime (AutoRenew,
or EmailContacts for issuer Unknown, which Key Vault cannot renew by itself)."""

TRIGGER_SPEC = "spec"
TRIGGER_RENEW_BEFORE = "renewBefore"
TRIGGER_RENEW = "renew"
TRIGGER_RETRY = "retry"
TRIGGER_ADOPT = "adopt"
"""spec.adopt: the intent records an adoption (tags and policy in place), never a create."""


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def update_digest(spec: CertificateSpec) -> str:
    """What Key Vault applies in place, as `<lifetimeActions digest>.<tags digest>`: each part
    changes alone, so that only the call that is needed is made."""
    actions = spec.policy.to_wire().get("lifetimeActions") if spec.policy is not None else None
    return f"{_digest({'lifetimeActions': actions})}.{_digest({'tags': dict(spec.tags or {})})}"


def update_parts(inp: Input, spec: CertificateSpec) -> tuple[bool, bool]:
    """(lifetimeActions changed, tags changed) since status.appliedUpdate. A status from before
    appliedUpdate existed: the create sent the lifetime actions, and no tags were asked."""
    applied = inp.status.applied_update
    if applied is None:
        return False, bool(spec.tags)
    if applied.startswith(REFUSED_PREFIX):
        applied = applied[len(REFUSED_PREFIX) :]
    want = update_digest(spec).split(".")
    have = applied.split(".")
    if len(have) != len(want):
        return True, True
    return have[0] != want[0], have[1] != want[1]


def rules_of(
    spec: CertificateSpec, observed: ObservedCertificate | None
) -> tuple[LifetimeRule, ...]:
    """The lifetime actions in force: the spec's, else what Key Vault reports, else Key Vault's
    default for the issuer."""
    if spec.policy is not None and spec.policy.lifetime_actions:
        return tuple(
            LifetimeRule(
                item.action.value,
                item.trigger.lifetime_percentage,
                item.trigger.days_before_expiry,
            )
            for item in spec.policy.lifetime_actions
        )
    if observed is not None and observed.lifetime_actions is not None:
        return observed.lifetime_actions
    manual = spec.policy is not None and spec.policy.issuer.kind is IssuerKind.UNKNOWN
    action = LifetimeActionType.EMAIL_CONTACTS if manual else LifetimeActionType.AUTO_RENEW
    return (LifetimeRule(action.value, DEFAULT_PERCENTAGE, None),)


def trigger_at(rule: LifetimeRule, not_before: datetime, not_after: datetime) -> datetime:
    """When a lifetime action fires (REST `Trigger`): a percentage of nbf..exp, or days before
    exp."""
    if rule.lifetime_percentage is not None:
        return not_before + (not_after - not_before) * (rule.lifetime_percentage / 100)
    return not_after - timedelta(days=rule.days_before_expiry or 0)


def vault_renews_at(
    rules: Sequence[LifetimeRule], not_before: datetime | None, not_after: datetime | None
) -> datetime | None:
    """Key Vault's AutoRenew point of this version, None without AutoRenew."""
    if not_before is None or not_after is None:
        return None
    for rule in rules:
        if rule.action.casefold() == LifetimeActionType.AUTO_RENEW.value.casefold():
            return trigger_at(rule, not_before, not_after)
    return None


def kvcert_renews_at(
    spec: CertificateSpec, not_before: datetime | None, not_after: datetime | None
) -> datetime | None:
    """When kvcert itself creates the next version (spec.renewBefore, as cert-manager's
    `renewBefore`; spec.renewBeforePercentage: when that share of the lifetime remains)."""
    if not_before is None or not_after is None:
        return None
    if (before := spec.renew_before_delta()) is not None:
        return max(not_after - before, not_before)
    if spec.renew_before_percentage is not None:
        return not_after - (not_after - not_before) * (spec.renew_before_percentage / 100)
    return None


def _attempted(inp: Input, at: datetime) -> bool:
    """A create was already intended at or after `at`: the renewal point was acted on once."""
    intent = inp.status.operation.intent if inp.status.operation else None
    return intent is not None and intent.recorded_at >= at.replace(microsecond=0)


def _delivered(inp: Input) -> CertificateInfo | None:
    recorded = inp.status.certificate
    return recorded if recorded is not None and recorded.x5t else None


def renewal_due(inp: Input, spec: CertificateSpec, current: OperationView) -> str | None:
    """Why kvcert must create the next version now (a trigger for the intent), or None.

    Only for a delivered certificate with nothing in progress: a new kvcert.io/renew value,
    or the renewBefore point reached and not acted on yet (a failed renewal is not repeated
    by itself: kvcert.io/retry or a spec edit asks again)."""
    info = _delivered(inp)
    if info is None or current.in_progress or spec.policy is None or spec.import_from:
        return None
    if _annotation_pending(inp, RENEW_ANNOTATION):
        return TRIGGER_RENEW
    at = kvcert_renews_at(spec, info.not_before, info.not_after)
    if at is not None and at <= inp.now and not _attempted(inp, at):
        return TRIGGER_RENEW_BEFORE
    return None


def retry_due(inp: Input, spec: CertificateSpec, current: OperationView) -> bool:
    """A new kvcert.io/retry value, and something to retry: an operation that failed, was
    cancelled or deleted, a create Key Vault refused, or a certificate deleted in Key Vault."""
    if spec.policy is None or spec.import_from or current.in_progress:
        return False
    if not _annotation_pending(inp, RETRY_ANNOTATION):
        return False
    return retryable(inp, current)


def retryable(inp: Input, current: OperationView) -> bool:
    """Whether a kvcert.io/retry would make a new create now."""
    known = inp.status.operation
    refused = known is not None and known.error is not None and current.request_id is None
    stalled = _condition_reason(inp, "Stalled")
    return (
        refused
        or current.status in (*UNSUCCESSFUL, OperationStatus.DELETED)
        or stalled == Reason.CERTIFICATE_DELETED.value
    )


def _condition_reason(inp: Input, type_: str) -> str | None:
    for item in inp.status.conditions or ():
        if item.type == type_:
            return item.reason
    return None


def adopting(inp: Input, current: OperationView) -> bool:
    """An adoption (spec.adopt) is recorded (intent trigger `adopt`) and its in-place update
    not applied yet, or refused (reconcile/adopt.py): a refused adoption stays one (reported
    until an edit, then tried again) and never lets an untagged certificate be delivered as
    this Certificate's."""
    intent = current.intent
    if intent is None or intent.trigger != TRIGGER_ADOPT:
        return False
    applied = inp.status.applied_update
    return applied is None or applied.startswith(REFUSED_PREFIX)


def annotation_pending(inp: Input, key: str) -> bool:
    """A request annotation (kvcert.io/renew or kvcert.io/retry) has a value not acted on."""
    return _annotation_pending(inp, key)


def _annotation_pending(inp: Input, key: str) -> bool:
    value = (inp.meta.annotations or {}).get(key)
    handled = inp.status.handled_requests or HandledRequests()
    seen = handled.renew if key == RENEW_ANNOTATION else handled.retry
    return bool(value) and value != seen


def handled_after_create(inp: Input) -> HandledRequests | None:
    """Every create consumes the request annotations present when it is intended: a renewal
    asked for while the first issuance runs is that issuance."""
    annotations = inp.meta.annotations or {}
    recorded = inp.status.handled_requests or HandledRequests()
    handled = recorded.model_copy(
        update={
            "renew": annotations.get(RENEW_ANNOTATION) or recorded.renew,
            "retry": annotations.get(RETRY_ANNOTATION) or recorded.retry,
        }
    )
    return None if handled == HandledRequests() else handled


def handled(inp: Input, current: OperationView) -> HandledRequests | None:
    """`status.handledRequests` at the end of a round: a renew asked for while an operation is
    in progress is absorbed by it; a retry with nothing to retry is acknowledged."""
    annotations = inp.meta.annotations or {}
    recorded = inp.status.handled_requests or HandledRequests()
    update: dict[str, str] = {}
    existing = isinstance(inp.spec, CertificateSpec) and inp.spec.existing
    if (current.in_progress or existing) and _annotation_pending(inp, RENEW_ANNOTATION):
        # absorbed by the operation in progress; for source Existing, answered by a look
        update["renew"] = annotations[RENEW_ANNOTATION]
    if _annotation_pending(inp, RETRY_ANNOTATION) and not retryable(inp, current):
        update["retry"] = annotations[RETRY_ANNOTATION]
    result = recorded.model_copy(update=update)
    return None if result == HandledRequests() else result


REFUSED_PREFIX = "refused:"
"""appliedUpdate of a change Key Vault refused: not asked again until the spec changes."""


def applied_update(inp: Input, spec: CertificateSpec) -> str | None:
    """`status.appliedUpdate` at the end of a round."""
    if spec.existing:
        return None  # nothing is applied to a certificate kvcert does not manage
    if (updated := inp.last(UpdatedInPlace)) is not None:
        return updated.digest
    if inp.last(UpdateRefused) is not None:
        return REFUSED_PREFIX + update_digest(spec)
    return inp.status.applied_update


def update_needed(inp: Input, spec: CertificateSpec) -> bool:
    """Lifetime actions or tags differ from what was last applied in Key Vault in place.

    A status from before appliedUpdate existed, whose intent matches the whole current
    policy, needs nothing: the create sent these lifetime actions and no tags were asked."""
    digest = update_digest(spec)
    if inp.status.applied_update is not None:
        return inp.status.applied_update not in (digest, REFUSED_PREFIX + digest)
    return any(update_parts(inp, spec))


def refresh_anchor(inp: Input, spec: CertificateSpec) -> datetime:
    """`status.renewalTime` of a source Existing certificate: the first look of a schedule that
    repeats every refreshInterval. Drawn when the spec changes (Input.jitter: up to
    EXISTING_JITTER of the interval late), kept otherwise: an idle look writes no status."""
    recorded = inp.status.renewal_time
    if recorded is not None and inp.status.observed_generation == inp.generation:
        return recorded
    interval = spec.look_interval()
    return (inp.now + interval * (1 + EXISTING_JITTER * inp.jitter)).replace(microsecond=0)


def _grid(inp: Input, spec: CertificateSpec) -> tuple[datetime, timedelta]:
    return refresh_anchor(inp, spec), spec.look_interval()


def last_refresh_point(inp: Input, spec: CertificateSpec) -> datetime | None:
    """The latest scheduled look at or before now (None: the first is still ahead)."""
    anchor, interval = _grid(inp, spec)
    if anchor > inp.now:
        return None
    return anchor + interval * ((inp.now - anchor) // interval)


def next_refresh(inp: Input, spec: CertificateSpec) -> datetime:
    """The next scheduled look of a source Existing certificate, strictly after now."""
    anchor, interval = _grid(inp, spec)
    if anchor > inp.now:
        return anchor
    return anchor + interval * ((inp.now - anchor) // interval + 1)


def renewal_time(
    inp: Input, spec: CertificateSpec, info: CertificateInfo | None
) -> datetime | None:
    """`status.renewalTime`: recomputed after a look at Key Vault, a delivery, an in-place
    update or a spec change; otherwise kept as recorded (no status write in an idle round).
    For source Existing, the refresh schedule's anchor (`refresh_anchor`)."""
    if spec.existing:
        return refresh_anchor(inp, spec)
    recorded = inp.status.renewal_time
    if info is None or not info.x5t:
        return recorded
    looked = (
        inp.last(CertificateRead) is not None
        or inp.last(SecretWritten) is not None
        or inp.last(UpdatedInPlace) is not None
        or inp.status.observed_generation != inp.generation
        or recorded is None
    )
    if not looked:
        return recorded
    observed = inp.certificate if isinstance(inp.certificate, ObservedCertificate) else None
    candidates: list[datetime] = []
    vault_at = vault_renews_at(rules_of(spec, observed), info.not_before, info.not_after)
    if vault_at is not None:
        check = vault_at + RENEWAL_MARGIN
        candidates.append(check if check > inp.now else inp.now + RENEWAL_RECHECK)
    kvcert_at = kvcert_renews_at(spec, info.not_before, info.not_after)
    if kvcert_at is not None and not _attempted(inp, kvcert_at):
        candidates.append(max(kvcert_at, inp.now))
    if (refresh := spec.refresh_delta()) is not None:
        candidates.append(inp.now + refresh)
    if not candidates:
        return None
    return min(candidates).replace(microsecond=0)
