"""Renewal over time (issue #15 §1-§2): an idle Ready certificate costs nothing until its
renewalTime; then a version Key Vault renewed by itself (AutoRenew) is delivered with one Secret
write, and spec.renewBefore / renewBeforePercentage make kvcert create the next version itself
while the delivered one keeps serving.

Time is moved through the vault's clock and the operator's clock together (timetravel.Lab),
never slept. Runs under the `documented` profile only: renewals and time do not differ between
the vault's profiles (DESIGN §3.2: only pending-operation states and cancel wording do).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID
from kubernetes import client

from tests.integration.operator.harness import (
    CREATES,
    MERGES,
    PENDING_READS,
    certificate_spec,
    secret_text,
    wait_for,
)
from tests.integration.operator.meter import QUIET
from tests.integration.operator.testca import TestCA, pem_certs
from tests.integration.operator.timetravel import (
    Tenant,
    condition,
    external_cluster,
    issue,
    lab_fixtures,
    parse_time,
    secret_x5t,
    wait_delivered,
    wait_new_operation,
)

pytestmark = external_cluster
ISSUER = "mydigicert"
GET_CERTIFICATE = "GET /certificates/{name}/"
MARGIN = timedelta(minutes=10)
"""kvcert looks for Key Vault's renewed version this long after the AutoRenew point."""
MERGE_POLL = 310.0
"""Seconds that make the next poll of a pending operation due (it grows to 300 s at most)."""
_NO_DATA = client.V1ConfigMap(data={})


lab, operator, tenant = lab_fixtures("lifecycle-renewal", ("documented",))


def _lifetime(body: dict[str, Any]) -> tuple[datetime, datetime]:
    info = body["status"]["certificate"]
    nbf, exp = parse_time(info["notBefore"]), parse_time(info["notAfter"])
    assert nbf is not None
    assert exp is not None
    return nbf, exp


def _renewal(body: dict[str, Any]) -> datetime:
    renewal = parse_time(body["status"].get("renewalTime"))
    assert renewal is not None, f"no status.renewalTime: {body['status']}"
    return renewal


def _close(actual: datetime, expected: datetime, slack: float = 1.5) -> bool:
    return abs((actual - expected).total_seconds()) <= slack


def test_an_idle_ready_certificate_costs_nothing_until_key_vault_renews_it(tenant: Tenant):
    body = issue(tenant, "auto")
    nbf, exp = _lifetime(body)
    renewal = _renewal(body)
    assert _close(renewal, nbf + (exp - nbf) * 0.8 + MARGIN), (
        f"renewalTime {renewal} is not Key Vault's default AutoRenew point (80 %) + 10 min"
    )
    row = tenant.printer_row("auto")
    status = body["status"]
    assert row["Ready"] == "True"
    assert row["Status"] == "completed"
    assert row["Issuer"] == "Self"
    assert row["Secret"] == "auto-tls"
    assert row["Expires"] == status["certificate"]["notAfter"]
    assert row["Renewal"] == status["renewalTime"]

    idle = tenant.meter()
    idle.quiet(QUIET, "a request by an idle Ready certificate")
    tenant.advance((renewal - tenant.lab.now()).total_seconds() / 2)
    idle.quiet(3.0, "a request before renewalTime (clocks moved half way)")
    costs = idle.stop("idle Ready: 5 s, then clocks moved half way to renewalTime", settle=False)
    assert costs.key_vault == {}
    assert costs.kubernetes == {}
    assert tenant.status("auto")["renewalTime"] == status["renewalTime"]

    old = status["certificate"]
    ready_since = condition(body, "Ready")["lastTransitionTime"]
    meter = tenant.meter()
    tenant.lab.advance_past(renewal)
    body = wait_delivered(tenant, "auto", old["version"])
    tenant.kube.wait_event("auto", "Renewed")
    costs = meter.stop("Key Vault's AutoRenew (Self) delivered at renewalTime")

    assert costs.lifetime_actions == {"AutoRenew": 1}
    assert costs.kv(CREATES) == 0, "Key Vault renewed by itself: kvcert creates nothing"
    assert costs.kv(GET_CERTIFICATE) == 1, "one look at the certificate"
    assert costs.k8s("update secrets") == 1, "a renewal costs one Secret write"
    assert costs.k8s("patch certificates/status") == 1
    assert costs.k8s("create events") == 1
    ready = condition(body, "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Issued")
    assert ready["lastTransitionTime"] == ready_since, "Ready stayed True through the renewal"
    new = body["status"]["certificate"]
    assert new["x5t"] != old["x5t"]
    vault_cert = tenant.ops.certificate("auto")
    assert vault_cert is not None
    assert vault_cert["x5t"] == new["x5t"]
    nbf, exp = _lifetime(body)
    assert nbf > parse_time(old["notBefore"])  # type: ignore[operator]
    assert _close(_renewal(body), nbf + (exp - nbf) * 0.8 + MARGIN), "the new version's point"
    assert _renewal(body) > tenant.lab.now()
    assert tenant.kube.event_reasons("auto").count("Renewed") == 1


