"""TEST-ONLY crash points: the operator exits abruptly right before or after one of its writes.

Issue #18 §1 promises that a crash anywhere loses nothing and creates nothing twice. To prove it,
the integration tests start the operator with `KVCERT_CRASH_AT=<point>` (read once at start-up
into OperatorSettings.crash_at, then armed here by `arm`), let it die at that point with
`os._exit(CRASH_EXIT_CODE)` (no cleanup, no flush: as a kill -9 would), restart it without the
setting, and check the end state. Unset (the default, and every deployment), `reached` is one
comparison against None.

A point is `before:<write>` or `after:<write>`, where <write> is one of WRITES; `<point>#N`
crashes on the N-th time it is reached (default: the first).
"""

from __future__ import annotations

import logging
import os
import sys

log = logging.getLogger("kvcert.crashpoints")

WRITES = ("intent", "create", "import", "merge", "secret", "status", "finalizer")
"""The writes the operator performs, in the order one Certificate meets them:
- `intent`: the status write that records the intent to create (RecordIntent);
- `create` / `import`: the Key Vault create or import call;
- `merge`: the Key Vault merge call;
- `secret`: the output Secret write;
- `status`: a round's final status write;
- `finalizer`: the finalizer's removal after a deletion."""
POINTS = tuple(f"{when}:{write}" for write in WRITES for when in ("before", "after"))
CRASH_EXIT_CODE = 86
"""The exit code of a crash point, so that a test tells it from any other death."""

_armed: str | None = None
_remaining = 0


def parse(value: str | None) -> tuple[str, int] | None:
    """`point` or `point#N` -> (point, N); None for None or "". Raises ValueError for a point
    outside POINTS or an N that is not a positive whole number."""
    if not value:
        return None
    point, _, count = value.partition("#")
    if point not in POINTS:
        raise ValueError(f"KVCERT_CRASH_AT must be one of {', '.join(POINTS)} (optionally #N)")
    if count and (not (count.isascii() and count.isdigit()) or int(count) < 1):
        raise ValueError(f"KVCERT_CRASH_AT: the count after # must be positive: {count!r}")
    return point, int(count or 1)


def arm(crash_at: tuple[str, int] | None) -> None:
    """Arm one crash point (from OperatorSettings.crash_at) for this process; None disarms."""
    global _armed, _remaining  # one process-wide test switch, set at start-up
    _armed, _remaining = (crash_at[0], crash_at[1]) if crash_at else (None, 0)
    if _armed is not None:
        log.warning("TEST-ONLY crash point armed: %s (reach %d)", _armed, _remaining)


def reached(point: str) -> None:
    """Exit the process at once (code CRASH_EXIT_CODE) when `point` is the armed one and this is
    the armed occurrence; otherwise nothing."""
    global _remaining  # noqa: PLW0603 - see arm
    if _armed is None or point != _armed:
        return
    _remaining -= 1
    if _remaining > 0:
        return
    print(f"kvcert: crash point {point} reached: exiting", file=sys.stderr, flush=True)
    os._exit(CRASH_EXIT_CODE)
