"""What to do about one CertificateIssuer or ClusterCertificateIssuer: a pure decision.

The shapes (IssuerInput, IssuerDecision, ...) live in kvcert.reconcile.issuer_model and are
re-exported here. kvcert.runtime.issuers gathers an `IssuerInput` (the parsed spec or why it is
invalid, the vault's and the password Secret's facts, the issuer Key Vault has, the status,
`now`, jitter), calls `decide`, performs the one Key Vault write it asks for, and calls `decide`
again with the write's outcome (`IssuerInput.with_outcome`) for the final status and events.
No I/O, no clock.

Ownership (issue #19 §2): Key Vault issuers carry no tags, so kvcert's record is the resource's
`status.managed` with `status.vaultURL`, written before the first write
(`IssuerDecision.record_managed`, `record`), so that a crash between the two cannot lose it.
The record holds for that vault only: the same name in another vault is not this resource's.
An existing issuer that the resource does not manage is never written unless `spec.adopt` is
true, and never when another live kvcert resource manages it (`IssuerInput.claimed_by`).

Every write is a PUT (SetCertificateIssuer replaces the whole issuer; an UpdateCertificateIssuer
PATCH keeps the fields a spec dropped), and what Key Vault answers is compared with the spec.

A rotated password: Key Vault never returns it, so status.appliedHash is a digest of the
settings written and the password Secret's uid and resourceVersion (never of the password). A
new resourceVersion whose password is the one last applied (a label edit; compared in memory by
the runtime: `PasswordFacts.applied`) only moves the hash; after a restart it is applied again
once.

Failures (issue #19 §2 review): status is written when the condition's reason or message
changes, not per retry; the retry count lives in memory (`IssuerInput.attempt`) and goes to
status.failedAttempts only with a status written anyway.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from kvcert.api.issuer import (
    CertificateIssuerStatus,
    IssuerDeletionPolicy,
    IssuerInfo,
    IssuerSpecBase,
)
from kvcert.reconcile.conditions import find, set_condition
from kvcert.reconcile.issuer_model import (
    BACKOFF_FIRST,
    BACKOFF_MAX,
    Administrator,
    Event,
    IssuerDecision,
    IssuerInput,
    IssuerSettings,
    ObservedIssuer,
    PasswordFacts,
    Write,
    WriteOutcome,
    applied_hash,
    backoff,
    desired_settings,
    owned,
    password_text,
    record,
)
from kvcert.reconcile.issuer_reasons import STALLED_REASONS, IssuerReason
from kvcert.reconcile.reasons import Reason

__all__ = [
    "BACKOFF_FIRST",
    "BACKOFF_MAX",
    "Administrator",
    "IssuerDecision",
    "IssuerInput",
    "IssuerSettings",
    "ObservedIssuer",
    "PasswordFacts",
    "Write",
    "WriteOutcome",
    "applied_hash",
    "backoff",
    "decide",
    "desired_settings",
    "owned",
    "password_text",
    "record",
]


def decide(inp: IssuerInput) -> IssuerDecision:
    """The ladder, first match wins; no side effects. Rules: issue #19 §2 and its review."""
    if inp.deleting:
        return _deletion(inp)
    # The spec cannot be used: nothing is read or written until it changes.
    if inp.spec is None:
        return _failed(inp, IssuerReason.INVALID_SPEC, inp.invalid or "the spec is invalid")
    spec = inp.spec
    # The vault cannot be used (missing, invalid, its credential Secret absent): retried.
    if inp.vault_problem is not None:
        return _failed(inp, IssuerReason.VAULT_NOT_READY, inp.vault_problem)
    # Another live kvcert resource manages this issuer in this vault: never two owners.
    if inp.claimed_by:
        return _failed(inp, IssuerReason.NOT_OWNED, _claimed(inp))
    # The password Secret or key is missing: retried (and at once when a labelled Secret moves).
    if inp.password is not None and inp.password.problem:
        return _failed(inp, IssuerReason.PASSWORD_NOT_FOUND, inp.password.problem)
    # Key Vault could not say whether the issuer exists: retried.
    if inp.read_error is not None:
        return _failed(inp, IssuerReason.KEY_VAULT_ERROR, inp.read_error)
    ours = owned(inp.status, inp.vault_url)
    adopting = inp.observed is not None and not ours
    # Someone else's issuer of that name (or ours in another vault): never overwritten unless
    # the user says so.
    if adopting and not spec.adopt:
        return _failed(inp, IssuerReason.NOT_OWNED, _not_owned(inp))
    settings = desired_settings(spec)
    digest = applied_hash(settings, inp.password.version if inp.password else "")
    wants_finalizer = spec.deletion_policy is IssuerDeletionPolicy.DELETE
    # The write was made: its outcome decides.
    if inp.outcome is not None:
        return _outcome(inp, spec, inp.outcome, digest, adopting=adopting)
    # Key Vault has what the spec says, with this password (the same resourceVersion, or a new
    # one whose value is the one applied): nothing to write.
    if (
        ours
        and inp.observed is not None
        and inp.observed.settings == settings
        and (
            inp.status.applied_hash == digest or (inp.password is not None and inp.password.applied)
        )
    ):
        return dataclasses.replace(
            _ready(inp, inp.observed, digest),
            add_finalizer=wants_finalizer and not inp.has_finalizer,
            remove_finalizer=not wants_finalizer and inp.has_finalizer,
        )
    # Write it: a PUT creates, replaces an adopted one or updates ours to exactly the spec.
    return IssuerDecision(
        write=Write.PUT,
        record_managed=not ours,
        add_finalizer=wants_finalizer and not inp.has_finalizer,
        remove_finalizer=not wants_finalizer and inp.has_finalizer,
    )


