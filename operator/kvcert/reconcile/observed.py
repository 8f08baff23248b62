"""What the operator observed in Key Vault, in the operator's own terms.

The Key Vault client converts each wire object into one of these exactly once; nothing below
the client ever sees a wire shape, so the decisions stay testable with plain values.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Literal

NotFound = Literal["not found"]
NOT_FOUND: Final[NotFound] = "not found"
"""What a read returns when Key Vault answered 404: an observation, unlike `None` (not read)."""


class OperationStatus(enum.StrEnum):
    """A pending operation's state. The service spells these in several ways
    (`InProgress`/`inProgress`, `canceled`/`cancelled`); `parse` folds them into one."""

    IN_PROGRESS = "inProgress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"
    DELETED = "deleted"

    @classmethod
    def parse(cls, raw: str) -> OperationStatus:
        folded = raw.strip().lower()
        if folded == "canceled":
            folded = "cancelled"
        for member in cls:
            if member.value.lower() == folded:
                return member
        raise ValueError(f"unknown pending operation status: {raw[:40]!r}")

    @property
    def terminal(self) -> bool:
        return self is not OperationStatus.IN_PROGRESS


@dataclass(frozen=True)
class OperationError:
    code: str
    message: str


@dataclass(frozen=True)
class ObservedOperation:
    """A Key Vault pending certificate operation as last read."""

    request_id: str
    status: OperationStatus
    status_details: str = ""
    cancellation_requested: bool = False
    issuer_name: str | None = None
    csr_pem: str | None = None
    target: str | None = None
    error: OperationError | None = None
    retry_after: float | None = None
    """Seconds from the response's Retry-After header, when it carried one."""


@dataclass(frozen=True)
class LifetimeRule:
    """One lifetime action of the certificate's policy in Key Vault (REST: `LifetimeAction`):
    `action` AutoRenew or EmailContacts, exactly one trigger."""

    action: str
    lifetime_percentage: int | None = None
    days_before_expiry: int | None = None


@dataclass(frozen=True)
class ObservedCertificate:
    """The current version of a Key Vault certificate (never its private key)."""

    id: str
    version: str
    enabled: bool
    x5t: str | None = None
    serial_number: str | None = None
    not_before: datetime | None = None
    not_after: datetime | None = None
    der: bytes | None = None
    pending_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    lifetime_actions: tuple[LifetimeRule, ...] | None = None
    """The policy's lifetime actions as Key Vault holds them (its defaults included); None
    when the answer carried no policy."""
    exportable: bool | None = None
    """The policy's `key_props.exportable` (REST: KeyProperties): False when Key Vault withholds
    the private key (no tls.key); None when the answer carried no policy."""


@dataclass(frozen=True)
class CallError:
    """Why a call (to Key Vault or to Kubernetes) failed, reduced to what decisions branch on.

    `status` is the HTTP status, or None when no answer came back (transport error, timeout).
    `message` must already be scrubbed and truncated by the client that made the call.
    """

    status: int | None
    code: str = ""
    message: str = ""
    retry_after: float | None = None
    inner_code: str = ""
    """Key Vault's `innererror.code` (e.g. ObjectIsDeletedButRecoverable, ForbiddenByRbac):
    what tells apart answers that share a status and code."""

    @property
    def transient(self) -> bool:
        """Worth retrying later unchanged: no answer, throttling, timeouts, server errors."""
        return self.status is None or self.status in (408, 429) or self.status >= 500

    @property
    def not_found(self) -> bool:
        return self.status == 404
