"""The shapes of an issuer decision (kvcert.reconcile.issuer): its input, its output, what Key
Vault has and the small pure rules both sides share (issue #19 §2 and its review). No I/O.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kvcert.api.issuer import CertificateIssuerStatus, IssuerSpecBase

BACKOFF_FIRST = 5.0
BACKOFF_MAX = 300.0
"""Seconds before a failed round is retried: 5 s doubling to 5 min, times (1 + jitter/2)."""


@dataclass(frozen=True)
class Administrator:
    """REST: AdministratorDetails (first_name, last_name, email, phone)."""

    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None


@dataclass(frozen=True)
class IssuerSettings:
    """What kvcert compares between the spec and Key Vault (the password is not readable)."""

    provider: str
    account_id: str | None = None
    organization_id: str | None = None
    administrators: tuple[Administrator, ...] = ()
    enabled: bool = True


@dataclass(frozen=True)
class ObservedIssuer:
    """An issuer as Key Vault answered (REST: IssuerBundle); times are aware UTC."""

    id: str
    settings: IssuerSettings
    created: datetime | None = None
    updated: datetime | None = None


@dataclass(frozen=True)
class PasswordFacts:
    """The password Secret, without its value: `version` is `uid/resourceVersion`; `problem`
    says why it cannot be used (missing Secret or key, empty), naming no value; `applied`
    when its value is the one this process last applied to this issuer (kept in memory only)."""

    version: str = ""
    problem: str = ""
    applied: bool = False


class Write(enum.StrEnum):
    NONE = "none"
    PUT = "put"  # create or replace the whole issuer: SetCertificateIssuer
    DELETE = "delete"  # DeleteCertificateIssuer


@dataclass(frozen=True)
class WriteOutcome:
    """How the write went: `observed` on success (None after a delete), else `error` (scrubbed
    text), `rejected` when Key Vault refused it as invalid or forbidden (no retry helps), and
    `not_found` for a delete of an issuer already gone (counts as done)."""

    ok: bool
    observed: ObservedIssuer | None = None
    error: str = ""
    rejected: bool = False
    not_found: bool = False


@dataclass(frozen=True)
class IssuerInput:
    """Everything one decision needs. The runtime stops gathering at the first problem: a
    later field is then left at its default (None)."""

    kind: str
    name: str
    issuer_name: str
    generation: int
    now: datetime
    status: CertificateIssuerStatus
    spec: IssuerSpecBase | None = None
    invalid: str = ""
    deleting: bool = False
    has_finalizer: bool = False
    vault_problem: str | None = None
    vault_missing: bool = False
    """The KeyVault / ClusterKeyVault does not exist (with `vault_problem`)."""
    vault_url: str = ""
    """The vault's URL (https://host[:port]) when it can be used, else ""."""
    claimed_by: str = ""
    """Another live kvcert resource that manages this issuer in this vault ("Kind ns/name")."""
    password: PasswordFacts | None = None
    observed: ObservedIssuer | None = None
    read_error: str | None = None
    attempt: int = 0
    jitter: float = 0.0
    recorded: bool = False
    """`record(inp)` was written to status in this round, before the write."""
    outcome: WriteOutcome | None = None

    def with_outcome(self, outcome: WriteOutcome) -> IssuerInput:
        return dataclasses.replace(self, outcome=outcome)


Event = tuple[str, str, str]
"""(type Normal|Warning, reason, message)."""


@dataclass(frozen=True)
class IssuerDecision:
    """`write` to perform (after `record_managed` and `add_finalizer`), the status merge patch
    (None: status already says it), events, `remove_finalizer`, and `retry_after` seconds."""

    write: Write = Write.NONE
    record_managed: bool = False
    add_finalizer: bool = False
    remove_finalizer: bool = False
    status: dict[str, Any] | None = None
    events: tuple[Event, ...] = ()
    retry_after: float | None = None
    body: dict[str, Any] = field(default_factory=dict)
    """The status as it would be after the patch (camelCase), for the caller's next decision."""


def desired_settings(spec: IssuerSpecBase) -> IssuerSettings:
    """The spec's Key Vault fields, in the shape Key Vault answers them."""
    return IssuerSettings(
        provider=spec.provider.value,
        account_id=spec.account_id or None,
        organization_id=spec.organization_id or None,
        administrators=tuple(
            Administrator(a.first_name, a.last_name, a.email, a.phone)
            for a in spec.administrators or ()
        ),
        enabled=spec.enabled,
    )


def applied_hash(settings: IssuerSettings, password_version: str) -> str:
    """32 hex chars of sha256 over the settings and the password Secret's `uid/resourceVersion`
    ("" without a password): never over the password itself."""
    text = json.dumps([dataclasses.asdict(settings), password_version], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def password_text(data: bytes) -> str | None:
    """The password a Secret's value holds: its UTF-8 text as is, except one trailing newline
    ("\\n" or "\\r\\n", which `kubectl create secret --from-file` keeps from the file). None
    when the bytes are not UTF-8. Issue #19 §2 review: inner and leading white space is the
    password's own."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    for ending in ("\r\n", "\n"):
        if text.endswith(ending):
            return text[: -len(ending)]
    return text


def owned(status: CertificateIssuerStatus, vault_url: str) -> bool:
    """Whether `status` records this resource as the manager of its issuer in the vault at
    `vault_url` (status.managed and the same status.vaultURL; "" knows no vault: False)."""
    return bool(status.managed) and bool(vault_url) and status.vault_url == vault_url


def record(inp: IssuerInput) -> dict[str, Any]:
    """The status merge patch written before the first write: the ownership record."""
    return {"managed": True, "vaultURL": inp.vault_url, "observedGeneration": inp.generation}


def backoff(attempt: int, jitter: float) -> float:
    """Seconds before retry number `attempt` (0-based); `jitter` in [0, 1) spreads them."""
    return min(BACKOFF_FIRST * 2.0 ** min(attempt, 16), BACKOFF_MAX) * (1 + jitter / 2)
