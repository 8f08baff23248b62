"""Asking for a change after the first issuance (issue #15 §3-§4): the kvcert.io/renew
annotation (one renewal per value), spec edits Key Vault applies in place (tags,
lifetimeActions: a PATCH, no new version) and spec edits that need a new version (subject, SANs,
key, validity, EKUs, key usage: exactly one create, the old Secret serving until then).

Runs under the `documented` profile only: none of this differs between the vault's profiles
(DESIGN §3.2: only pending-operation states and cancel wording do).
"""

from __future__ import annotations

from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.integration.operator.harness import CREATES, secret_text, wait_for
from tests.integration.operator.testca import pem_certs
from tests.integration.operator.timetravel import (
    REACTION,
    Tenant,
    condition,
    external_cluster,
    issue,
    lab_fixtures,
    parse_time,
    secret_x5t,
    wait_delivered,
    wait_handled,
    wait_new_operation,
)

pytestmark = external_cluster
ISSUER = "mydigicert"
RENEW = "kvcert.io/renew"
PATCH_TAGS = "PATCH /certificates/{name}/"
PATCH_POLICY = "PATCH /certificates/{name}/policy"


lab, operator, tenant = lab_fixtures("lifecycle-changes", ("documented",))


def _leaf(tenant: Tenant, secret: str) -> x509.Certificate:
    found = tenant.kube.secret(secret)
    assert found is not None
    return pem_certs(secret_text(found, "tls.crt"))[0]


def test_the_renew_annotation_makes_one_renewal_per_value(tenant: Tenant):
    body = issue(tenant, "asked")
    old = body["status"]["certificate"]
    ready_since = condition(body, "Ready")["lastTransitionTime"]

    meter = tenant.meter()
    tenant.annotate("asked", {RENEW: "r1"})
    wait_handled(tenant, "asked", "renew", "r1")
    wait_new_operation(tenant, "asked", body["status"]["operation"]["requestId"])
    body = wait_delivered(tenant, "asked", old["version"])
    tenant.kube.wait_event("asked", "Renewed")
    costs = meter.stop("kvcert.io/renew: one renewal (Self)")
    assert costs.kv(CREATES) == 1, "exactly one create per renew value"
    assert costs.k8s("update secrets") == 1, "a renewal costs one Secret write"
    assert costs.lifetime_actions == {}
    assert body["status"]["operation"]["intent"]["trigger"] == "renew"
    ready = condition(body, "Ready")
    assert (ready["status"], ready["reason"], ready["lastTransitionTime"]) == (
        "True",
        "Issued",
        ready_since,
    ), "Ready stayed True through the renewal"

    # The same value again (another annotation changes beside it): nothing more.
    again = tenant.meter()
    tenant.annotate("asked", {RENEW: "r1", "example.com/touched": "yes"})
    again.quiet(5.0, "a request after the same renew value was set again")
    assert (
        tenant.status("asked")["certificate"]["version"] == body["status"]["certificate"]["version"]
    )


def test_new_tags_are_applied_in_place_without_a_new_version(tenant: Tenant):
    body = issue(tenant, "tagged")
    old = body["status"]["certificate"]
    applied = body["status"].get("appliedUpdate")

    meter = tenant.meter()
    tenant.kube.patch_certificate("tagged", {"spec": {"tags": {"team": "payments"}}})
    tenant.kube.wait_event("tagged", "Updated", timeout=REACTION)
    body = wait_for(
        lambda: (
            (b := tenant.kube.certificate("tagged"))
            and b["status"].get("appliedUpdate") != applied
            and b["status"].get("observedGeneration") == 2
            and b
        ),
        REACTION,
        "status.appliedUpdate to change",
    )
    costs = meter.stop("spec.tags changed: applied in place")
    assert costs.kv(PATCH_TAGS) == 1, "one PATCH of the certificate's tags"
    assert costs.kv(CREATES) == 0, "no new version for new tags"
    assert costs.k8s("update secrets") == 0
    assert costs.k8s("create events") == 1
    vault_cert = tenant.ops.certificate("tagged")
    assert vault_cert is not None
    assert vault_cert["tags"]["team"] == "payments"
    assert vault_cert["tags"]["managed-by"] == "kvcert", "kvcert's own tags are kept"
    assert vault_cert["x5t"] == old["x5t"]
    assert body["status"]["certificate"] == old
    assert condition(body, "Ready")["status"] == "True"
    assert secret_x5t(tenant.kube, "tagged-tls") == old["x5t"]


def test_new_lifetime_actions_are_applied_in_place_and_key_vault_renews_by_them(tenant: Tenant):
    body = issue(tenant, "actions")
    old = body["status"]["certificate"]
    nbf, exp = parse_time(old["notBefore"]), parse_time(old["notAfter"])
    assert nbf is not None
    assert exp is not None

    meter = tenant.meter()
    actions = [{"trigger": {"lifetimePercentage": 50}, "action": "AutoRenew"}]
    tenant.kube.patch_certificate("actions", {"spec": {"policy": {"lifetimeActions": actions}}})
    tenant.kube.wait_event("actions", "Updated", timeout=REACTION)
    midway = nbf + (exp - nbf) * 0.5
    body = wait_for(
        lambda: (
            (b := tenant.kube.certificate("actions"))
            and parse_time(b["status"].get("renewalTime"))
            != parse_time(body["status"]["renewalTime"])
            and b
        ),
        REACTION,
        "renewalTime to follow the new lifetime action",
    )
    costs = meter.stop("spec.policy.lifetimeActions changed: applied in place")
    assert costs.kv(PATCH_POLICY) == 1, "one PATCH of the policy"
    assert costs.kv(PATCH_TAGS) == 0, "the tags did not change: not sent"
    assert costs.kv(CREATES) == 0, "no new version for new lifetime actions"
    assert costs.k8s("update secrets") == 0
    renewal = parse_time(body["status"]["renewalTime"])
    assert renewal is not None
    assert abs((renewal - midway).total_seconds() - 600) <= 1.5, "50 % + 10 min"
    policy = tenant.ops.ok("GET", "/certificates/actions/policy")
    assert [a["trigger"] for a in policy["lifetime_actions"]] == [{"lifetime_percentage": 50}]

    # Key Vault now renews at 50 %, and kvcert delivers it at the new renewalTime.
    meter = tenant.meter()
    tenant.lab.advance_past(renewal)
    body = wait_delivered(tenant, "actions", old["version"])
    costs = meter.stop("Key Vault renews by the updated lifetime action")
    assert costs.lifetime_actions == {"AutoRenew": 1}
    assert costs.kv(CREATES) == 0
    assert costs.k8s("update secrets") == 1


