"""The owner of `status.conditions` and `status.certificate`.

A decision ends in one `Verdict`; this module turns it into the three conditions (Ready,
Issuing, Stalled: the same reason on each, so a reader never has to reconcile two stories) and
records the delivered certificate version. It also decides the one event a verdict deserves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from kvcert.api.status import CertificateInfo, Condition
from kvcert.reconcile.actions import Emit
from kvcert.reconcile.conditions import find, set_condition
from kvcert.reconcile.inputs import Input
from kvcert.reconcile.observed import ObservedCertificate
from kvcert.reconcile.reasons import NORMAL, Reason

READY = "Ready"
ISSUING = "Issuing"
STALLED = "Stalled"


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


def issued(certificate: ObservedCertificate, secret_name: str) -> Verdict:
    """Ready: the certificate version is issued and delivered."""
    return Verdict(
        Reason.ISSUED,
        f"certificate version {certificate.version} is in Secret {secret_name}",
        ready=True,
        certificate=certificate,
    )


def conditions(inp: Input, verdict: Verdict) -> tuple[Condition, ...]:
    """Ready, Issuing and Stalled for this verdict; other condition types are kept."""
    current: tuple[Condition, ...] = tuple(inp.status.conditions or ())
    for type_, on in (
        (READY, verdict.ready),
        (ISSUING, verdict.issuing),
        (STALLED, verdict.stalled),
    ):
        current = set_condition(
            current,
            type_,
            "True" if on else "False",
            verdict.reason.value,
            verdict.message if (on or type_ == READY) else "",
            generation=inp.generation,
            now=inp.now,
        )
    return current


def certificate_info(inp: Input, verdict: Verdict) -> CertificateInfo | None:
    """`status.certificate`: the delivered version, kept as it was until a new one is delivered."""
    cert = verdict.certificate
    if cert is None:
        return inp.status.certificate
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
    previous = find(inp.status.conditions, READY)
    recorded = inp.status.certificate
    new_version = verdict.certificate is not None and (
        recorded is None or recorded.version != verdict.certificate.version
    )
    if previous is not None and previous.reason == verdict.reason.value and not new_version:
        return None
    if verdict.reason is Reason.ISSUING:
        return None  # the Created/Adopted event already said it
    kind: Literal["Normal", "Warning"] = "Normal" if verdict.reason in NORMAL else "Warning"
    return Emit(kind, verdict.reason.value, verdict.message)
