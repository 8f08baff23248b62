"""When to look again: backoff after failures, polling of in-progress operations.

Pure functions of counts, elapsed time and an injected jitter in [0, 1): reconcile never draws a
random number or reads a clock, so the same input always gives the same delay.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from kvcert.api.certificate import LifetimeAction, LifetimeActionType

ERROR_BASE = 2.0
ERROR_CAP = 300.0
POLL_MIN = 5.0
POLL_CAP = 300.0
SOURCE_RECHECK = 60.0
"""Seconds between GETs of a missing importFrom/mergeFrom Secret: Secrets are never watched."""
POLL_GROWTH = 0.5
"""Poll again after half the time the operation has already taken: a geometric series, so a
20-second issuer is polled a few times and an hour-long one a dozen, with no counter to store."""


def _spread(delay: float, jitter: float) -> float:
    """±20 % so that certificates created together do not poll together."""
    bounded = min(max(jitter, 0.0), 1.0)
    return delay * (0.8 + 0.4 * bounded)


def backoff(attempt: int, jitter: float, retry_after: float | None = None) -> float:
    """Delay before retry number `attempt` (0-based) of a failed call; honours Retry-After."""
    delay = _spread(min(ERROR_CAP, ERROR_BASE * 2 ** max(attempt, 0)), jitter)
    return round(max(delay, retry_after or 0.0), 3)


def poll_delay(
    started: datetime | None, now: datetime, jitter: float, retry_after: float | None
) -> float:
    """Delay before the next read of an in-progress operation; never below Retry-After."""
    elapsed = max((now - started).total_seconds(), 0.0) if started is not None else 0.0
    delay = _spread(min(POLL_CAP, max(POLL_MIN, elapsed * POLL_GROWTH)), jitter)
    return round(max(delay, retry_after or 0.0), 3)


RENEWAL_MARGIN = timedelta(minutes=10)
"""Look for Key Vault's renewed version this long after its AutoRenew trigger."""
RENEWAL_RECHECK = 3600.0
"""Once a renewal is due but not seen yet, look again hourly: rare, bounded, never a poll loop."""


def renewal_check_at(
    not_before: datetime | None,
    not_after: datetime | None,
    actions: Sequence[LifetimeAction] | None,
) -> datetime | None:
    """When Key Vault should have renewed the certificate (AutoRenew only), plus a margin.

    Idle certificates hold no timer: this is the one time to come back, scheduled, not polled.
    """
    if not_before is None or not_after is None:
        return None
    for item in actions or ():
        if item.action is not LifetimeActionType.AUTO_RENEW:
            continue
        trigger = item.trigger
        if trigger.lifetime_percentage is not None:
            at = not_before + (not_after - not_before) * (trigger.lifetime_percentage / 100)
        else:
            at = not_after - timedelta(days=trigger.days_before_expiry or 0)
        return at + RENEWAL_MARGIN
    return None


def renewal_delay(check_at: datetime | None, now: datetime, jitter: float) -> float | None:
    """Seconds until the renewal check; hourly (spread) once it is due; None without AutoRenew."""
    if check_at is None:
        return None
    if check_at > now:
        return round((check_at - now).total_seconds(), 3)
    return round(_spread(RENEWAL_RECHECK, jitter), 3)