def _subject(leaf: x509.Certificate) -> str:
    return str(leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def _days(leaf: x509.Certificate) -> float:
    return (leaf.not_valid_after_utc - leaf.not_valid_before_utc).days


def _ekus(leaf: x509.Certificate) -> list[x509.ObjectIdentifier]:
    try:
        return list(leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return []


def _usage(leaf: x509.Certificate) -> tuple[bool, bool]:
    """(digitalSignature, keyEncipherment) of the leaf's key usage (none: both False)."""
    try:
        usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return (False, False)
    return (usage.digital_signature, usage.key_encipherment)


CHANGES: list[tuple[str, dict[str, Any], Any]] = [
    (
        "subject",
        {"subject": "CN=new.example.com"},
        lambda leaf: _subject(leaf) == "new.example.com",
    ),
    (
        "key",
        {"key": {"type": "RSA", "size": 2048, "curve": None}},
        lambda leaf: isinstance(leaf.public_key(), rsa.RSAPublicKey),
    ),
    ("validityMonths", {"validityMonths": 3}, lambda leaf: _days(leaf) < 100),
    (
        "ekus",
        {"ekus": ["1.3.6.1.5.5.7.3.2"]},
        lambda leaf: _ekus(leaf) == [ExtendedKeyUsageOID.CLIENT_AUTH],
    ),
    (
        "keyUsage",
        {"keyUsage": ["keyEncipherment"]},
        lambda leaf: _usage(leaf) == (False, True),
    ),
]


@pytest.mark.parametrize(
    ("field", "change", "shows"), CHANGES, ids=[f"{c[0]} changed" for c in CHANGES]
)
def test_a_change_that_needs_a_new_version_makes_exactly_one_create(
    tenant: Tenant, field: str, change: dict[str, Any], shows: Any
):
    body = issue(tenant, "reissued")
    old = body["status"]["certificate"]
    assert not shows(_leaf(tenant, "reissued-tls")), f"the first version already has {change}"

    meter = tenant.meter()
    tenant.kube.patch_certificate("reissued", {"spec": {"policy": change}})
    wait_new_operation(tenant, "reissued", body["status"]["operation"]["requestId"])
    body = wait_delivered(tenant, "reissued", old["version"])
    costs = meter.stop(f"spec.policy.{field} changed: a new version (Self)")
    assert costs.kv(CREATES) == 1, "exactly one create for the edit"
    assert costs.kv(PATCH_POLICY) == 0
    assert costs.k8s("update secrets") == 1
    assert shows(_leaf(tenant, "reissued-tls")), f"the new version does not have {change}"
    assert condition(body, "Ready")["reason"] == "Issued"
    assert body["status"]["observedGeneration"] == 2
    assert body["status"]["operation"]["intent"]["generation"] == 2


def test_while_a_new_san_is_being_issued_the_old_version_keeps_serving(tenant: Tenant):
    tenant.ops.set_issuer(ISSUER, "DigiCert")
    body = issue(tenant, "renamed", ISSUER)
    old = body["status"]["certificate"]

    meter = tenant.meter()
    names = ["app.example.com", "www.example.com"]
    tenant.kube.patch_certificate("renamed", {"spec": {"policy": {"dnsNames": names}}})
    body = tenant.kube.wait_operation(
        "renamed",
        lambda op: (
            op.get("status") == "inProgress"
            and op.get("requestId") != body["status"]["operation"]["requestId"]
        ),
        timeout=REACTION,
    )
    ready = condition(body, "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Issued"), ready
    assert condition(body, "Issuing")["status"] == "True"
    assert body["status"]["certificate"]["version"] == old["version"]
    assert secret_x5t(tenant.kube, "renamed-tls") == old["x5t"]
    served = _leaf(tenant, "renamed-tls").extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert served.value.get_values_for_type(x509.DNSName) == ["app.example.com"]

    tenant.ops.complete("renamed")
    tenant.advance(60)  # the next poll of the operation is due
    body = wait_delivered(tenant, "renamed", old["version"])
    costs = meter.stop("spec.policy.dnsNames changed: a new version (provider CA)")
    assert costs.kv(CREATES) == 1, "exactly one create for the edit"
    assert costs.k8s("update secrets") == 1
    sans = _leaf(tenant, "renamed-tls").extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert sorted(sans.value.get_values_for_type(x509.DNSName)) == names
    assert condition(body, "Issuing")["status"] == "False"
    assert "Renewed" in tenant.kube.event_reasons("renamed")
