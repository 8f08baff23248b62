"""Backoff, Retry-After and the per-vault token buckets, with an injected clock and sleep."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest

from kvcert.keyvault import CertificatePolicySpec, KeyVaultClient, RetryPolicy, StaticToken
from kvcert.keyvault import errors as e
from kvcert.keyvault.retry import TokenBucket, VaultRateLimiter, parse_retry_after

from .conftest import TOKEN, VAULT, FakeSleep, FakeVault, error

Make = Callable[..., KeyVaultClient]
PENDING = "GET /certificates/web/pending"
CREATE = "POST /certificates/web/create"
OK = httpx.Response(200, json={"status": "inProgress", "request_id": "r1"})
ACCEPTED = httpx.Response(202, json={"status": "inProgress", "request_id": "r1"})
SPEC = CertificatePolicySpec(subject="CN=web")


def raises(exc: type[httpx.TransportError]) -> Callable[[httpx.Request], httpx.Response]:
    def answer(request: httpx.Request) -> httpx.Response:
        raise exc("simulated", request=request)

    return answer


async def test_429_waits_as_long_as_retry_after_says(
    vault: FakeVault, make_client: Make, sleep: FakeSleep
) -> None:
    vault.on(PENDING, error(429, "Throttled", "slow down", **{"Retry-After": "3"}), OK)
    async with make_client() as client:
        poll = await client.get_pending_operation("web")
    assert poll.request_id == "r1"
    assert len(sleep.slept) == 1
    assert sleep.slept[0] >= 3.0


async def test_5xx_is_retried_until_success(
    vault: FakeVault, make_client: Make, sleep: FakeSleep
) -> None:
    vault.on(PENDING, error(500, "InternalError", ""), error(503, "Unavailable", ""), OK)
    async with make_client() as client:
        await client.get_pending_operation("web")
    assert len(sleep.slept) == 2
    assert len(vault.authorized()) == 3


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409])
async def test_other_4xx_are_never_retried(
    vault: FakeVault, make_client: Make, sleep: FakeSleep, status: int
) -> None:
    vault.on(PENDING, error(status, "Whatever", "no"), OK)
    async with make_client() as client:
        with pytest.raises(e.KeyVaultHTTPError):
            await client.get_pending_operation("web")
    assert len(vault.authorized()) == 1
    assert sleep.slept == []


async def test_attempts_are_capped(vault: FakeVault, make_client: Make, sleep: FakeSleep) -> None:
    vault.on(PENDING, error(503, "Unavailable", ""))
    async with make_client(retry=RetryPolicy(max_attempts=3, sleep=sleep)) as client:
        with pytest.raises(e.ServerError):
            await client.get_pending_operation("web")
    assert len(vault.authorized()) == 3
    assert len(sleep.slept) == 2


async def test_a_retry_after_beyond_the_budget_is_handed_to_the_caller(
    vault: FakeVault, make_client: Make, sleep: FakeSleep
) -> None:
    vault.on(PENDING, error(429, "Throttled", "later", **{"Retry-After": "120"}), OK)
    async with make_client(retry=RetryPolicy(max_total=60.0, sleep=sleep)) as client:
        with pytest.raises(e.Throttled) as caught:
            await client.get_pending_operation("web")
    assert caught.value.retry_after == 120.0
    assert sleep.slept == []


async def test_the_default_policy_holds_a_call_for_seconds_not_a_minute(
    vault: FakeVault, make_client: Make, sleep: FakeSleep
) -> None:
    """Issue #18 §2: the caller holds its Certificate's lock while a call retries in place, so
    a Retry-After longer than the in-call budget goes back to the scheduler at once, and
    retries of 5xx answers sleep a few seconds in all."""
    vault.on(PENDING, error(429, "Throttled", "later", **{"Retry-After": "10"}), OK)
    async with make_client(retry=RetryPolicy(sleep=sleep)) as client:
        with pytest.raises(e.Throttled) as caught:
            await client.get_pending_operation("web")
    assert caught.value.retry_after == 10.0
    assert sleep.slept == []
    vault.on(PENDING, *[error(503, "Unavailable", "")] * 10)
    async with make_client(retry=RetryPolicy(sleep=sleep)) as client:
        with pytest.raises(e.ServerError):
            await client.get_pending_operation("web")
    assert sum(sleep.slept) <= RetryPolicy().max_total <= 8.0


@pytest.mark.parametrize(
    ("answer", "retried"),
    [
        pytest.param(error(429, "Throttled", ""), True, id="429: the vault did not act"),
        pytest.param(error(503, "Unavailable", ""), True, id="503: the vault did not act"),
        pytest.param(error(500, "InternalError", ""), False, id="500: it may have acted"),
        pytest.param(raises(httpx.ReadTimeout), False, id="read timeout: it may have acted"),
        pytest.param(raises(httpx.ConnectError), True, id="connect error: never sent"),
        pytest.param(raises(httpx.ConnectTimeout), True, id="connect timeout: never sent"),
    ],
)
async def test_a_create_is_retried_only_when_the_vault_cannot_have_acted(
    vault: FakeVault, make_client: Make, answer: httpx.Response, retried: bool
) -> None:
    vault.on(CREATE, answer, ACCEPTED)
    async with make_client() as client:
        if retried:
            await client.create_certificate("web", SPEC)
        else:
            with pytest.raises(e.KeyVaultError):
                await client.create_certificate("web", SPEC)
    assert len(vault.authorized()) == (2 if retried else 1)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (httpx.ReadTimeout, e.KeyVaultTimeout),
        (httpx.ConnectTimeout, e.KeyVaultTimeout),
        (httpx.ConnectError, e.KeyVaultConnectionError),
        (httpx.RemoteProtocolError, e.KeyVaultConnectionError),
    ],
)
async def test_transport_failures_are_retried_for_reads(
    vault: FakeVault,
    make_client: Make,
    sleep: FakeSleep,
    exc: type[httpx.TransportError],
    expected: type[Exception],
) -> None:
    vault.on(PENDING, raises(exc))
    async with make_client(retry=RetryPolicy(max_attempts=2, sleep=sleep)) as client:
        with pytest.raises(expected):
            await client.get_pending_operation("web")
    assert len(vault.authorized()) == 2


async def test_tls_failures_are_not_retried(vault: FakeVault, make_client: Make) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(
            "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed", request=request
        )

    vault.on(PENDING, answer)
    async with make_client() as client:
        with pytest.raises(e.KeyVaultTLSError):
            await client.get_pending_operation("web")
    assert len(vault.authorized()) == 1


def test_backoff_is_full_jitter_within_the_cap() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=8.0)
    for attempt in range(10):
        for _ in range(50):
            assert 0.0 <= policy.backoff(attempt) <= min(8.0, 2.0**attempt)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("10", 10.0),
        (" 1.5 ", 1.5),
        ("-3", 0.0),
        ("Sun, 22 Nov 2026 12:00:30 GMT", 30.0),
        ("Sun, 22 Nov 2026 11:59:00 GMT", 0.0),
        ("soon", None),
        ("", None),
        (None, None),
        ("nan", None),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    now = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after(header, now=now) == seconds


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def test_bucket_allows_a_burst_then_paces() -> None:
    clock = FakeClock()
    bucket = TokenBucket(20, 10.0, clock=clock, sleep=clock.sleep)
    for _ in range(20):
        await bucket.acquire()
    assert clock.now == 0.0
    await bucket.acquire()
    assert clock.now == pytest.approx(0.5)  # 20 per 10 s: one token every 0.5 s
    for _ in range(20):
        await bucket.acquire()
    assert clock.now == pytest.approx(10.5)


async def test_bucket_refills_while_idle_but_not_beyond_capacity() -> None:
    clock = FakeClock()
    bucket = TokenBucket(4, 10.0, clock=clock, sleep=clock.sleep)
    for _ in range(4):
        await bucket.acquire()
    clock.now += 1000.0
    for _ in range(4):
        await bucket.acquire()
    assert clock.slept == []
    await bucket.acquire()
    assert clock.slept == [pytest.approx(2.5)]


async def test_concurrent_waiters_all_get_through_in_order() -> None:
    clock = FakeClock()
    bucket = TokenBucket(2, 1.0, clock=clock, sleep=clock.sleep)
    done: list[int] = []

    async def take(i: int) -> None:
        await bucket.acquire()
        done.append(i)

    await asyncio.gather(*(take(i) for i in range(6)))
    assert done == list(range(6))
    assert clock.now == pytest.approx(2.0)


async def test_creates_and_other_calls_have_separate_budgets() -> None:
    clock = FakeClock()
    limiter = VaultRateLimiter(
        creates_per_10s=1, others_per_10s=100, clock=clock, sleep=clock.sleep
    )
    await limiter.acquire(create=True)
    for _ in range(50):
        await limiter.acquire()
    assert clock.now == 0.0
    await limiter.acquire(create=True)
    assert clock.now == pytest.approx(10.0)


async def test_the_client_spends_a_create_token_on_create_only(
    vault: FakeVault, sleep: FakeSleep
) -> None:
    clock = FakeClock()
    limiter = VaultRateLimiter(
        creates_per_10s=1, others_per_10s=100, clock=clock, sleep=clock.sleep
    )
    vault.on(CREATE, ACCEPTED)
    vault.on(PENDING, OK)
    client = KeyVaultClient(
        VAULT,
        StaticToken(TOKEN),
        transport=httpx.MockTransport(vault.handler),
        retry=RetryPolicy(sleep=sleep),
        rate_limiter=limiter,
    )
    async with client:
        await client.create_certificate("web", SPEC)
        await client.get_pending_operation("web")
        assert clock.now == 0.0
        await client.create_certificate("web", SPEC)
    assert clock.now == pytest.approx(10.0)
