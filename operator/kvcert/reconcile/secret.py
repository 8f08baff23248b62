"""The owner of the output Secret: whether it must be read, written, or left alone.

The Secret is written only when it does not hold the issued version (compared by x5t, from the
labels `WriteSecret` puts on it), and never when someone else's Secret has the name: silently
replacing a Secret another tool manages is worse than reporting the clash.
"""

from __future__ import annotations

from datetime import datetime

from kvcert.api.certificate import CertificateSpec, ContentType
from kvcert.reconcile import readiness
from kvcert.reconcile.actions import ReadCertificate, ReadSecret, WriteSecret
from kvcert.reconcile.decision import Decision, conclude, step
from kvcert.reconcile.inputs import Input
from kvcert.reconcile.observed import ObservedCertificate
from kvcert.reconcile.operation import OperationView
from kvcert.reconcile.outcomes import Imported, Merged, SecretConflict
from kvcert.reconcile.readiness import Verdict
from kvcert.reconcile.reasons import Reason
from kvcert.reconcile.schedule import renewal_check_at, renewal_delay


def conflict(spec: CertificateSpec) -> Verdict:
    """Someone else's Secret has the output name: report, never overwrite."""
    return Verdict(
        Reason.SECRET_CONFLICT,
        f"Secret {spec.secret_name} exists and is not managed by kvcert; rename or delete it",
        stalled=True,
    )


def next_step(
    inp: Input, spec: CertificateSpec, certificate: ObservedCertificate
) -> ReadSecret | WriteSecret | Verdict | None:
    """What the output Secret needs for `certificate`: a read, a write, a report, or nothing."""
    if inp.last(SecretConflict) is not None:
        return conflict(spec)
    facts = inp.secret
    if facts is None:
        return ReadSecret(spec.secret_name)
    if facts.exists and not facts.ours:
        return conflict(spec)
    if facts.exists and certificate.x5t is not None and facts.x5t == certificate.x5t:
        return None
    return WriteSecret(
        secret_name=spec.secret_name,
        certificate_name=inp.certificate_name,
        version=certificate.version,
        x5t=certificate.x5t or "",
        content_type=spec.policy.content_type if spec.policy else ContentType.PKCS12,
    )


def holds(inp: Input, x5t: str | None) -> bool | None:
    """Whether the output Secret (as read) is ours and holds `x5t`; None when not read yet."""
    facts = inp.secret
    if facts is None:
        return None
    return facts.exists and facts.ours and x5t is not None and facts.x5t == x5t


def renewal_check(inp: Input, spec: CertificateSpec) -> datetime | None:
    """When to look for the version Key Vault renews by itself (policy AutoRenew)."""
    cert = inp.certificate
    if isinstance(cert, ObservedCertificate):
        not_before, not_after = cert.not_before, cert.not_after
    elif inp.status.certificate is not None:
        not_before = inp.status.certificate.not_before
        not_after = inp.status.certificate.not_after
    else:
        return None
    actions = spec.policy.lifetime_actions if spec.policy is not None else None
    return renewal_check_at(not_before, not_after, actions)


def deliver(inp: Input, spec: CertificateSpec, current: OperationView) -> Decision:
    """Completed: make the output Secret hold the issued version, then say Ready.

    A certificate already delivered costs one Secret GET and no Key Vault call, unless its
    AutoRenew point has passed: then the certificate is read to pick up the renewed version.
    """
    cert = inp.certificate
    fresh = current.op is not None or inp.last(Merged) is not None or inp.last(Imported) is not None
    recorded = inp.status.certificate
    check_at = renewal_check(inp, spec)
    renewal_due = check_at is not None and check_at <= inp.now
    if cert is None and not fresh and not renewal_due and recorded is not None and recorded.x5t:
        held = holds(inp, recorded.x5t)
        if held is None:
            return step("check the Secret", ReadSecret(spec.secret_name))
        if held:
            verdict = Verdict(
                Reason.ISSUED,
                f"certificate version {recorded.version} is in Secret {spec.secret_name}",
                ready=True,
            )
            delay = renewal_delay(check_at, inp.now, inp.jitter)
            return conclude(inp, verdict, current, rung="in sync", requeue_after=delay)
    if cert is None:
        return step("read the issued certificate", ReadCertificate(inp.certificate_name))
    if not isinstance(cert, ObservedCertificate) or not cert.enabled or cert.x5t is None:
        message = f"Key Vault has no issued version of {inp.certificate_name}"
        verdict = Verdict(Reason.CERTIFICATE_MISSING, message, stalled=True)
        return conclude(inp, verdict, current, rung="certificate missing")
    nxt = next_step(inp, spec, cert)
    if isinstance(nxt, Verdict):
        return conclude(inp, nxt, current, rung="secret conflict")
    if nxt is not None:
        return step("deliver to the Secret", nxt)
    delay = renewal_delay(renewal_check(inp, spec), inp.now, inp.jitter)
    verdict = readiness.issued(cert, spec.secret_name)
    return conclude(inp, verdict, current, rung="issued", requeue_after=delay)
