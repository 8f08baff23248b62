"""When to look again: backoff after failures, polling of in-progress operations.

Pure functions of counts, elapsed time and an injected jitter in [0, 1): reconcile never draws a
random number or reads a clock, so the same input always gives the same delay.
"""

from __future__ import annotations

from datetime import datetime

ERROR_BASE = 2.0
ERROR_CAP = 300.0
POLL_MIN = 5.0
POLL_CAP = 300.0
SOURCE_RECHECK = 60.0
"""Seconds between GETs of a missing, or unlabelled, importFrom/mergeFrom Secret (a Secret
labelled kvcert.io/source is watched instead). Renewals are scheduled by reconcile/lifecycle.py."""
POLL_GROWTH = 0.5
"""Poll again after half the time the operation has already taken: a geometric series, so a
20-second issuer is polled a few times and an hour-long one a dozen, with no counter to store."""


def _spread(delay: float, jitter: float) -> float:
    """±20 % so that certificates created together do not poll together."""
    bounded = min(max(jitter, 0.0), 1.0)
    return delay * (0.8 + 0.4 * bounded)


def backoff(attempt: int, jitter: float, retry_after: float | None = None) -> float:
    """Delay before retry number `attempt` (0-based) of a failed call; honours Retry-After."""
    # The exponent is capped: failedAttempts lives in status and may pass 1,024 (OverflowError).
    delay = _spread(min(ERROR_CAP, ERROR_BASE * 2 ** min(max(attempt, 0), 16)), jitter)
    # Retry-After is honoured up to the cap: a gateway's "a day" must not silence a Certificate.
    return round(max(delay, min(retry_after or 0.0, ERROR_CAP)), 3)


def poll_delay(
    started: datetime | None, now: datetime, jitter: float, retry_after: float | None
) -> float:
    """Delay before the next read of an in-progress operation; never below Retry-After."""
    elapsed = max((now - started).total_seconds(), 0.0) if started is not None else 0.0
    delay = _spread(min(POLL_CAP, max(POLL_MIN, elapsed * POLL_GROWTH)), jitter)
    return round(max(delay, retry_after or 0.0), 3)
