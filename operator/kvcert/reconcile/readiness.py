"""The owner of `status.conditions` and `status.certificate`.

A decision ends in one `Verdict`; this module turns it into the four conditions (Ready,
Issuing, Stalled, and Reconciling, which mirrors Issuing for kstatus readers such as Flux: the
same reason on each, so a reader never has to reconcile two stories) and records the delivered
certificate version. It also decides the one event a verdict deserves.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from kvcert.api.status import CertificateInfo, Condition
from kvcert.reconcile.actions import Emit
from kvcert.reconcile.conditions import find, set_condition
from kvcert.reconcile.inputs import Input
from kvcert.reconcile.lifecycle import TRIGGER_RENEW, TRIGGER_RENEW_BEFORE
from kvcert.reconcile.observed import ObservedCertificate
from kvcert.reconcile.outcomes import SecretWritten
from kvcert.reconcile.reasons import NORMAL, Reason

READY = "Ready"
ISSUING = "Issuing"
STALLED = "Stalled"
RECONCILING = "Reconciling"
"""kstatus' name for "an operation is in progress" (sigs.k8s.io/cli-utils/pkg/kstatus)."""


@dataclass(frozen=True)
class Verdict:
    """Where the Certificate stands after this reconcile, in one reason."""

    reason: Reason
    message: str
    ready: bool = False
    issuing: bool = False
    stalled: bool = False
    certificate: ObservedCertificate | None = None
    """The version now delivered to the output Secret (set with `ready`)."""
    serving: bool = False
    """Not ready by itself, but the version delivered earlier still serves and has not expired
    (a renewal or a spec change in progress, or its failure): Ready stays True (set by
    `serving`, as cert-manager keeps Ready while it re-issues)."""


KEEPS_SERVING = frozenset(
    {
        Reason.ISSUING,
        Reason.RENEWING,
        Reason.CREATED,
        Reason.ADOPTED,
        Reason.AWAITING_MERGE,
        Reason.CANCELLING,
        Reason.SUPERSEDED,
        Reason.MERGED,
        Reason.RECOVERING,
        Reason.RECOVERED,
        Reason.OPERATION_FAILED,
        Reason.OPERATION_CANCELLED,
        Reason.OPERATION_DELETED,
        Reason.CONFLICT,
        Reason.NAME_SOFT_DELETED,
        Reason.REJECTED,
        Reason.CANCEL_REFUSED,
        Reason.MERGE_FORBIDDEN,
        Reason.MERGE_REJECTED,
        Reason.MERGE_SECRET_INVALID,
        Reason.IMPORT_SECRET_MISSING,
        Reason.IMPORT_SECRET_INVALID,
        Reason.VAULT_NOT_READY,
        Reason.KEY_VAULT_ERROR,
        Reason.THROTTLED,
        Reason.ACCESS_DENIED,
        Reason.UPDATE_REFUSED,
    }
)
"""Reasons about the *next* version: the delivered one keeps serving through them."""


def serving(inp: Input, verdict: Verdict) -> Verdict:
    """`verdict`, marked serving when the version delivered earlier is still Ready: recorded,
    not expired, and Ready was True. Expiry, a lost Secret or a deleted certificate end it."""
    if verdict.ready or verdict.reason not in KEEPS_SERVING:
        return verdict
    recorded = inp.status.certificate
    if recorded is None or not recorded.x5t:
        return verdict
    if recorded.not_after is not None and recorded.not_after <= inp.now:
        return verdict
    ready = find(inp.status.conditions, READY)
    rebuilt = any(
        isinstance(item, SecretWritten) and item.x5t == recorded.x5t for item in inp.outcomes
    )
    if (ready is None or ready.status != "True") and not rebuilt:
        return verdict
    return replace(verdict, serving=True)


def issued(certificate: ObservedCertificate, secret_name: str) -> Verdict:
    """Ready: the certificate version is issued and delivered."""
    return Verdict(
        Reason.ISSUED,
        f"certificate version {certificate.version} is in Secret {secret_name}",
        ready=True,
        certificate=certificate,
    )


def _renewing_while_serving(inp: Input, verdict: Verdict) -> bool:
    """A renewal by time or by kvcert.io/renew while the delivered version serves: the spec is
    met, so kstatus readers (Flux health checks) see Current, not days of InProgress (#16)."""
    intent = inp.status.operation.intent if inp.status.operation else None
    trigger = intent.trigger if intent is not None else None
    return verdict.serving and trigger in (TRIGGER_RENEW, TRIGGER_RENEW_BEFORE)


def conditions(inp: Input, verdict: Verdict) -> tuple[Condition, ...]:
    """Ready, Issuing, Stalled and Reconciling (= Issuing) for this verdict; other condition
    types are kept."""
    current: tuple[Condition, ...] = tuple(inp.status.conditions or ())
    for type_, on in (
        (READY, verdict.ready or verdict.serving),
        (ISSUING, verdict.issuing),
        (STALLED, verdict.stalled),
        (RECONCILING, verdict.issuing and not _renewing_while_serving(inp, verdict)),
    ):
        reason, message = verdict.reason.value, verdict.message if (on or type_ == READY) else ""
        if type_ == READY and verdict.serving and inp.status.certificate is not None:
            reason = Reason.ISSUED.value
            message = f"certificate version {inp.status.certificate.version} serves; {message}"
        current = set_condition(
            current,
            type_,
            "True" if on else "False",
            reason,
            message,
            generation=inp.generation,
            now=inp.now,
        )
    return current


def certificate_info(inp: Input, verdict: Verdict) -> CertificateInfo | None:
    """`status.certificate`: the delivered version, kept as it was until a new one is delivered."""
    cert = verdict.certificate
    if cert is None:
        return inp.status.certificate
    return info_of(cert)


def info_of(cert: ObservedCertificate) -> CertificateInfo:
    """The public facts of a version, as `status.certificate` records them."""
    return CertificateInfo(
        id=cert.id,
        version=cert.version,
        x5t=cert.x5t,
        serial_number=cert.serial_number,
        not_before=cert.not_before,
        not_after=cert.not_after,
    )


def event_for(inp: Input, verdict: Verdict) -> Emit | None:
    """One event when the Ready reason changes or a new version is delivered, never per poll."""
    # Stalled carries the last verdict's reason even while Ready says a version serves.
    previous = find(inp.status.conditions, STALLED) or find(inp.status.conditions, READY)
    recorded = inp.status.certificate
    new_version = verdict.certificate is not None and (
        recorded is None or recorded.version != verdict.certificate.version
    )
    if previous is not None and previous.reason == verdict.reason.value and not new_version:
        return None
    if verdict.reason in (Reason.ISSUING, Reason.RENEWING):
        return None  # the Created/Adopted event already said it
    if new_version and recorded is not None and recorded.x5t and verdict.certificate is not None:
        new = verdict.certificate.version
        text = f"version {new} replaces {recorded.version}; {verdict.message}"
        return Emit("Normal", Reason.RENEWED, text)
    if (
        verdict.reason is Reason.ISSUED
        and previous is not None
        and previous.reason in (Reason.SECRET_MISSING.value, Reason.SECRET_MISMATCH.value)
    ):
        return Emit("Normal", Reason.SECRET_RESTORED, f"rebuilt: {verdict.message}")
    kind: Literal["Normal", "Warning"] = "Normal" if verdict.reason in NORMAL else "Warning"
    if verdict.reason is Reason.CERTIFICATE_DELETED:
        kind = "Warning"  # here deleted out of band; deletionPolicy Delete emits its own
    return Emit(kind, verdict.reason.value, verdict.message)
