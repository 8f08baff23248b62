"""What to do about one CertificateIssuer or ClusterCertificateIssuer: a pure decision.

kvcert.runtime.issuers gathers an `IssuerInput` (the parsed spec or why it is invalid, the
vault's and the password Secret's facts, the issuer Key Vault has, the status, `now`, jitter),
calls `decide`, performs the one Key Vault write it asks for, and calls `decide` again with the
write's outcome (`IssuerInput.with_outcome`) for the final status and events. No I/O, no clock.

Ownership (issue #19 §2): Key Vault issuers carry no tags, so kvcert's record is the resource's
`status.managed`, written before the first write (`IssuerDecision.record_managed`), so that a
crash between the two cannot lose it. An existing issuer that the resource does not manage is
never written unless `spec.adopt` is true.

A rotated password: Key Vault never returns it, so status.appliedHash is a digest of the
settings written and the password Secret's uid and resourceVersion (never of the password).
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kvcert.api.issuer import (
    CertificateIssuerStatus,
    IssuerDeletionPolicy,
    IssuerInfo,
    IssuerSpecBase,
)
from kvcert.reconcile.conditions import find, set_condition
from kvcert.reconcile.issuer_reasons import STALLED_REASONS, IssuerReason

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
    says why it cannot be used (missing Secret or key, empty), naming no value."""

    version: str = ""
    problem: str = ""


class Write(enum.StrEnum):
    NONE = "none"
    PUT = "put"  # create (or replace an adopted issuer): SetCertificateIssuer
    PATCH = "patch"  # update a managed issuer: UpdateCertificateIssuer
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
    password: PasswordFacts | None = None
    observed: ObservedIssuer | None = None
    read_error: str | None = None
    attempt: int = 0
    jitter: float = 0.0
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


def backoff(attempt: int, jitter: float) -> float:
    """Seconds before retry number `attempt` (0-based); `jitter` in [0, 1) spreads them."""
    return min(BACKOFF_FIRST * 2.0 ** min(attempt, 16), BACKOFF_MAX) * (1 + jitter / 2)


def decide(inp: IssuerInput) -> IssuerDecision:
    """The ladder, first match wins; no side effects. Rules: issue #19 §2."""
    if inp.deleting:
        return _deletion(inp)
    # The spec cannot be used: nothing is read or written until it changes.
    if inp.spec is None:
        return _failed(inp, IssuerReason.INVALID_SPEC, inp.invalid or "the spec is invalid")
    spec = inp.spec
    # The vault cannot be used (missing, invalid, its credential Secret absent): retried.
    if inp.vault_problem is not None:
        return _failed(inp, IssuerReason.VAULT_NOT_READY, inp.vault_problem)
    # The password Secret or key is missing: retried (and at once when a labelled Secret moves).
    if inp.password is not None and inp.password.problem:
        return _failed(inp, IssuerReason.PASSWORD_NOT_FOUND, inp.password.problem)
    # Key Vault could not say whether the issuer exists: retried.
    if inp.read_error is not None:
        return _failed(inp, IssuerReason.KEY_VAULT_ERROR, inp.read_error)
    managed = bool(inp.status.managed)
    adopting = inp.observed is not None and not managed
    # Someone else's issuer of that name: never overwritten unless the user says so.
    if adopting and not spec.adopt:
        return _failed(
            inp,
            IssuerReason.NOT_OWNED,
            f"Key Vault issuer {inp.issuer_name} exists and is not managed by kvcert; set"
            f" spec.adopt: true to take it over (its settings are then replaced by this spec)",
        )
    settings = desired_settings(spec)
    digest = applied_hash(settings, inp.password.version if inp.password else "")
    wants_finalizer = spec.deletion_policy is IssuerDeletionPolicy.DELETE
    # The write was made: its outcome decides.
    if inp.outcome is not None:
        if not inp.outcome.ok:
            reason = IssuerReason.REJECTED if inp.outcome.rejected else IssuerReason.KEY_VAULT_ERROR
            return _failed(inp, reason, f"writing issuer {inp.issuer_name}: {inp.outcome.error}")
        events: list[Event] = []
        if adopting:
            events.append(
                ("Normal", IssuerReason.ADOPTED, f"took over Key Vault issuer {inp.issuer_name}")
            )
        events.append(("Normal", IssuerReason.CONFIGURED, _configured(inp, spec)))
        observed = inp.outcome.observed or inp.observed
        return _ready(inp, observed, digest, events=tuple(events))
    # Key Vault has what the spec says, with this password: nothing to write.
    if (
        managed
        and inp.observed is not None
        and inp.observed.settings == settings
        and inp.status.applied_hash == digest
    ):
        return dataclasses.replace(
            _ready(inp, inp.observed, digest),
            add_finalizer=wants_finalizer and not inp.has_finalizer,
            remove_finalizer=not wants_finalizer and inp.has_finalizer,
        )
    # Write it: a PUT creates (or replaces an adopted one), a PATCH updates ours.
    return IssuerDecision(
        write=Write.PATCH if inp.observed is not None and managed else Write.PUT,
        record_managed=not managed,
        add_finalizer=wants_finalizer and not inp.has_finalizer,
        remove_finalizer=not wants_finalizer and inp.has_finalizer,
    )


