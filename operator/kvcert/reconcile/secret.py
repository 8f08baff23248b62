"""The owner of the output Secret: whether it must be read, written, or left alone.

The Secret is written only when it does not hold the issued version (compared by x5t, from the
labels `WriteSecret` puts on it) or was shaped by another secretTemplate/additionalOutputFormats
(compared by `output_hash`, recorded in an annotation), and never when someone else's Secret
has the name: silently replacing a Secret another tool manages is worse than reporting the clash.
Ownership alone makes a conflict: a Secret of ours is rewritten whatever its type or keys (a type
change, Opaque <-> kubernetes.io/tls, is a delete and a create: runtime.sources.output_write).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import datetime

from kvcert.api.certificate import CertificateSpec, ContentType
from kvcert.api.outputs import KEY_FORMATS
from kvcert.api.status import CertificateInfo
from kvcert.reconcile import lifecycle, readiness
from kvcert.reconcile.actions import Emit, ReadCertificate, ReadSecret, RecordIntent, WriteSecret
from kvcert.reconcile.conditions import find
from kvcert.reconcile.decision import Decision, conclude, step
from kvcert.reconcile.facts import SecretFacts
from kvcert.reconcile.inputs import Input
from kvcert.reconcile.observed import NOT_FOUND, ObservedCertificate
from kvcert.reconcile.operation import OperationView
from kvcert.reconcile.outcomes import (
    Imported,
    Merged,
    OutputRefused,
    SecretConflict,
    SecretWritten,
    StatusWritten,
)
from kvcert.reconcile.patch import merge_patch_diff
from kvcert.reconcile.readiness import Verdict
from kvcert.reconcile.reasons import Reason
from kvcert.reconcile.schedule import backoff


def conflict(spec: CertificateSpec) -> Verdict:
    """Someone else's Secret has the output name: report, never overwrite."""
    return Verdict(
        Reason.SECRET_CONFLICT,
        f"Secret {spec.secret_name} exists and is not this Certificate's (another tool's, or"
        " another Certificate's): rename spec.secretName or delete the Secret",
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
    observed = inp.certificate
    if spec.existing and isinstance(observed, ObservedCertificate) and observed.exportable is False:
        # Key Vault withholds the key: the Secret holds tls.crt and ca.crt, never tls.key.
        message = (
            f"the key of Key Vault certificate {inp.certificate_name} is not exportable: Secret"
            f" {spec.secret_name} holds version {observed.version}'s certificate (tls.crt,"
            " ca.crt) without tls.key; make the key exportable in Key Vault (a new version with"
            " key_props.exportable true) where a private key is needed"
        )
        return Verdict(Reason.KEY_NOT_EXPORTABLE, message, stalled=True)
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
        and facts.intact
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


def _look_due(inp: Input, spec: CertificateSpec) -> bool:
    """status.renewalTime has come: look at Key Vault (a renewed or replaced version). A status
    written before renewalTime existed is judged by the AutoRenew point of the spec's policy."""
    due = inp.status.renewal_time
    if due is None and (info := inp.status.certificate) is not None:
        rules = (
            lifecycle.rules_of(spec, None) if spec.policy and spec.policy.lifetime_actions else ()
        )
        at = lifecycle.vault_renews_at(rules, info.not_before, info.not_after)
        due = at + lifecycle.RENEWAL_MARGIN if at is not None else None
    return due is not None and due <= inp.now


def _expired(not_after: datetime | None, now: datetime) -> bool:
    return not_after is not None and not_after <= now


def loss(inp: Input, spec: CertificateSpec, recorded_x5t: str) -> Verdict | None:
    """Why our Secret no longer holds the delivered version: deleted, or edited (its data no
    longer matches the digest kvcert wrote, or another version's labels). None: not a loss
    (someone else's Secret: a conflict; only the output shape changed: a plain rewrite)."""
    facts = inp.secret
    if facts is None or inp.status.observed_generation != inp.generation:
        return None  # a spec edit (a new secretName, say) is not a loss
    if not facts.exists:
        message = f"Secret {spec.secret_name} was deleted; rebuilding it from Key Vault"
        return Verdict(Reason.SECRET_MISSING, message)
    if not facts.ours:
        return None
    if not facts.intact or facts.x5t != recorded_x5t:
        message = f"Secret {spec.secret_name} was edited; rebuilding it from Key Vault"
        return Verdict(Reason.SECRET_MISMATCH, message)
    return None


def report_loss(inp: Input, verdict: Verdict, then: ReadCertificate | WriteSecret) -> Decision:
    """Ready False with the loss's reason on record (one status write, one Warning) before the
    rebuild: if the rebuild cannot happen now, status already says why."""
    recorded = inp.status.to_wire()
    have = {"conditions": recorded.get("conditions")}
    want = {"conditions": [item.to_wire() for item in readiness.conditions(inp, verdict)]}
    warning = Emit("Warning", verdict.reason, verdict.message)
    return step(
        f"secret: {verdict.reason}", warning, RecordIntent(merge_patch_diff(have, want)), then
    )


def keep_serving(inp: Input, spec: CertificateSpec, current: OperationView) -> Decision | None:
    """While the next version is pending, failed or deleted, the delivered one keeps its
    Secret: lost or edited, it is rebuilt from that version (one Secret GET per round, only
    for a certificate that has a delivered version and an operation that is not completed)."""
    delivered = inp.status.certificate
    if delivered is None or not delivered.x5t or not delivered.version or spec.import_from:
        return None
    if inp.last(SecretWritten) is not None:
        return None
    facts = inp.secret
    if facts is None:
        return step("check the Secret of the serving version", ReadSecret(spec.secret_name))
    if holds(inp, spec, delivered.x5t) or (facts.exists and not facts.ours):
        return None
    serving = ObservedCertificate(
        id=delivered.id or "",
        version=delivered.version,
        enabled=True,
        x5t=delivered.x5t,
        serial_number=delivered.serial_number,
        not_before=delivered.not_before,
        not_after=delivered.not_after,
    )
    write = next_step(inp, spec, serving)
    if not isinstance(write, WriteSecret):
        return None
    lost = loss(inp, spec, delivered.x5t)
    if lost is not None and inp.last(StatusWritten) is None:
        return report_loss(inp, lost, write)
    return step("rebuild the Secret of the serving version", write)


def _in_sync(
    inp: Input, spec: CertificateSpec, current: OperationView, info: CertificateInfo
) -> Decision:
    """The Secret holds the delivered version: Ready until notAfter, then Expired; come back at
    the next look (status.renewalTime) or at notAfter, whichever is first."""
    delay = next_round(inp, spec, info)
    stalled = find(inp.status.conditions, readiness.STALLED)
    if stalled is not None and stalled.reason == Reason.CERTIFICATE_DELETED.value:
        # Reported at the last look; only kvcert.io/retry or a new version ends it.
        verdict = Verdict(Reason.CERTIFICATE_DELETED, stalled.message, stalled=True)
        return conclude(inp, verdict, current, rung="certificate deleted earlier")
    if _expired(info.not_after, inp.now):
        message = (
            f"certificate version {info.version} in Secret {spec.secret_name} expired at"
            f" {info.not_after:%Y-%m-%dT%H:%M:%SZ} and no newer version was issued"
        )
        verdict = Verdict(Reason.EXPIRED, message, stalled=True)
        return conclude(inp, verdict, current, rung="expired", requeue_after=delay)
    if (problem := output_problem(inp, spec)) is not None:
        return conclude(inp, problem, current, rung="output format unavailable")
    verdict = Verdict(
        Reason.ISSUED,
        f"certificate version {info.version} is in Secret {spec.secret_name}",
        ready=True,
    )
    return conclude(inp, verdict, current, rung="in sync", requeue_after=delay)


def next_round(inp: Input, spec: CertificateSpec, info: CertificateInfo | None) -> float | None:
    """Seconds until the next look (status.renewalTime) or the expiry, whichever is first."""
    times = [
        lifecycle.next_refresh(inp, spec)
        if spec.existing
        else lifecycle.renewal_time(inp, spec, info)
    ]
    if info is not None and info.not_after is not None and info.not_after > inp.now:
        times.append(info.not_after)
    due = [item for item in times if item is not None]
    if not due:
        return None
    return round(max((min(due) - inp.now).total_seconds(), 1.0), 3)


def deliver(inp: Input, spec: CertificateSpec, current: OperationView) -> Decision:
    """Completed: make the output Secret hold the issued version, then say Ready.

    A certificate already delivered costs one Secret GET and no Key Vault call, unless its
    next look (status.renewalTime) has come: then the certificate is read to pick up a renewed
    version. A lost or edited Secret is rebuilt from the delivered version, no new create.
    """
    cert = inp.certificate
    fresh = current.op is not None or inp.last(Merged) is not None or inp.last(Imported) is not None
    recorded = inp.status.certificate
    delivered = recorded if recorded is not None and recorded.x5t else None
    if cert is None and not fresh and not _look_due(inp, spec) and delivered is not None:
        held = holds(inp, spec, delivered.x5t)
        if held is None:
            return step("check the Secret", ReadSecret(spec.secret_name))
        if held:
            return _in_sync(inp, spec, current, delivered)
        lost = loss(inp, spec, delivered.x5t or "")
        if lost is not None and inp.last(StatusWritten) is None:
            return report_loss(inp, lost, ReadCertificate(inp.certificate_name))
    if cert is None:
        return step("read the issued certificate", ReadCertificate(inp.certificate_name))
    if cert == NOT_FOUND and delivered is not None:
        message = (
            f"the certificate {inp.certificate_name} was deleted in Key Vault; Secret"
            f" {spec.secret_name} keeps version {delivered.version}; set the annotation"
            " kvcert.io/retry (any new value) to create it anew"
        )
        verdict = Verdict(Reason.CERTIFICATE_DELETED, message, stalled=True)
        return conclude(inp, verdict, current, rung="certificate deleted out of band")
    usable = isinstance(cert, ObservedCertificate) and cert.enabled and cert.x5t is not None
    if not usable and delivered is not None and not fresh:
        # The look found no usable newer version (a renewal still pending): keep serving.
        held = holds(inp, spec, delivered.x5t)
        if held is None:
            return step("check the Secret", ReadSecret(spec.secret_name))
        if held:
            return _in_sync(inp, spec, current, delivered)
    if not isinstance(cert, ObservedCertificate) or not usable:
        message = f"Key Vault has no issued version of {inp.certificate_name}"
        verdict = Verdict(Reason.CERTIFICATE_MISSING, message, stalled=True)
        return conclude(inp, verdict, current, rung="certificate missing")
    nxt = next_step(inp, spec, cert)
    if isinstance(nxt, Verdict):
        delay = backoff(inp.attempt, inp.jitter) if nxt.reason == Reason.OUTPUT_REFUSED else None
        if delay is None and spec.existing:
            delay = next_round(inp, spec, None)  # source Existing: the next look is scheduled
        return conclude(inp, nxt, current, rung=f"secret: {nxt.reason}", requeue_after=delay)
    if nxt is not None:
        return step("deliver to the Secret", nxt)
    info = readiness.info_of(cert)
    delay = next_round(inp, spec, info)
    if (problem := output_problem(inp, spec)) is not None:
        # The Secret holds this version (without the impossible formats): record it.
        problem = replace(problem, certificate=cert)
        later = delay if spec.existing else None  # source Existing: the next look is scheduled
        return conclude(
            inp, problem, current, rung="output format unavailable", requeue_after=later
        )
    if _expired(cert.not_after, inp.now):
        message = f"certificate version {cert.version} expired at {cert.not_after}"
        verdict = Verdict(Reason.EXPIRED, message, stalled=True, certificate=cert)
        return conclude(inp, verdict, current, rung="issued, expired", requeue_after=delay)
    verdict = readiness.issued(cert, spec.secret_name)
    return conclude(inp, verdict, current, rung="issued", requeue_after=delay)
