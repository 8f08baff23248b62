"""When to try a Key Vault call again, and how to stay under the vault's limits.

Retries are for transient failures only: 429, 5xx, timeouts and connection errors; any other
4xx is an answer about the request and is raised at once. Non-idempotent calls (create, import,
merge) are retried only when the vault cannot have acted: 429, 503, or a connection that never
opened. Retrying a create after a read timeout could make a second Key Vault certificate, which
the operator's one-create-per-generation rule forbids.

A wait the service asks for (Retry-After) is honoured; when it exceeds what is left of the time
budget the error is raised with `retry_after` set, so the caller reschedules instead of holding
a task for minutes.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

from kvcert.keyvault.errors import (
    ClientClosed,
    KeyVaultError,
    KeyVaultHTTPError,
    KeyVaultTLSError,
    KeyVaultTransportError,
    ServerError,
    Throttled,
)

log = logging.getLogger("kvcert.keyvault")
T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]

# Key Vault's published service limits, per vault per 10 seconds.
CREATES_PER_10S = 20
OTHERS_PER_10S = 4000


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def is_retryable(error: KeyVaultError, *, idempotent: bool) -> bool:
    if isinstance(error, Throttled):
        return True
    if isinstance(error, KeyVaultTLSError | ClientClosed):
        return False
    if isinstance(error, KeyVaultTransportError) and not error.request_sent:
        return True
    if not idempotent:
        return isinstance(error, ServerError) and error.status == 503
    return isinstance(error, ServerError | KeyVaultTransportError)


@dataclass
class RetryPolicy:
    """Exponential backoff with full jitter, capped in attempts and in total time (seconds).

    The caps are a few seconds (issue #18 §2): a call is retried in place only for short
    blips, because the caller holds its Certificate's lock (and perhaps a create slot) while
    it waits. No single wait exceeds `max_delay`, nor all of them `max_total`: a Retry-After
    above `max_delay`, or beyond what is left of `max_total`, raises the error at once with its
    `retry_after`, and the reconcile's backoff hands it to the scheduler
    (kvcert.reconcile.schedule.backoff waits at least that long)."""

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 4.0
    max_total: float = 8.0
    sleep: Sleep = asyncio.sleep
    clock: Clock = time.monotonic
    rng: random.Random = field(default_factory=random.Random)

    def backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**attempt)] (attempt counts from 0)."""
        return self.rng.uniform(0.0, min(self.max_delay, self.base_delay * 2**attempt))

    async def run(self, call: Callable[[], Awaitable[T]], *, idempotent: bool = True) -> T:
        started = self.clock()
        attempt = 0
        while True:
            try:
                return await call()
            except KeyVaultError as error:
                attempt += 1
                if attempt >= self.max_attempts or not is_retryable(error, idempotent=idempotent):
                    raise
                delay = self.backoff(attempt - 1)
                hinted = error.retry_after if isinstance(error, KeyVaultHTTPError) else None
                if hinted is not None:
                    if hinted > self.max_delay:
                        raise  # too long to hold the caller's lock: the scheduler waits it
                    delay = max(delay, hinted)
                if self.clock() - started + delay > self.max_total:
                    raise
                log.info(
                    "Key Vault call failed (%s), attempt %d of %d, retrying in %.1f s",
                    _describe(error),
                    attempt,
                    self.max_attempts,
                    delay,
                )
                await self.sleep(delay)


def _describe(error: KeyVaultError) -> str:
    if isinstance(error, KeyVaultHTTPError):
        return f"{error.status} {error.code or type(error).__name__}"
    return type(error).__name__


class TokenBucket:
    """`capacity` requests at once, refilled continuously to `capacity` per `period` seconds.
    Waiters queue on a lock, so they are served in arrival order."""

    def __init__(
        self,
        capacity: int,
        period: float,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.capacity = float(capacity)
        self.rate = capacity / period
        self._tokens = float(capacity)
        self._clock = clock
        self._sleep = sleep
        self._stamp = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    async def acquire(self) -> None:
        async with self._lock:
            self._refill()
            while self._tokens < 1.0:
                await self._sleep((1.0 - self._tokens) / self.rate)
                self._refill()
            self._tokens -= 1.0


class VaultRateLimiter:
    """Key Vault's two budgets for one vault: certificate/key creates, and everything else.
    One per vault, shared by every client of that vault (kept with the operator's settings,
    not in a module global)."""

    def __init__(
        self,
        *,
        creates_per_10s: int = CREATES_PER_10S,
        others_per_10s: int = OTHERS_PER_10S,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.creates = TokenBucket(creates_per_10s, 10.0, clock=clock, sleep=sleep)
        self.others = TokenBucket(others_per_10s, 10.0, clock=clock, sleep=sleep)

    async def acquire(self, *, create: bool = False) -> None:
        await (self.creates if create else self.others).acquire()