def _deletion(inp: IssuerInput) -> IssuerDecision:
    """The resource is being deleted: only our finalizer holds it."""
    if not inp.has_finalizer:
        return IssuerDecision()
    spec = inp.spec
    deletes = (
        spec is not None
        and spec.deletion_policy is IssuerDeletionPolicy.DELETE
        and bool(inp.status.managed)
    )
    if not deletes:
        return IssuerDecision(remove_finalizer=True)
    if inp.outcome is None:
        if inp.vault_problem is not None:
            return _failed(inp, IssuerReason.VAULT_NOT_READY, inp.vault_problem)
        return IssuerDecision(write=Write.DELETE)
    if not inp.outcome.ok:
        message = f"deleting issuer {inp.issuer_name}: {inp.outcome.error}"
        return _failed(inp, IssuerReason.KEY_VAULT_ERROR, message)
    said = "was already gone" if inp.outcome.not_found else "was deleted"
    message = f"Key Vault issuer {inp.issuer_name} {said} (deletionPolicy Delete)"
    return IssuerDecision(
        remove_finalizer=True, events=(("Normal", IssuerReason.DELETED, message),)
    )


def _configured(inp: IssuerInput, spec: IssuerSpecBase) -> str:
    state = "enabled" if spec.enabled else "disabled"
    password = ", password from Secret" if inp.password is not None else ""
    what = f"{spec.provider.value}, {state}{password}"
    return f"Key Vault issuer {inp.issuer_name} configured: {what}"


def _ready(
    inp: IssuerInput,
    observed: ObservedIssuer | None,
    digest: str,
    *,
    events: tuple[Event, ...] = (),
) -> IssuerDecision:
    message = f"Key Vault issuer {inp.issuer_name} is configured as the spec says"
    info = None
    if observed is not None:
        info = IssuerInfo(
            id=observed.id or None,
            provider=observed.settings.provider,
            enabled=observed.settings.enabled,
            created=observed.created,
            updated=observed.updated,
        )
    status = _status(
        inp, "True", IssuerReason.CONFIGURED, message, managed=True, digest=digest, info=info
    )
    return IssuerDecision(status=_patch(inp.status, status), events=events, body=status)


def _failed(inp: IssuerInput, reason: IssuerReason, message: str) -> IssuerDecision:
    """Ready False with `reason`; Stalled for what needs a human, else retried with backoff.
    A Warning event only when the reason is new (a retry that fails alike posts none)."""
    stalled = reason in STALLED_REASONS
    status = _status(
        inp,
        "False",
        reason,
        message,
        managed=inp.status.managed,
        digest=inp.status.applied_hash,
        info=inp.status.issuer,
        failed=None if stalled else inp.attempt + 1,
    )
    previous = find(inp.status.conditions, "Ready")
    new = previous is None or previous.reason != reason or previous.status != "False"
    events: tuple[Event, ...] = (("Warning", reason, message),) if new else ()
    return IssuerDecision(
        status=_patch(inp.status, status),
        events=events,
        retry_after=None if stalled else backoff(inp.attempt, inp.jitter),
        body=status,
    )


def _status(
    inp: IssuerInput,
    ready: str,
    reason: IssuerReason,
    message: str,
    *,
    managed: bool | None,
    digest: str | None,
    info: IssuerInfo | None,
    failed: int | None = None,
) -> dict[str, Any]:
    conditions = set_condition(
        inp.status.conditions or (),
        "Ready",
        "True" if ready == "True" else "False",
        reason.value,
        message,
        generation=inp.generation,
        now=inp.now,
    )
    stalled = reason in STALLED_REASONS
    conditions = set_condition(
        conditions,
        "Stalled",
        "True" if stalled else "False",
        reason.value,
        message if stalled else "",
        generation=inp.generation,
        now=inp.now,
    )
    status = CertificateIssuerStatus(
        observed_generation=inp.generation,
        conditions=list(conditions),
        managed=managed,
        applied_hash=digest,
        issuer=info,
        failed_attempts=failed,
    )
    return status.to_wire()


def _patch(current: CertificateIssuerStatus, new: Mapping[str, Any]) -> dict[str, Any] | None:
    """The merge patch from `current` to `new` (a removed field is sent as null); None when
    nothing changes, so an idle re-list writes nothing."""
    old = current.to_wire()
    if old == new:
        return None
    patch: dict[str, Any] = {key: value for key, value in new.items() if old.get(key) != value}
    for key in old:
        if key not in new:
            patch[key] = None
    return patch
