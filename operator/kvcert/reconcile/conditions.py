"""Setting conditions the Kubernetes way.

`lastTransitionTime` changes only when a condition's status flips, so "how long has this been
not Ready" stays answerable; every condition carries the generation it was computed for, so a
reader can tell a stale verdict from a current one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from kvcert.api.status import Condition, ConditionStatus

MESSAGE_LIMIT = 512


def set_condition(
    conditions: Sequence[Condition],
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    *,
    generation: int,
    now: datetime,
) -> tuple[Condition, ...]:
    """`conditions` with `type_` set; order kept, a new type appended."""
    previous = find(conditions, type_)
    since = now.replace(microsecond=0)
    if previous is not None and previous.status == status and previous.last_transition_time:
        since = previous.last_transition_time
    updated = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=shorten(message),
        last_transition_time=since,
        observed_generation=generation,
    )
    if previous is None:
        return (*conditions, updated)
    return tuple(updated if item.type == type_ else item for item in conditions)


def find(conditions: Sequence[Condition] | None, type_: str) -> Condition | None:
    for item in conditions or ():
        if item.type == type_:
            return item
    return None


def shorten(message: str, limit: int = MESSAGE_LIMIT) -> str:
    """Conditions are read by humans in `kubectl describe`: one bounded line."""
    flat = " ".join(message.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
