"""The priority semaphore in front of one vault's requests (kvcert.keyvault.slots), in pure
asyncio: waiters are queued through events, served through a chain of releases, and never
timed. Service order is (priority, arrival); cancellation takes nothing and leaves nothing."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from kvcert.keyvault import (
    CertificatePolicySpec,
    KeyVaultClient,
    StaticToken,
    VaultRateLimiter,
    session,
)
from kvcert.keyvault.slots import PrioritySlots

from .conftest import RESOURCE, TOKEN, VAULT

Waiter = tuple[str, int]
"""(name, priority) of one task that queues for a slot."""


async def queue(
    slots: PrioritySlots, name: str, priority: int, served: list[str]
) -> asyncio.Task[None]:
    """A task that waits for a slot, records `name` once it has one, and releases it at once
    (so one release at the head serves the whole queue in order). Returns once the task is
    inside acquire(): its own first step runs before the event wakes this one up."""
    started = asyncio.Event()

    async def wait() -> None:
        started.set()
        await slots.acquire(priority)
        served.append(name)
        slots.release()

    task = asyncio.create_task(wait(), name=name)
    await started.wait()
    return task


@pytest.mark.parametrize(
    ("waiters", "order"),
    [
        pytest.param(
            [("a", 0), ("b", 0), ("c", 0)],
            ["a", "b", "c"],
            id="equal priorities are served in arrival order",
        ),
        pytest.param(
            [("create-1", 1), ("create-2", 1), ("read", 0)],
            ["read", "create-1", "create-2"],
            id="a read that arrives after two creates is served before them",
        ),
        pytest.param(
            [("create-1", 1), ("read-1", 0), ("create-2", 1), ("read-2", 0)],
            ["read-1", "read-2", "create-1", "create-2"],
            id="reads keep their arrival order among themselves, ahead of every create",
        ),
        pytest.param(
            [("low", 2), ("middle", 1), ("high", 0)],
            ["high", "middle", "low"],
            id="three priorities are served lowest number first",
        ),
    ],
)
async def test_waiters_are_served_by_priority_then_arrival(
    waiters: list[Waiter], order: list[str]
) -> None:
    slots = PrioritySlots(1)
    await slots.acquire()  # the holder every waiter queues behind
    served: list[str] = []
    tasks = [await queue(slots, name, priority, served) for name, priority in waiters]
    assert slots.waiting == len(waiters)
    slots.release()
    await asyncio.gather(*tasks)
    assert served == order
    assert (slots.in_use, slots.waiting) == (0, 0)


async def test_a_free_slot_is_taken_without_waiting() -> None:
    slots = PrioritySlots(2)
    await slots.acquire(5)
    await slots.acquire(0)
    assert (slots.in_use, slots.waiting) == (2, 0)
    slots.release()
    slots.release()
    assert slots.in_use == 0


async def test_no_more_than_limit_tasks_hold_a_slot() -> None:
    slots = PrioritySlots(2)
    gate = asyncio.Event()
    holding: list[int] = []

    async def hold() -> None:
        await slots.acquire()
        try:
            holding.append(slots.in_use)
            await gate.wait()
        finally:
            slots.release()

    tasks = [asyncio.create_task(hold()) for _ in range(5)]
    await asyncio.sleep(0)  # one loop pass: each task runs to its first suspension
    assert (slots.in_use, slots.waiting) == (2, 3)
    gate.set()
    await asyncio.gather(*tasks)
    assert max(holding) == 2
    assert (slots.in_use, slots.waiting) == (0, 0)


async def test_a_released_slot_goes_to_the_waiter_not_to_a_newcomer() -> None:
    slots = PrioritySlots(1)
    await slots.acquire()
    served: list[str] = []
    waiter = await queue(slots, "waiter", 1, served)
    slots.release()  # handed to the waiter, which has not run yet
    assert (slots.in_use, slots.waiting) == (1, 0)
    await slots.acquire(0)  # a newcomer, better priority, same step: it waits its turn
    assert served == ["waiter"]
    await waiter
    slots.release()
    assert (slots.in_use, slots.waiting) == (0, 0)


async def test_a_waiter_cancelled_while_waiting_takes_nothing_and_leaves_the_queue() -> None:
    slots = PrioritySlots(1)
    await slots.acquire()
    served: list[str] = []
    cancelled = await queue(slots, "cancelled", 0, served)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert (slots.in_use, slots.waiting) == (1, 0)
    slots.release()
    assert slots.in_use == 0
    assert served == []


async def test_a_cancelled_waiter_in_the_middle_is_skipped() -> None:
    slots = PrioritySlots(1)
    await slots.acquire()
    served: list[str] = []
    first = await queue(slots, "first", 0, served)
    middle = await queue(slots, "middle", 0, served)
    last = await queue(slots, "last", 1, served)
    middle.cancel()
    with pytest.raises(asyncio.CancelledError):
        await middle
    assert slots.waiting == 2
    slots.release()
    await asyncio.gather(first, last)
    assert served == ["first", "last"]
    assert (slots.in_use, slots.waiting) == (0, 0)


async def test_a_waiter_cancelled_after_it_was_handed_a_slot_passes_the_slot_on() -> None:
    slots = PrioritySlots(1)
    await slots.acquire()
    served: list[str] = []
    handed = await queue(slots, "handed", 0, served)
    next_one = await queue(slots, "next", 1, served)
    slots.release()  # hands the slot to `handed`, which has not resumed yet
    handed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await handed
    await next_one
    assert served == ["next"]
    assert (slots.in_use, slots.waiting) == (0, 0)


async def test_a_release_that_finds_only_a_cancelled_waiter_frees_the_slot() -> None:
    slots = PrioritySlots(1)
    await slots.acquire()
    served: list[str] = []
    cancelled = await queue(slots, "cancelled", 0, served)
    cancelled.cancel()  # its future is cancelled; the task has not run its cleanup yet
    slots.release()
    assert (slots.in_use, slots.waiting) == (0, 0)
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert (slots.in_use, slots.waiting) == (0, 0)
    await slots.acquire()  # the slot is free again, not lost
    assert slots.in_use == 1


async def test_a_release_without_an_acquire_is_refused() -> None:
    slots = PrioritySlots(1)
    with pytest.raises(RuntimeError, match="without a matching acquire"):
        slots.release()


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        PrioritySlots(0)


async def test_the_session_serves_reads_before_the_creates_queued_ahead_of_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One request slot, held by a read the vault has not answered; two creates queue, then a
    read: when the slot frees, the read goes first, then the creates in their order."""
    monkeypatch.setattr(session, "MAX_IN_FLIGHT", 1)
    arrived: asyncio.Queue[str] = asyncio.Queue()
    answers: dict[str, asyncio.Future[None]] = {}

    async def handler(request: httpx.Request) -> httpx.Response:
        if "authorization" not in request.headers:
            return httpx.Response(
                401, headers={"WWW-Authenticate": f'Bearer resource="{RESOURCE}"'}, json={}
            )
        name = request.url.path.split("/")[2]
        await arrived.put(name)
        if name in answers:
            await answers[name]
        operation = {"status": "inProgress", "request_id": name}
        return httpx.Response(202 if request.method == "POST" else 200, json=operation)

    client = KeyVaultClient(
        VAULT,
        StaticToken(TOKEN),
        transport=httpx.MockTransport(handler),
        rate_limiter=VaultRateLimiter(creates_per_10s=100),
    )
    spec = CertificatePolicySpec(subject="CN=web")
    async with client:
        await client.get_pending_operation("warm")  # the challenge is answered once, up front
        assert await arrived.get() == "warm"
        answers["holder"] = asyncio.get_running_loop().create_future()
        holder = asyncio.create_task(client.get_pending_operation("holder"))
        assert await arrived.get() == "holder"  # it holds the only slot until answered
        creates = [
            asyncio.create_task(client.create_certificate(name, spec)) for name in ("c1", "c2")
        ]
        read = asyncio.create_task(client.get_pending_operation("r1"))
        await asyncio.sleep(0)  # one loop pass: each new task runs up to its wait for a slot
        assert client._session._in_flight.waiting == 3
        answers["holder"].set_result(None)
        order = [await arrived.get() for _ in range(3)]
        done = await asyncio.gather(holder, read, *creates)
    assert order == ["r1", "c1", "c2"]
    assert [operation.request_id for operation in done] == ["holder", "r1", "c1", "c2"]
