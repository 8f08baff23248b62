"""The operator's clock: what `now` is for reconcile and for scheduled requeues.

In production it is the system clock (UTC). For tests only, `KVCERT_CLOCK_FILE` names a file
holding a number of seconds (a float, may be negative; a missing or empty file is 0) that is
added to the system time, so that a test moves the operator's time forward instead of sleeping
(a renewal due in a month, a backoff of ten minutes). The file is re-read when its mtime, size
or inode changes (`follow` polls it every 0.2 s, only when the file is configured); a change
wakes whoever follows the clock, and the scheduler then re-evaluates every pending requeue
against the new `now`.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

log = logging.getLogger("kvcert.clock")

POLL_INTERVAL = 0.2
"""Seconds between two looks at the clock file's metadata (test-only)."""

_Stamp = tuple[int, int, int] | None
"""(inode, mtime in ns, size) of the clock file; None when it does not exist."""


def read_offset(path: Path) -> float:
    """Seconds written in `path`; 0 for a missing or empty file. Raises ValueError for text that
    is not a float (a test's mistake, reported rather than guessed)."""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return 0.0
    return float(text) if text else 0.0


class Clock:
    """`now()`: aware UTC datetime, the system time plus the test offset (0 in production)."""

    def __init__(self, offset_file: Path | None = None) -> None:
        self.offset_file = offset_file
        self._offset = 0.0
        self._stamp: _Stamp = None
        if offset_file is not None:
            self.refresh()

    @property
    def offset(self) -> float:
        """Seconds added to the system time (always 0 without a clock file)."""
        return self._offset

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self._offset)

    def refresh(self) -> bool:
        """Re-read the clock file if it changed since the last look; True when the offset did.

        A file that cannot be parsed keeps the previous offset (and says so in the log)."""
        if self.offset_file is None:
            return False
        stamp = _stamp(self.offset_file)
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            offset = read_offset(self.offset_file)
        except (ValueError, OSError) as error:
            log.error("clock file %s unreadable, offset kept: %s", self.offset_file, error)
            return False
        changed = offset != self._offset
        self._offset = offset
        if changed:
            log.info("operator clock offset is now %.3f s", offset)
        return changed

    async def follow(self, changed: Callable[[], None], interval: float = POLL_INTERVAL) -> None:
        """Call `changed()` after each change of the offset, until cancelled. Without a clock
        file there is nothing to follow and this returns at once (production costs nothing)."""
        if self.offset_file is None:
            return
        while True:
            await asyncio.sleep(interval)
            if self.refresh():
                changed()


def _stamp(path: Path) -> _Stamp:
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return None
    return (found.st_ino, found.st_mtime_ns, found.st_size)