def _outcome(
    inp: IssuerInput,
    spec: IssuerSpecBase,
    outcome: WriteOutcome,
    digest: str,
    *,
    adopting: bool,
) -> IssuerDecision:
    """After the PUT: failed (a refused first write takes the ownership record back: nothing
    of ours is in Key Vault), answered with other settings (reported, not Configured), or done."""
    if not outcome.ok:
        reason = IssuerReason.REJECTED if outcome.rejected else IssuerReason.KEY_VAULT_ERROR
        message = f"writing issuer {inp.issuer_name}: {outcome.error}"
        return _failed(inp, reason, message, disown=outcome.rejected and inp.recorded)
    settings = desired_settings(spec)
    answered = outcome.observed
    if answered is not None and answered.settings != settings:
        fields = ", ".join(_differences(settings, answered.settings))
        message = (
            f"Key Vault answered the write of issuer {inp.issuer_name} with other {fields} than"
            f" the spec's: it did not keep them"
        )
        return _failed(inp, IssuerReason.REJECTED, message)
    events: list[Event] = []
    if adopting:
        events.append(
            ("Normal", IssuerReason.ADOPTED, f"took over Key Vault issuer {inp.issuer_name}")
        )
    events.append(("Normal", IssuerReason.CONFIGURED, _configured(inp, spec)))
    return _ready(inp, answered or inp.observed, digest, events=tuple(events))


_FIELDS = {
    "provider": "provider",
    "account_id": "accountId",
    "organization_id": "organizationId",
    "administrators": "administrators",
    "enabled": "enabled",
}


def _differences(want: IssuerSettings, got: IssuerSettings) -> list[str]:
    """The spec's names of the fields that differ (never their values)."""
    return [name for attr, name in _FIELDS.items() if getattr(want, attr) != getattr(got, attr)]


def _claimed(inp: IssuerInput) -> str:
    return (
        f"Key Vault issuer {inp.issuer_name} in {inp.vault_url} is managed by {inp.claimed_by};"
        f" one resource per issuer: delete one of them"
    )


