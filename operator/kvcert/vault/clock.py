"""The vault's clock: the host's time plus an offset that tests move forward.

Every time-dependent rule of the vault reads this clock, never `time.time()`: the `nbf`, `exp`,
`created` and `updated` of new versions, the simulated CA's delay, cancellations, soft-delete
dates, issuer and contact timestamps, and lifetime-action triggers. Tests move it through the
management API (`POST /_kvcert/clock`) instead of waiting months for a renewal.

The offset (seconds, a float) is kept in the store's `meta` table, so a restart keeps the moved
time. It only ever grows: Key Vault's time does not run backwards, and neither do the pending
operations' due times scheduled against it.

One thing stays on the host's time: the TLS server certificate (`tls.py`), because clients check
it against their own clock.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from kvcert.vault.errors import bad_parameter
from kvcert.vault.store import Store

OFFSET_KEY = "clock.offset"
#: The largest single move (seconds): 100 years keeps every date inside X.509's range.
MAX_ADVANCE = 100 * 365.25 * 86400


class VaultClock:
    """`base()` (the host's Unix time in seconds, or a test's fake) plus the persisted offset."""

    def __init__(self, store: Store, base: Callable[[], float] = time.time) -> None:
        self._store = store
        self._base = base
        raw = store.get_meta(OFFSET_KEY)
        self._offset = float(raw.decode()) if raw else 0.0

    def __call__(self) -> float:
        """The vault's now, in Unix seconds."""
        return self._base() + self._offset

    @property
    def offset(self) -> float:
        """Seconds the vault's time is ahead of `base()`."""
        return self._offset

    def advance(self, seconds: float) -> float:
        """Move the vault's time forward by `seconds` (>= 0) and persist it; the new offset."""
        if not math.isfinite(seconds) or not 0 <= seconds <= MAX_ADVANCE:
            raise bad_parameter(
                f"advanceSeconds must be between 0 and {MAX_ADVANCE:.0f} (the clock only moves "
                "forward)."
            )
        self._offset += seconds
        self._store.put_meta(OFFSET_KEY, repr(self._offset).encode())
        return self._offset
