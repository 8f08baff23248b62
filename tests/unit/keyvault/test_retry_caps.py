"""RetryPolicy never holds a call long (issue #18 §2): no in-call wait above `max_delay`, none
in all above `max_total`, a Retry-After never cut short, a longer one handed to the caller at
once; and no request slot is held while a call waits to retry."""

from __future__ import annotations

import asyncio
import random

import httpx
import pytest

from kvcert.keyvault import KeyVaultClient, RetryPolicy, StaticToken, VaultRateLimiter, session
from kvcert.keyvault import errors as e

from .conftest import TOKEN, VAULT, FakeVault, error

PENDING = "GET /certificates/web/pending"
OK = httpx.Response(200, json={"status": "inProgress", "request_id": "r1"})


class Clock:
    """A fake monotonic clock: sleeps and calls move it, nothing waits for real."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def failures(rng: random.Random) -> list[tuple[float, e.KeyVaultError]]:
    """A random script of (seconds the call takes, the error it ends with)."""
    script: list[tuple[float, e.KeyVaultError]] = []
    for _ in range(rng.randint(1, 8)):
        kind = rng.choice(("429", "500", "503", "timeout", "reset"))
        took = rng.choice((0.01, 0.2, 1.0))
        if kind == "429":
            wait = float(rng.randint(0, 12))
            script.append((took, e.Throttled(429, "Throttled", "slow down", retry_after=wait)))
        elif kind in ("500", "503"):
            script.append((took, e.ServerError(int(kind), "ServerError", "")))
        elif kind == "timeout":
            script.append((30.0, e.KeyVaultTimeout("timed out")))
        else:
            script.append((took, e.KeyVaultConnectionError("connection reset")))
    return script


@pytest.mark.parametrize("idempotent", [True, False], ids=["read", "create"])
@pytest.mark.parametrize("seed", range(40))
async def test_no_wait_is_long_none_in_all_is_long_and_retry_after_is_never_cut_short(
    seed: int, idempotent: bool
) -> None:
    rng = random.Random(seed)
    script = failures(rng)
    clock = Clock()
    policy = RetryPolicy(sleep=clock.sleep, clock=clock, rng=random.Random(seed))
    hints: list[float | None] = []

    async def call() -> str:
        if not script:
            return "ok"
        took, failure = script.pop(0)
        clock.now += took
        hints.append(failure.retry_after if isinstance(failure, e.KeyVaultHTTPError) else None)
        raise failure

    raised: e.KeyVaultError | None = None
    try:
        await policy.run(call, idempotent=idempotent)
    except e.KeyVaultError as exc:
        raised = exc
    if isinstance(raised, e.Throttled):
        # Handed back: the Retry-After the caller's scheduler must honour travels with it.
        assert raised.retry_after == hints[-1]
    assert all(wait <= policy.max_delay for wait in clock.slept), clock.slept
    assert sum(clock.slept) <= policy.max_total
    for wait, hint in zip(clock.slept, hints, strict=False):
        assert wait >= (hint or 0.0), "a Retry-After was cut short"


@pytest.mark.parametrize("seconds", ["5", "30", "3600"])
async def test_a_retry_after_longer_than_one_wait_goes_back_to_the_caller_at_once(
    seconds: str,
) -> None:
    vault = FakeVault()
    vault.on(PENDING, error(429, "Throttled", "later", **{"Retry-After": seconds}), OK)
    clock = Clock()
    client = KeyVaultClient(
        VAULT,
        StaticToken(TOKEN),
        transport=httpx.MockTransport(vault.handler),
        retry=RetryPolicy(sleep=clock.sleep, clock=clock),
        rate_limiter=VaultRateLimiter(sleep=clock.sleep, clock=clock),
    )
    async with client:
        with pytest.raises(e.Throttled) as caught:
            await client.get_pending_operation("web")
    assert caught.value.retry_after == float(seconds)
    assert clock.slept == []
    assert len(vault.authorized()) == 1


async def test_a_short_retry_after_is_waited_in_place_in_full() -> None:
    vault = FakeVault()
    vault.on(PENDING, error(429, "Throttled", "soon", **{"Retry-After": "3"}), OK)
    clock = Clock()
    client = KeyVaultClient(
        VAULT,
        StaticToken(TOKEN),
        transport=httpx.MockTransport(vault.handler),
        retry=RetryPolicy(sleep=clock.sleep, clock=clock),
        rate_limiter=VaultRateLimiter(sleep=clock.sleep, clock=clock),
    )
    async with client:
        poll = await client.get_pending_operation("web")
    assert poll.request_id == "r1"
    assert len(clock.slept) == 1
    assert 3.0 <= clock.slept[0] <= RetryPolicy().max_delay


async def test_a_call_that_timed_out_is_not_retried_past_the_budget() -> None:
    """A read that stalled for the whole read timeout has used up the in-call budget: it is
    raised (retryable later), not sent again while the caller holds its lock."""
    clock = Clock()
    policy = RetryPolicy(sleep=clock.sleep, clock=clock)
    calls = 0

    async def stalled() -> None:
        nonlocal calls
        calls += 1
        clock.now += 30.0
        raise e.KeyVaultTimeout("timed out")

    with pytest.raises(e.KeyVaultTimeout):
        await policy.run(stalled)
    assert calls == 1
    assert clock.slept == []


async def test_no_request_slot_is_held_while_a_call_waits_to_retry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With one request slot, a call sleeping on a Retry-After does not block another call:
    the slot is taken per exchange, and the wait is outside it."""
    monkeypatch.setattr(session, "MAX_IN_FLIGHT", 1)
    vault = FakeVault()
    vault.on(PENDING, error(429, "Throttled", "soon", **{"Retry-After": "2"}), OK)
    vault.on("GET /certificates/api/pending", OK)
    waiting, release = asyncio.Event(), asyncio.Event()

    async def sleep(seconds: float) -> None:
        if seconds >= 2.0:  # the throttled call's wait: hold it until the other call is done
            waiting.set()
            await release.wait()

    client = KeyVaultClient(
        VAULT,
        StaticToken(TOKEN),
        transport=httpx.MockTransport(vault.handler),
        retry=RetryPolicy(sleep=sleep),
        rate_limiter=VaultRateLimiter(sleep=sleep),
    )
    async with client:
        throttled = asyncio.create_task(client.get_pending_operation("web"))
        await asyncio.wait_for(waiting.wait(), 5)
        other = await asyncio.wait_for(client.get_pending_operation("api"), 5)
        release.set()
        first = await asyncio.wait_for(throttled, 5)
    assert (other.request_id, first.request_id) == ("r1", "r1")