def test_a_renewal_still_pending_at_renewal_time_is_looked_for_again_an_hour_later(
    tenant: Tenant,
):
    tenant.ops.set_issuer(ISSUER, "DigiCert")
    body = issue(tenant, "dc-auto", ISSUER)
    old = body["status"]["certificate"]
    renewal = _renewal(body)

    # Key Vault starts the renewal at the AutoRenew point; its CA answers 600 s of vault time
    # after the clocks stop: kvcert's look finds the issued version still current.
    meter = tenant.meter()
    tenant.lab.advance_past(renewal)
    body = wait_for(
        lambda: (b := tenant.kube.certificate("dc-auto")) and _renewal(b) != renewal and b,
        30,
        "renewalTime to move after the look",
    )
    costs = meter.stop("look at renewalTime while Key Vault's renewal is pending (provider CA)")
    again = _renewal(body)
    assert _close(again, tenant.lab.now() + timedelta(hours=1), 120), (
        f"renewalTime {again}: expected about an hour after the look ({tenant.lab.now()})"
    )
    assert costs.lifetime_actions == {"AutoRenew": 1}
    assert costs.key_vault == {GET_CERTIFICATE: 1}, "one look, nothing else"
    assert costs.kubernetes == {"patch certificates/status": 1}, "renewalTime only"
    assert body["status"]["certificate"]["version"] == old["version"]
    assert secret_x5t(tenant.kube, "dc-auto-tls") == old["x5t"]
    assert condition(body, "Ready")["status"] == "True"
    pending = tenant.ops.pending("dc-auto")
    assert pending is not None
    assert pending["status"] == "inProgress"

    meter = tenant.meter()
    tenant.lab.advance_past(again)  # the CA answered meanwhile (600 s < 1 h)
    body = wait_delivered(tenant, "dc-auto", old["version"])
    tenant.kube.wait_event("dc-auto", "Renewed")
    costs = meter.stop("the hourly look finds Key Vault's renewed version (provider CA)")
    assert costs.kv(CREATES) == 0
    assert costs.k8s("update secrets") == 1, "a renewal costs one Secret write"
    assert costs.kv(PENDING_READS) == 0, "kvcert does not poll Key Vault's own renewal"
    assert _renewal(body) > tenant.lab.now()


