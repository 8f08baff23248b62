"""Requeues: one deadline per Certificate in the operator's clock time, fired by one task."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from kvcert.runtime.clock import Clock
from kvcert.runtime.schedule import Requeues, Rounds


class _Clock(Clock):
    """A clock the test moves by hand (the file-based offset, without the file)."""

    def __init__(self) -> None:
        super().__init__()
        self.moved = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.moved


class _Fired:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []
        self.event = asyncio.Event()

    async def __call__(self, namespace: str, name: str, uid: str) -> None:
        self.calls.append((namespace, name, uid))
        self.event.set()


def _requeues() -> tuple[Requeues, _Clock, _Fired]:
    clock, fired = _Clock(), _Fired()
    return Requeues(clock, fired), clock, fired


async def test_a_deadline_in_clock_time_fires_when_the_clock_moves_past_it():
    requeues, clock, fired = _requeues()
    requeues.start()
    try:
        requeues.schedule("u1", "ns", "web", 3600)
        await asyncio.sleep(0.05)
        assert fired.calls == []
        clock.moved = timedelta(hours=1, seconds=1)
        requeues.wake()  # what the clock file's follower does
        await asyncio.wait_for(fired.event.wait(), 2)
        assert fired.calls == [("ns", "web", "u1")]
        assert "u1" not in requeues
    finally:
        await requeues.close()


async def test_a_short_delay_fires_without_the_clock_moving():
    requeues, _, fired = _requeues()
    requeues.start()
    try:
        requeues.schedule("u1", "ns", "web", 3600)
        requeues.schedule("u2", "ns", "api", 0.05)  # earlier: wakes the sleeper
        await asyncio.wait_for(fired.event.wait(), 2)
        assert fired.calls == [("ns", "api", "u2")]
        assert "u1" in requeues
    finally:
        await requeues.close()


def test_due_pops_only_passed_deadlines_earliest_first():
    requeues, clock, _ = _requeues()
    requeues.schedule("late", "ns", "b", 20)
    requeues.schedule("early", "ns", "a", 10)
    requeues.schedule("later", "ns", "c", 30)
    clock.moved = timedelta(seconds=25)
    assert [uid for uid, _ in requeues.due()] == ["early", "late"]
    assert len(requeues) == 1
    assert 0 < (requeues.seconds_to_next() or 0) <= 5


def test_cancel_drops_the_deadline_and_a_new_schedule_replaces_it():
    requeues, clock, _ = _requeues()
    requeues.schedule("u1", "ns", "web", 10)
    requeues.cancel("u1")
    assert "u1" not in requeues
    assert requeues.seconds_to_next() is None
    requeues.schedule("u1", "ns", "web", 10)
    requeues.schedule("u1", "ns", "web", 100)  # a newer decision replaces the older one
    clock.moved = timedelta(seconds=50)
    assert requeues.due() == []
    assert requeues.deadline("u1") is not None


def test_soon_never_postpones_an_earlier_deadline_and_keep_earlier_keeps_it():
    requeues, _, _ = _requeues()
    requeues.soon("u1", "ns", "web")
    first = requeues.deadline("u1")
    requeues.schedule("u1", "ns", "web", 300, keep_earlier=True)
    assert requeues.deadline("u1") == first
    requeues.schedule("u2", "ns", "api", 300)
    before = requeues.deadline("u2")
    requeues.soon("u2", "ns", "api")
    after = requeues.deadline("u2")
    assert before is not None
    assert after is not None
    assert after < before


def test_an_object_without_a_deadline_has_no_entry():
    requeues, _, _ = _requeues()
    assert len(requeues) == 0
    assert requeues.deadline("idle") is None
    requeues.cancel("idle")  # cancelling nothing is harmless
    assert len(requeues) == 0


def test_cancelled_slots_do_not_accumulate():
    requeues, _, _ = _requeues()
    for _ in range(1000):
        requeues.schedule("u1", "ns", "web", 10)
    assert len(requeues) == 1
    assert len(requeues._heap) <= 2 * len(requeues) + 65


async def test_close_cancels_everything():
    requeues, clock, fired = _requeues()
    requeues.start()
    requeues.schedule("u1", "ns", "web", 10)
    await requeues.close()
    assert len(requeues) == 0
    clock.moved = timedelta(seconds=60)
    await asyncio.sleep(0.05)
    assert fired.calls == []


@pytest.mark.parametrize(
    ("kept", "status", "expected"),
    [
        (None, {}, 0),
        (None, {"failedAttempts": 3}, 3),  # after a restart: the status's count
        (None, {"failedAttempts": "3"}, 0),  # not a count: ignored
        (None, {"failedAttempts": -1}, 0),
        (5, {"failedAttempts": 3}, 5),  # in memory wins: the status write may have failed
    ],
)
def test_the_attempt_comes_from_memory_else_from_status(
    kept: int | None, status: dict[str, object], expected: int
) -> None:
    rounds = Rounds()
    if kept is not None:
        rounds.attempts["u"] = kept
    assert rounds.attempt("u", {"status": status}) == expected


def test_a_failed_round_counts_and_a_good_one_forgets() -> None:
    rounds = Rounds()
    assert rounds.ended("u", failed=True, attempt=2) == 3
    assert rounds.attempt("u", {}) == 3
    assert rounds.ended("u", failed=False, attempt=3) == 0
    assert "u" not in rounds.attempts


def _cert(generation: int = 1, **annotations: str) -> dict[str, object]:
    return {"metadata": {"generation": generation, "annotations": annotations}, "status": {}}


@pytest.mark.parametrize(
    ("event", "waits"),
    [
        (_cert(), True),  # the echo of the failed round's own failedAttempts write
        (_cert(2), False),  # a new spec
        (_cert(**{"kvcert.io/retry": "now"}), False),  # a request annotation
        (
            {"metadata": {"generation": 1, "deletionTimestamp": "2026-11-30T00:00:00Z"}},
            False,
        ),  # a deletion
    ],
)
def test_after_a_round_raised_only_its_own_echo_waits_for_the_backoff(
    event: dict[str, object], waits: bool
) -> None:
    """A round that raised writes failedAttempts but no observedGeneration: its echo must not
    run a round at once (1,763 rounds in 21 s were seen before), anything new must."""
    rounds = Rounds()
    rounds.failed_on("u", _cert())
    assert rounds.backing_off("u", event) is waits
    rounds.ended("u", failed=False, attempt=1)
    assert not rounds.backing_off("u", _cert())


def test_a_hold_keeps_any_round_until_retry_after_and_then_goes() -> None:
    """Key Vault's Retry-After holds every round of the Certificate, whatever starts it."""
    rounds = Rounds()
    start = datetime(2026, 11, 30, tzinfo=UTC)
    assert rounds.held_for("u", start) == 0.0
    rounds.hold("u", start + timedelta(seconds=6))
    assert rounds.held_for("u", start + timedelta(seconds=0.5)) == 5.5
    assert rounds.held_for("u", start + timedelta(seconds=6)) == 0.0
    assert "u" not in rounds.holds
    rounds.hold("u", start + timedelta(seconds=6))
    rounds.forget("u")
    assert rounds.held_for("u", start) == 0.0
