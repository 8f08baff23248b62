"""Per-Certificate rounds: when the next one runs, one at a time, and failures in a row.

Issue #18 §6: the scheduled re-reconciles (`Requeues`), the per-object locks and the count of
failed rounds (`Rounds`) live here, and every task started here is referenced until it ends.

Scheduled reconciles ("requeues"): one deadline per Certificate, in the operator's clock time.

A decision may ask to be looked at again after a delay (an operation in progress is polled, a
failure backs off, a renewal point is waited for). The deadline is stored as `clock.now() +
delay`, so a test that moves the operator's clock (kvcert.runtime.clock) makes requeues fall due
without sleeping. One asyncio task serves them all: it sleeps until the earliest deadline, or
until it is woken (an earlier deadline was set, or the clock changed), and then fires every due
entry. A Certificate without a deadline has no entry at all: an idle Ready certificate costs
nothing (DESIGN §5), and a pending one costs a dict entry and a heap slot, never a timer.

Semantics (those of the `call_later` handles this replaces): a new reconcile cancels the pending
requeue (`cancel`), a deleted Certificate drops it (`cancel`), `close` cancels everything. An
event that wants a reconcile *now* (a deleted output Secret, a changed source Secret) uses
`soon`, which never postpones a deadline that is already earlier.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from kvcert.api.lifecycle import RENEW_ANNOTATION, RETRY_ANNOTATION
from kvcert.runtime.clock import Clock

log = logging.getLogger("kvcert.schedule")

Fire = Callable[[str, str, str], Coroutine[object, object, None]]
"""`fire(namespace, name, uid)`: one scheduled reconcile (handlers._requeue)."""

MAX_SLEEP = 300.0
"""Seconds the scheduler sleeps at most before it looks again (guards against a lost wake-up)."""


@dataclass(frozen=True)
class Entry:
    """A pending requeue: when (clock time, aware UTC) and which object."""

    deadline: datetime
    namespace: str
    name: str
    seq: int


class Requeues:
    """Deadlines keyed by Certificate uid, fired by one task (`start`)."""

    def __init__(self, clock: Clock, fire: Fire) -> None:
        self.clock = clock
        self._fire = fire
        self._entries: dict[str, Entry] = {}
        self._heap: list[tuple[datetime, int, str]] = []
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, uid: object) -> bool:
        return uid in self._entries

    def deadline(self, uid: str) -> datetime | None:
        """The pending deadline of `uid` (clock time), None when nothing is scheduled."""
        entry = self._entries.get(uid)
        return entry.deadline if entry is not None else None

    def schedule(
        self, uid: str, namespace: str, name: str, delay: float, *, keep_earlier: bool = False
    ) -> None:
        """Reconcile `uid` again `delay` seconds from the clock's now (replacing its deadline;
        with `keep_earlier`, an earlier deadline already set stays)."""
        deadline = self.clock.now() + timedelta(seconds=max(delay, 0.0))
        current = self._entries.get(uid)
        if keep_earlier and current is not None and current.deadline <= deadline:
            return
        seq = next(self._seq)
        self._entries[uid] = Entry(deadline, namespace, name, seq)
        heapq.heappush(self._heap, (deadline, seq, uid))
        if self._heap[0][1] == seq:
            self._wake.set()  # the earliest deadline moved: the sleeper must look again
        self._compact()

    def soon(self, uid: str, namespace: str, name: str) -> None:
        """Reconcile `uid` as soon as possible, without postponing an earlier deadline."""
        self.schedule(uid, namespace, name, 0.0, keep_earlier=True)

    def cancel(self, uid: str) -> None:
        """Drop the pending requeue of `uid`, if any (its heap slot is skipped when reached)."""
        self._entries.pop(uid, None)

    def wake(self) -> None:
        """Re-evaluate every deadline now (the clock changed)."""
        self._wake.set()

    def due(self) -> list[tuple[str, Entry]]:
        """Pop and return the entries whose deadline has passed on the clock, earliest first."""
        now = self.clock.now()
        fired = []
        while self._heap and self._heap[0][0] <= now:
            _, seq, uid = heapq.heappop(self._heap)
            entry = self._entries.get(uid)
            if entry is not None and entry.seq == seq:
                del self._entries[uid]
                fired.append((uid, entry))
        return fired

    def seconds_to_next(self) -> float | None:
        """Seconds of clock time until the earliest live deadline; None when there is none."""
        while self._heap:
            deadline, seq, uid = self._heap[0]
            entry = self._entries.get(uid)
            if entry is not None and entry.seq == seq:
                return max((deadline - self.clock.now()).total_seconds(), 0.0)
            heapq.heappop(self._heap)  # cancelled or replaced
        return None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="kvcert-requeues")

    async def run(self) -> None:
        """Fire due entries forever: sleep until the next deadline or a wake-up."""
        while True:
            for uid, entry in self.due():
                task: asyncio.Task[None] = asyncio.create_task(
                    self._fire(entry.namespace, entry.name, uid)
                )
                self._running.add(task)
                task.add_done_callback(self._running.discard)
            wait = self.seconds_to_next()
            self._wake.clear()
            if wait is not None and wait <= 0:
                continue
            timeout = MAX_SLEEP if wait is None else min(wait, MAX_SLEEP)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def close(self, grace: float = 10.0) -> None:
        """Cancel every pending requeue and the scheduler task; reconciles already fired get
        `grace` seconds to finish (a reconcile cut short is safe, as a crash is, only slower)."""
        self._entries.clear()
        self._heap.clear()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._running:
            _, late = await asyncio.wait(set(self._running), timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    def _compact(self) -> None:
        """Rebuild the heap when cancelled slots outnumber live ones (bounded memory)."""
        if len(self._heap) > 2 * len(self._entries) + 64:
            self._heap = [(e.deadline, e.seq, uid) for uid, e in self._entries.items()]
            heapq.heapify(self._heap)


class Rounds:
    """One round at a time per Certificate, and how many failed in a row (for backoff).

    - `exclusive(uid)`: hold the object's lock. The lock exists only while a round holds or
      awaits it, so an idle Certificate keeps none (issue #17 §4); `users` counts the rounds
      holding or awaiting the current lock, and `uid in rounds` tells a round whether a DELETED
      event forgot the object meanwhile.
    - `attempt(uid, body)`: failed rounds in a row: the count kept in memory, else the one the
      Certificate's status records (status.failedAttempts), so a restart keeps backing off.
    - `ended(uid, failed=...)`: count a failed round, forget the count after one that did not.
    - `failed_on(uid, body)` / `backing_off(uid, body)`: a failed round writes failedAttempts,
      and may write no observedGeneration (it raised, or a Ready certificate's call failed) or
      leave a request annotation unhandled: the echo of that write would look like a spec
      change or a request and run a round at once, bypassing the backoff (a storm of rounds,
      issue #18 §5). Its trigger (`trigger`) is remembered; an event with the same trigger
      waits for the scheduled retry. Any new spec, deletion or request annotation runs as usual.
    - `hold(uid, until)` / `held_for(uid, now)`: Key Vault said Retry-After; no round of that
      Certificate, whatever starts it (a source Secret's change, an edit), runs before `until`
      (issue #18 §2: a changed mergeFrom Secret polled a throttled vault 0.5 s into a 6 s wait).
    """

    def __init__(self) -> None:
        self.locks: dict[str, asyncio.Lock] = {}
        self.users: dict[str, int] = {}
        self.attempts: dict[str, int] = {}
        self.raised_on: dict[str, tuple[object, ...]] = {}
        self.holds: dict[str, datetime] = {}
        self.fresh: set[str] = set()
        """Certificates whose re-list round was held: the held round still reads afresh."""

    def __contains__(self, uid: object) -> bool:
        return uid in self.locks

    def running(self, uid: str) -> bool:
        """Whether a round holds or awaits the object's lock."""
        return uid in self.users

    @contextlib.asynccontextmanager
    async def exclusive(self, uid: str) -> AsyncIterator[None]:
        lock = self.locks.setdefault(uid, asyncio.Lock())
        self.users[uid] = self.users.get(uid, 0) + 1
        try:
            async with lock:
                yield
        finally:
            if self.locks.get(uid) is lock:  # else forgotten: its count went with it
                left = self.users.pop(uid, 1) - 1
                if left > 0:
                    self.users[uid] = left
                else:
                    del self.locks[uid]

    def attempt(self, uid: str, body: Mapping[str, Any]) -> int:
        """Failed rounds in a row before this one (0-based retry number for backoff)."""
        if uid in self.attempts:
            return self.attempts[uid]
        recorded = (body.get("status") or {}).get("failedAttempts")
        return recorded if isinstance(recorded, int) and recorded > 0 else 0

    def ended(self, uid: str, *, failed: bool, attempt: int) -> int:
        """Record how the round that started at `attempt` ended; the next round's attempt."""
        if failed:
            self.attempts[uid] = attempt + 1
            return attempt + 1
        self.attempts.pop(uid, None)  # nothing kept for a Certificate that did not fail
        self.raised_on.pop(uid, None)
        return 0

    def failed_on(self, uid: str, body: Mapping[str, Any]) -> None:
        """The round for `body` failed: its retry is scheduled with backoff."""
        self.raised_on[uid] = trigger(body)

    def backing_off(self, uid: str, body: Mapping[str, Any]) -> bool:
        """Whether `body` asks for nothing the round that failed did not already try."""
        return self.raised_on.get(uid) == trigger(body)

    def hold(self, uid: str, until: datetime) -> None:
        """No round of `uid` before `until` (clock time): Key Vault's Retry-After."""
        self.holds[uid] = until

    def held_for(self, uid: str, now: datetime) -> float:
        """Seconds until `uid` may run a round (0.0: now); an expired hold is dropped."""
        until = self.holds.get(uid)
        if until is None:
            return 0.0
        if until <= now:
            del self.holds[uid]
            return 0.0
        return (until - now).total_seconds()

    def forget(self, uid: str) -> None:
        self.locks.pop(uid, None)
        self.users.pop(uid, None)
        self.attempts.pop(uid, None)
        self.raised_on.pop(uid, None)
        self.holds.pop(uid, None)
        self.fresh.discard(uid)


def trigger(body: Mapping[str, Any]) -> tuple[object, ...]:
    """What in a Certificate's body asks for a round: its generation, its deletion, and its
    request annotations (kvcert.io/renew, kvcert.io/retry: see handlers._request_pending)."""
    meta = body.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    return (
        meta.get("generation"),
        bool(meta.get("deletionTimestamp")),
        annotations.get(RENEW_ANNOTATION),
        annotations.get(RETRY_ANNOTATION),
    )