@pytest.mark.parametrize(
    ("field", "value", "share_left"),
    [("renewBefore", "2400h", None), ("renewBeforePercentage", 40, 0.4)],
    ids=["renewBefore 2400h", "renewBeforePercentage 40"],
)
def test_kvcert_creates_the_next_version_at_the_renew_before_point(
    tenant: Tenant, field: str, value: object, share_left: float | None
):
    body = issue(tenant, "early", **{field: value})
    nbf, exp = _lifetime(body)
    point = exp - (exp - nbf) * share_left if share_left else exp - timedelta(hours=2400)
    renewal = _renewal(body)
    assert _close(renewal, point), f"renewalTime {renewal} is not the {field} point {point}"
    assert tenant.printer_row("early")["Renewal"] == body["status"]["renewalTime"]
    old = body["status"]["certificate"]
    ready_since = condition(body, "Ready")["lastTransitionTime"]

    meter = tenant.meter()
    tenant.lab.advance_past(renewal)
    wait_new_operation(tenant, "early", body["status"]["operation"]["requestId"])
    body = wait_delivered(tenant, "early", old["version"])
    tenant.kube.wait_event("early", "Renewed")
    costs = meter.stop(f"kvcert renews at its {field} point (Self)")
    assert costs.kv(CREATES) == 1, "exactly one create for the renewal"
    assert costs.lifetime_actions == {}, "before Key Vault's own AutoRenew point"
    assert costs.k8s("update secrets") == 1, "a renewal costs one Secret write"
    status = body["status"]
    assert status["operation"]["intent"]["trigger"] == "renewBefore"
    assert status["operation"]["status"] == "completed"
    ready = condition(body, "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Issued")
    assert ready["lastTransitionTime"] == ready_since, "Ready stayed True through the renewal"
    assert condition(body, "Issuing")["status"] == "False"
    nbf, exp = _lifetime(body)
    point = exp - (exp - nbf) * share_left if share_left else exp - timedelta(hours=2400)
    assert _close(_renewal(body), point), "the next point is the new version's"
    assert tenant.kube.event_reasons("early").count("Renewed") == 1

    after = tenant.meter()
    after.quiet(3.0, "a request after the renewal was delivered")


def test_while_kvcert_renews_the_delivered_version_keeps_serving(tenant: Tenant):
    tenant.ops.set_issuer(ISSUER, "DigiCert")
    body = issue(tenant, "serving", ISSUER, renewBefore="2400h")
    old = body["status"]["certificate"]
    old_request = body["status"]["operation"]["requestId"]

    meter = tenant.meter()
    tenant.lab.advance_past(_renewal(body))
    body = tenant.kube.wait_operation(
        "serving",
        lambda op: (
            op.get("status") == "inProgress"
            and op.get("requestId") != old_request
            and (op.get("intent") or {}).get("trigger") == "renewBefore"
        ),
    )
    issuing = condition(body, "Issuing")
    ready = condition(body, "Ready")
    assert issuing["status"] == "True"
    assert (ready["status"], ready["reason"]) == ("True", "Issued"), ready
    assert old["version"] in ready["message"]
    assert condition(body, "Stalled")["status"] == "False"
    assert body["status"]["certificate"]["version"] == old["version"]
    assert secret_x5t(tenant.kube, "serving-tls") == old["x5t"]
    pending = tenant.ops.pending("serving")
    assert pending is not None
    assert pending["request_id"] == body["status"]["operation"]["requestId"]
    row = tenant.printer_row("serving")
    assert (row["Ready"], row["Status"]) == ("True", "inProgress")
    # One poll later (Key Vault's Retry-After), the renewal is still what Issuing says.
    reads = tenant.ops.count(PENDING_READS)
    tenant.advance(15)
    wait_for(lambda: tenant.ops.count(PENDING_READS) > reads, 30, "the next poll")
    meter.settle()
    polled = condition(tenant.kube.certificate("serving"), "Issuing")
    assert condition(tenant.kube.certificate("serving"), "Ready")["status"] == "True"

    tenant.ops.complete("serving")
    tenant.advance(60)  # the next poll of the operation is due
    body = wait_delivered(tenant, "serving", old["version"])
    tenant.kube.wait_event("serving", "Renewed")
    costs = meter.stop("kvcert renews at renewBefore (provider CA, polled until signed)")
    assert costs.kv(CREATES) == 1, "exactly one create for the renewal"
    assert costs.k8s("update secrets") == 1, "a renewal costs one Secret write"
    assert condition(body, "Issuing")["status"] == "False"
    assert condition(body, "Ready")["reason"] == "Issued"
    assert (issuing["reason"], polled["reason"]) == ("Renewing", "Renewing"), (
        "OPERATOR BUG: while kvcert's own renewal is in progress, Issuing's reason should be"
        f" Renewing (issue #15 §2); it was {issuing['reason']!r} when the operation was first"
        f" seen and {polled['reason']!r} after the next poll (reconcile/pending.py `waiting`"
        " says Issuing for any operation in progress)"
    )


