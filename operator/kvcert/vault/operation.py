"""The pending-operation state machine: pure functions over a frozen `Operation`, no I/O.

One operation per certificate name. It starts `inProgress` and ends `completed`, `cancelled`
or `failed`; `due_at` is when its issuer acts (Self: at once, a simulated CA: after its delay,
Unknown: never, only a merge ends it) and `cancel_at` when a requested cancellation takes effect.
Time comes in as `now`, so every transition is a table test.
"""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass
from typing import Any, Literal

from kvcert.vault.errors import VaultError
from kvcert.vault.profiles import Profile

IN_PROGRESS = "inProgress"
COMPLETED = "completed"
CANCELLED = "cancelled"
FAILED = "failed"

Kind = Literal["self", "manual", "ca"]
Event = Literal["issue", "cancel"]

DETAILS_PROVIDER = (
    "Pending certificate created. Certificate request is in progress. This may take some time "
    "based on the issuer provider. Please check again later."
)
DETAILS_MANUAL = "Pending certificate created. Please Perform Merge to complete the request."
DETAILS_CANCELLED = "Pending certificate operation was cancelled at the request of the client."


def new_id() -> str:
    """Versions and request ids: 32 lowercase hex characters, as Key Vault makes them."""
    return secrets.token_hex(16)


#: How long a simulated provider takes to honour a cancellation (DESIGN: within a second).
CANCEL_DELAY = 0.5


@dataclass(frozen=True)
class Operation:
    name: str
    request_id: str
    version: str
    issuer_name: str
    kind: Kind
    csr: str
    created: float
    status: str = IN_PROGRESS
    status_details: str = DETAILS_PROVIDER
    cancellation_requested: bool = False
    error: dict[str, str] | None = None
    due_at: float | None = None
    cancel_at: float | None = None
    enabled: bool = True
    tags: dict[str, str] | None = None
    preserve_order: bool = False

    @property
    def in_progress(self) -> bool:
        return self.status == IN_PROGRESS

    @property
    def due(self) -> float | None:
        """The earliest time something happens to this operation by itself, if any."""
        if not self.in_progress:
            return None
        times = [t for t in (self.due_at, self.cancel_at) if t is not None]
        return min(times) if times else None

    def to_doc(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Operation:
        return cls(**doc)


def start(
    *,
    name: str,
    request_id: str,
    version: str,
    issuer_name: str,
    kind: Kind,
    csr: str,
    now: float,
    ca_delay: float,
    enabled: bool = True,
    tags: dict[str, str] | None = None,
    preserve_order: bool = False,
) -> Operation:
    """A new inProgress operation, with its issuer's first action scheduled."""
    due_at = {"self": now, "ca": now + ca_delay, "manual": None}[kind]
    details = DETAILS_MANUAL if kind == "manual" else DETAILS_PROVIDER
    return Operation(
        name=name,
        request_id=request_id,
        version=version,
        issuer_name=issuer_name,
        kind=kind,
        csr=csr,
        created=now,
        status_details=details,
        due_at=due_at,
        enabled=enabled,
        tags=tags,
        preserve_order=preserve_order,
    )


def next_event(op: Operation, now: float) -> Event | None:
    """What the issuer does now: nothing, issue, or honour the cancellation (first due wins)."""
    if not op.in_progress:
        return None
    issue = op.due_at is not None and op.due_at <= now
    cancel = op.cancel_at is not None and op.cancel_at <= now
    if cancel and (not issue or (op.cancel_at or 0) <= (op.due_at or 0)):
        return "cancel"
    if issue:
        return "issue"
    return None


def ensure_replaceable(op: Operation | None, profile: Profile) -> None:
    """A create or import overwrites a pending object unless it is still inProgress."""
    if op is not None and op.in_progress:
        raise profile.conflict()


def request_cancel(op: Operation, now: float, profile: Profile) -> Operation:
    """Record a cancellation request; the provider honours it `CANCEL_DELAY` later."""
    if not op.in_progress:
        raise profile.cancel_not_in_progress()
    cancel_at = op.cancel_at if op.cancel_at is not None else now + CANCEL_DELAY
    return dataclasses.replace(op, cancellation_requested=True, cancel_at=cancel_at)


def cancelled(op: Operation) -> Operation:
    return dataclasses.replace(
        op, status=CANCELLED, status_details=DETAILS_CANCELLED, due_at=None, cancel_at=None
    )


def failed(op: Operation, code: str, message: str) -> Operation:
    if not op.in_progress:
        raise VaultError(409, "Conflict", f"Pending certificate {op.name} is not inProgress.")
    return dataclasses.replace(
        op,
        status=FAILED,
        status_details=message,
        error={"code": code, "message": message},
        due_at=None,
        cancel_at=None,
    )


def completed(op: Operation) -> Operation:
    return dataclasses.replace(op, status=COMPLETED, due_at=None, cancel_at=None, error=None)


def delayed(op: Operation, now: float, seconds: float) -> Operation:
    """The issuer acts `seconds` from now (management API); a manual operation stays manual."""
    if not op.in_progress:
        raise VaultError(409, "Conflict", f"Pending certificate {op.name} is not inProgress.")
    return dataclasses.replace(op, due_at=now + seconds)


def check_merge(op: Operation) -> None:
    """Merge needs a manual operation in progress, or any operation that failed or was cancelled."""
    if op.in_progress and op.kind != "manual":
        raise VaultError(
            403,
            "Forbidden",
            f"Merge is forbidden on pending object created with issuer : {op.issuer_name} "
            "while it is in progess.",
        )
    if op.status == COMPLETED:
        raise VaultError(
            403, "Forbidden", f"Merge is forbidden: the pending certificate {op.name} is completed."
        )


def matches(op: Operation, request_id: str | None) -> bool:
    return request_id is None or request_id.lower() == op.request_id
