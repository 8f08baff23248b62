"""The owner of the output Secret: whether it must be read, written, or left alone.

The Secret is written only when it does not hold the issued version (compared by x5t, from the
labels `WriteSecret` puts on it) or was shaped by another secretTemplate/additionalOutputFormats
(compared by `output_hash`, recorded in an annotation), and never when someone else's Secret
has the name: silently replacing a Secret another tool manages is worse than reporting the clash.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import datetime

from kvcert.api.certificate import CertificateSpec, ContentType
from kvcert.api.outputs import KEY_FORMATS
from kvcert.reconcile import readiness
from kvcert.reconcile.actions import ReadCertificate, ReadSecret, WriteSecret
from kvcert.reconcile.decision import Decision, conclude, step
from kvcert.reconcile.facts import SecretFacts
from kvcert.reconcile.inputs import Input
from kvcert.reconcile.observed import ObservedCertificate
from kvcert.reconcile.operation import OperationView
from kvcert.reconcile.outcomes import Imported, Merged, OutputRefused, SecretConflict
from kvcert.reconcile.readiness import Verdict
from kvcert.reconcile.reasons import Reason
from kvcert.reconcile.schedule import backoff, renewal_check_at, renewal_delay


def conflict(spec: CertificateSpec) -> Verdict:
    """Someone else's Secret has the output name: report, never overwrite."""
    return Verdict(
        Reason.SECRET_CONFLICT,
        f"Secret {spec.secret_name} exists and is not managed by kvcert; rename or delete it",
        stalled=True,
    )


def output_hash(spec: CertificateSpec) -> str | None:
    """A digest of what shapes the Secret besides the certificate; None when nothing does, so
    that Secrets written before these fields existed stay current."""
    shaping = {
        "secretTemplate": spec.secret_template.to_wire() if spec.secret_template else None,
        "additionalOutputFormats": [
            item.to_wire() for item in spec.additional_output_formats or ()
        ],
    }
    if not shaping["secretTemplate"] and not shaping["additionalOutputFormats"]:
        return None
    text = json.dumps(shaping, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def output_problem(inp: Input, spec: CertificateSpec) -> Verdict | None:
    """An output format that cannot be built: reported, the rest of the Secret still served."""
    if (refused := inp.last(OutputRefused)) is not None:
        return Verdict(Reason.OUTPUT_REFUSED, refused.error.message)
    wanted = sorted(
        f.type.value for f in spec.additional_output_formats or () if f.type in KEY_FORMATS
    )
    if wanted and spec.policy is not None and not spec.policy.key.exportable:
        message = (
            f"additionalOutputFormats {', '.join(wanted)} need the private key, and the policy's"
            f" key is not exportable; Secret {spec.secret_name} holds the certificate only"
        )
        return Verdict(Reason.KEY_NOT_EXPORTABLE, message, stalled=True)
    return None


def _current(facts: SecretFacts, x5t: str | None, digest: str | None) -> bool:
    return (
        facts.exists
        and facts.ours
        and x5t is not None
        and facts.x5t == x5t
        and (facts.output_hash == digest)
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
    digest = output_hash(spec)
    if _current(facts, certificate.x5t, digest):
        return None
    if inp.last(OutputRefused) is not None:
        return output_problem(inp, spec)
    template = spec.secret_template
    return WriteSecret(
        secret_name=spec.secret_name,
        certificate_name=inp.certificate_name,
        version=certificate.version,
        x5t=certificate.x5t or "",
        content_type=spec.policy.content_type if spec.policy else ContentType.PKCS12,
        labels=tuple(sorted((template.labels or {}).items())) if template else (),
        annotations=tuple(sorted((template.annotations or {}).items())) if template else (),
        formats=tuple(spec.additional_output_formats or ()),
        output_hash=digest,
    )


def holds(inp: Input, spec: CertificateSpec, x5t: str | None) -> bool | None:
    """Whether the output Secret (as read) is ours, holds `x5t` and is shaped as the spec says;
    None when not read yet."""
    facts = inp.secret
    if facts is None:
        return None
    return _current(facts, x5t, output_hash(spec))


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
        held = holds(inp, spec, recorded.x5t)
        if held is None:
            return step("check the Secret", ReadSecret(spec.secret_name))
        if held:
            if (problem := output_problem(inp, spec)) is not None:
                return conclude(inp, problem, current, rung="output format unavailable")
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
        delay = backoff(inp.attempt, inp.jitter) if nxt.reason == Reason.OUTPUT_REFUSED else None
        return conclude(inp, nxt, current, rung=f"secret: {nxt.reason}", requeue_after=delay)
    if nxt is not None:
        return step("deliver to the Secret", nxt)
    delay = renewal_delay(renewal_check(inp, spec), inp.now, inp.jitter)
    if (problem := output_problem(inp, spec)) is not None:
        # The Secret holds this version (without the impossible formats): record it.
        problem = replace(problem, certificate=cert)
        return conclude(inp, problem, current, rung="output format unavailable")
    verdict = readiness.issued(cert, spec.secret_name)
    return conclude(inp, verdict, current, rung="issued", requeue_after=delay)