def sign_at(ca: TestCA, csr_pem: str, not_before: datetime, days: int) -> x509.Certificate:
    """Sign the CSR's key as `ca` would, valid from `not_before` (the lab's time, which is
    ahead of the host's) for `days`; SAN from the CSR's common name."""
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    cn = str(csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)
    start = not_before - timedelta(minutes=5)
    return (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(ca.cert.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
        .sign(ca.key, hashes.SHA256())
    )


def test_a_manual_certificate_renews_with_a_new_csr_and_waits_for_a_new_chain(tenant: Tenant):
    ca = TestCA.make()
    spec = certificate_spec(
        "main", "manual-tls", "Unknown", mergeFrom={"secretName": "manual-signed"}
    )
    tenant.kube.apply_certificate("manual", {**spec, "renewBefore": "48h"})
    body = tenant.kube.wait_condition("manual", "Issuing", "True", "AwaitingMerge")
    first = body["status"]["operation"]
    leaf = sign_at(ca, first["csr"], tenant.lab.now(), days=10)
    tenant.kube.put_secret("manual-signed", {"tls.crt": ca.chain_pem(leaf)})
    tenant.advance(MERGE_POLL)  # the next poll reads mergeFrom (a GET; it is not watched)
    body = tenant.kube.wait_condition("manual", "Ready", "True", "Issued")
    tenant.meter().settle()
    body = tenant.kube.certificate("manual") or {}
    old = body["status"]["certificate"]
    renewal = _renewal(body)
    assert _close(renewal, leaf.not_valid_after_utc - timedelta(hours=48)), "renewBefore point"
    merges = tenant.ops.count(MERGES)

    meter = tenant.meter()
    tenant.lab.advance_past(renewal)
    body = tenant.kube.wait_operation(
        "manual",
        lambda op: (
            op.get("status") == "inProgress"
            and op.get("requestId") != first["requestId"]
            and op.get("csr") not in (None, first["csr"])
        ),
    )
    csr = body["status"]["operation"]["csr"]
    wait_for(
        lambda: (
            ((tenant.kube.config_map("manual-csr") or _NO_DATA).data or {})
            .get("csr.pem", "")
            .strip()
            == csr.strip()
        ),
        30,
        "the new CSR in ConfigMap manual-csr",
    )
    assert condition(body, "Ready")["status"] == "True", "the merged version keeps serving"
    assert condition(body, "Issuing")["status"] == "True"
    assert secret_x5t(tenant.kube, "manual-tls") == old["x5t"]

    # Polls come and go: the chain already merged (still in mergeFrom) is not merged again.
    reads = tenant.ops.count(PENDING_READS)
    tenant.advance(MERGE_POLL)
    wait_for(lambda: tenant.ops.count(PENDING_READS) > reads, 30, "the next poll")
    meter.settle()
    assert tenant.ops.count(MERGES) == merges, "the old chain was merged again"
    assert condition(tenant.kube.certificate("manual"), "Ready")["status"] == "True"

    renewed = sign_at(ca, csr, tenant.lab.now(), days=10)
    tenant.kube.put_secret("manual-signed", {"tls.crt": ca.chain_pem(renewed)})
    tenant.advance(MERGE_POLL)
    body = wait_delivered(tenant, "manual", old["version"])
    tenant.kube.wait_event("manual", "Renewed")
    costs = meter.stop("kvcert renews a manual certificate: new CSR, new chain merged")
    assert costs.kv(CREATES) == 1
    assert costs.kv(MERGES) == 1, "only the new chain is merged"
    assert costs.k8s("update configmaps") == 1, "the new CSR is published once"
    assert costs.k8s("create configmaps") == 0, "replaced in one write, no create met by 409"
    assert costs.k8s("update secrets") == 1, "a renewal costs one Secret write"
    served = pem_certs(secret_text(tenant.kube.secret("manual-tls"), "tls.crt"))  # type: ignore[arg-type]
    assert served[0] == renewed
