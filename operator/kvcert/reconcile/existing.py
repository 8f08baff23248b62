"""The ladder of a `source: Existing` Certificate (issue #19 §3): kvcert only delivers.

Such a Certificate names a certificate that exists in Key Vault and kvcert does not manage: it
never creates, imports, merges, updates, cancels, renews or deletes anything there. Its only Key
Vault calls are a *look* (GET /certificates/{name}/, the latest version) and, when the look finds
a version the output Secret does not hold, the GET of that version's secret (secret.deliver).

A look is made when one is due: the first round of this operator process (start-up, re-list),
a spec change, a request annotation, the refresh schedule (status.renewalTime, then every
refreshInterval, default 1h), the delivered version's expiry, or an output Secret lost or
edited. Between looks a round costs nothing: the output Secret's facts come from the watch's
cache, and nothing changed means no status write. What a look finds wrong (no certificate, only
a pending version, the current version disabled or expired, a key that is not exportable) is
reported with its own reason and looked at again at the next refresh, never in a loop; a Secret
already delivered keeps serving meanwhile (it is never deleted).
"""

from __future__ import annotations

from datetime import datetime

from kvcert.api.certificate import CertificateSpec
from kvcert.api.lifecycle import RENEW_ANNOTATION, RETRY_ANNOTATION
from kvcert.reconcile import lifecycle, secret
from kvcert.reconcile.actions import Emit, ReadCertificate, ReadSecret
from kvcert.reconcile.decision import Decision, conclude, step
from kvcert.reconcile.inputs import Input
from kvcert.reconcile.observed import ObservedCertificate
from kvcert.reconcile.operation import OperationView
from kvcert.reconcile.outcomes import StatusWritten
from kvcert.reconcile.readiness import Verdict
from kvcert.reconcile.reasons import Reason


def decide(inp: Input, spec: CertificateSpec, current: OperationView) -> Decision:
    """The next step for a source Existing Certificate. Pure, like the whole ladder."""
    name = inp.certificate_name
    cert = inp.certificate
    # Not read in this round and a look is due: read the latest version (and say once that a
    # Managed certificate is no longer managed).
    if cert is None and (why := look_due(inp, spec)) is not None:
        return step(f"existing: look ({why})", *_released(inp, spec), ReadCertificate(name))
    # Not read, no look due: the delivered version keeps serving, at no cost.
    if cert is None:
        return _between_looks(inp, spec, current)
    # No certificate of that name: reported, looked for again at the next refresh.
    if not isinstance(cert, ObservedCertificate):
        message = (
            f"Key Vault has no certificate {name}{_keeps(inp, spec)}; kvcert looks again"
            f" {_every(spec)} (source Existing creates nothing)"
        )
        return _report(inp, spec, current, Verdict(Reason.CERTIFICATE_NOT_FOUND, message))
    # Only a pending version: nothing issued to deliver yet.
    if cert.x5t is None:
        message = (
            f"Key Vault certificate {name} has only a pending version, not issued yet"
            f"{_keeps(inp, spec)}; kvcert looks again {_every(spec)}"
        )
        return _report(inp, spec, current, Verdict(Reason.CERTIFICATE_NOT_ISSUED, message))
    # The current version is disabled in Key Vault: not delivered.
    if not cert.enabled:
        message = (
            f"the current version {cert.version} of Key Vault certificate {name} is disabled"
            f"{_keeps(inp, spec)}; enable it or issue a new version in Key Vault"
        )
        verdict = Verdict(Reason.CERTIFICATE_DISABLED, message, stalled=True)
        return _report(inp, spec, current, verdict)
    # The current version has expired: not delivered.
    if cert.not_after is not None and cert.not_after <= inp.now:
        message = (
            f"the current version {cert.version} of Key Vault certificate {name} expired at"
            f" {_at(cert.not_after)}{_keeps(inp, spec)}; issue a new version in Key Vault"
        )
        return _report(inp, spec, current, Verdict(Reason.EXPIRED, message, stalled=True))
    # Issued, enabled and valid: the output Secret holds it (written only when x5t changed).
    return secret.deliver(inp, spec, current)


def look_due(inp: Input, spec: CertificateSpec) -> str | None:
    """Why the Key Vault certificate must be read in this round, or None."""
    if inp.last_look is None:
        return "first round of this operator process"
    if inp.status.observed_generation != inp.generation:
        return "spec changed"
    if lifecycle.annotation_pending(inp, RENEW_ANNOTATION):
        return "kvcert.io/renew"
    if lifecycle.annotation_pending(inp, RETRY_ANNOTATION):
        return "kvcert.io/retry"
    point = lifecycle.last_refresh_point(inp, spec)
    if point is not None and inp.last_look < point:
        return "refreshInterval"
    delivered = inp.status.certificate
    expiry = delivered.not_after if delivered is not None else None
    if expiry is not None and inp.last_look < expiry <= inp.now:
        return "the delivered version expired"
    return None


def _between_looks(inp: Input, spec: CertificateSpec, current: OperationView) -> Decision:
    """No look due: check the output Secret (the watch's cache: no API call); one that holds
    the delivered version costs nothing more; a lost or edited one is reported and rebuilt
    after a look; someone else's is a conflict."""
    delay = secret.next_round(inp, spec, inp.status.certificate)
    delivered = inp.status.certificate
    if delivered is None or not delivered.x5t:
        return Decision(requeue_after=delay, rung="existing: nothing delivered, next look later")
    facts = inp.secret
    if facts is None:
        return step("existing: check the Secret", ReadSecret(spec.secret_name))
    if secret.holds(inp, spec, delivered.x5t):
        return Decision(requeue_after=delay, rung="existing: in sync, next look later")
    if facts.exists and not facts.ours:
        return conclude(inp, secret.conflict(spec), current, rung="existing: secret conflict")
    lost = secret.loss(inp, spec, delivered.x5t)
    if lost is not None and inp.last(StatusWritten) is None:
        return secret.report_loss(inp, lost, ReadCertificate(inp.certificate_name))
    return step("existing: look to rebuild the Secret", ReadCertificate(inp.certificate_name))


def _report(
    inp: Input, spec: CertificateSpec, current: OperationView, verdict: Verdict
) -> Decision:
    """A look found nothing to deliver: Ready False with its reason (one status write and one
    event when the reason changes, none after); the next look at the next refresh."""
    delay = secret.next_round(inp, spec, None)
    return conclude(inp, verdict, current, rung=f"existing: {verdict.reason}", requeue_after=delay)


def _released(inp: Input, spec: CertificateSpec) -> tuple[Emit, ...]:
    """The event of a Managed Certificate switched to Existing (status.operation is what a
    Managed one records; Existing clears it, so this is said once)."""
    if inp.status.operation is None:
        return ()
    message = (
        f"source is Existing: kvcert no longer manages Key Vault certificate"
        f" {inp.certificate_name} (nothing was deleted there, its tags stay) and only delivers"
        f" its current version to Secret {spec.secret_name}"
    )
    return (Emit("Normal", Reason.RELEASED, message),)


def _keeps(inp: Input, spec: CertificateSpec) -> str:
    """What the output Secret still serves, for the messages above."""
    delivered = inp.status.certificate
    if delivered is None or not delivered.version:
        return ""
    return f" (Secret {spec.secret_name} keeps serving version {delivered.version})"


def _every(spec: CertificateSpec) -> str:
    """The refresh schedule in words (no time: a message that changes costs a status write)."""
    return f"every {spec.refresh_interval or '1h'} (spec.refreshInterval)"


def _at(value: datetime) -> str:
    return f"{value:%Y-%m-%dT%H:%M:%SZ}"