def _not_owned(inp: IssuerInput) -> str:
    if inp.status.managed and inp.status.vault_url and inp.status.vault_url != inp.vault_url:
        return (
            f"this resource manages issuer {inp.issuer_name} in {inp.status.vault_url}; the one"
            f" in {inp.vault_url} is not its own: set spec.adopt: true to take it over (its"
            f" settings are then replaced by this spec)"
        )
    return (
        f"Key Vault issuer {inp.issuer_name} exists and is not managed by kvcert; set"
        f" spec.adopt: true to take it over (its settings are then replaced by this spec)"
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
    if spec is None or not deletes:
        return IssuerDecision(remove_finalizer=True)
    # The vault is gone (its namespace is being deleted, say): nothing can be deleted in it;
    # say so and let go, as a Certificate does (reconcile/deletion.py).
    if inp.vault_missing:
        message = f"vault {spec.vault_ref.name} is gone; nothing was deleted in Key Vault"
        return IssuerDecision(
            remove_finalizer=True, events=(("Warning", Reason.VAULT_MISSING, message),)
        )
    if inp.outcome is None:
        if inp.vault_problem is not None:
            return _failed(inp, IssuerReason.VAULT_NOT_READY, inp.vault_problem)
        # Managed in another vault, or by another live resource: not this one's to delete.
        if not owned(inp.status, inp.vault_url) or inp.claimed_by:
            message = (
                f"Key Vault issuer {inp.issuer_name} in {inp.vault_url} is not managed by this"
                f" resource; not deleted"
            )
            return IssuerDecision(
                remove_finalizer=True, events=(("Warning", IssuerReason.NOT_OWNED, message),)
            )
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
        inp,
        "True",
        IssuerReason.CONFIGURED,
        message,
        managed=True,
        vault_url=inp.vault_url or None,
        digest=digest,
        info=info,
    )
    return IssuerDecision(status=_patch(_current(inp), status), events=events, body=status)


def _failed(
    inp: IssuerInput, reason: IssuerReason, message: str, *, disown: bool = False
) -> IssuerDecision:
    """Ready False with `reason`; Stalled for what needs a human, else retried with backoff.
    Status is written only when it changes otherwise than by the retry count (a retry that
    fails alike writes nothing, so no echo of it starts a round: issue #19 §2 review), and
    a Warning event only when the reason is new. `disown`: the ownership record goes back to
    what it was before this round (a first write that Key Vault refused)."""
    stalled = reason in STALLED_REASONS
    current = _current(inp)
    owner = inp.status if disown else current
    status = _status(
        inp,
        "False",
        reason,
        message,
        managed=owner.managed,
        vault_url=owner.vault_url,
        digest=current.applied_hash,
        info=current.issuer,
        failed=None if stalled else current.failed_attempts,
    )
    patch = _patch(current, status)
    if patch is not None and not stalled:
        status = {**status, "failedAttempts": inp.attempt + 1}
        patch = _patch(current, status)
    previous = find(current.conditions, "Ready")
    new = previous is None or previous.reason != reason or previous.status != "False"
    events: tuple[Event, ...] = (("Warning", reason, message),) if new else ()
    return IssuerDecision(
        status=patch,
        events=events,
        retry_after=None if stalled else backoff(inp.attempt, inp.jitter),
        body=status,
    )


def _current(inp: IssuerInput) -> CertificateIssuerStatus:
    """The status as the API server has it now: the round's, with `record` when written."""
    if not inp.recorded:
        return inp.status
    return inp.status.model_copy(
        update={"managed": True, "vault_url": inp.vault_url, "observed_generation": inp.generation}
    )


def _status(
    inp: IssuerInput,
    ready: str,
    reason: IssuerReason,
    message: str,
    *,
    managed: bool | None,
    vault_url: str | None,
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
        vault_url=vault_url if managed else None,
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
