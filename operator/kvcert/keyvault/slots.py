"""A counting semaphore whose waiters are served by priority, then by arrival (issue #17 §3).

Under load hundreds of certificate creates wait for one vault's request slots; a certificate
whose operation has completed then needs three reads (pending, certificate, secret) to finish,
and with a FIFO semaphore each of them waits behind every create queued before it. Here the
session asks for a slot with a priority (lower is served first: reads and other calls before
creates and imports), so finishing work overtakes starting work.

Guarantees (tests/unit/keyvault/test_slots.py):
  - at most `limit` holders at a time;
  - a released slot goes straight to the best waiter, the one with the lowest
    `(priority, arrival)`, before any task that has not started waiting yet can take it;
  - a waiter cancelled before it was handed a slot leaves the queue and takes nothing; one
    cancelled after it was handed a slot (but before it ran) passes that slot on; either way
    no slot is lost and no entry is left behind.
A steady stream of higher-priority requests can hold lower ones back indefinitely: that is the
point (a vault's reads are bounded by the certificates that need them; creates are not).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools


class PrioritySlots:
    """`limit` slots (an int >= 1): `acquire(priority)` waits for one, `release()` returns it
    (pair them with try/finally). Priorities are ints, lower first. Waiters' futures belong to
    the running event loop, as with asyncio's own primitives."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        self.limit = limit
        self._free = limit
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._arrival = itertools.count()

    @property
    def in_use(self) -> int:
        """Slots held now (handed to a waiter that has not resumed yet counts as held)."""
        return self.limit - self._free

    @property
    def waiting(self) -> int:
        """Tasks waiting for a slot."""
        return len(self._waiters)

    async def acquire(self, priority: int = 0) -> None:
        """Take a slot, waiting behind every waiter with a lower `(priority, arrival)`.
        Raises CancelledError if cancelled while waiting; then no slot is held."""
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (priority, next(self._arrival), future)
        heapq.heappush(self._waiters, entry)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # handed a slot, then cancelled before running: pass it on
            elif entry in self._waiters:  # release() may have popped it already
                self._waiters.remove(entry)
                heapq.heapify(self._waiters)
            raise

    def release(self) -> None:
        """Return a slot: to the best waiter if there is one, else to the free count. Raises
        RuntimeError when no slot is held (a release without its acquire)."""
        while self._waiters:
            _, _, future = heapq.heappop(self._waiters)
            if not future.done():
                future.set_result(None)  # the slot changes hands without becoming free
                return
        if self._free >= self.limit:
            raise RuntimeError("release() without a matching acquire()")
        self._free += 1
