"""The API server itself rejects invalid Certificates: the CRDs' schema and CEL rules."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from tests.integration.operator.harness import Kube

VALID: dict[str, Any] = {
    "vaultRef": {"name": "main"},
    "secretName": "web-tls",
    "policy": {"issuer": {"name": "Self"}, "subject": "CN=web"},
}


def _rejected(kube: Kube, name: str, spec: dict[str, Any]) -> str:
    with pytest.raises(ApiException) as raised:
        kube.apply_certificate(name, spec)
    assert raised.value.status == 422, raised.value.body
    return str(raised.value.body)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param(
            {**VALID, "mergeFrom": {"secretName": "a"}, "importFrom": {"secretName": "b"}},
            "mutually exclusive",
            id="mergeFrom and importFrom together",
        ),
        pytest.param(
            {"vaultRef": {"name": "main"}, "secretName": "web-tls"},
            "policy is required",
            id="neither a policy nor importFrom",
        ),
        pytest.param(
            {**VALID, "deletionPolicy": "Sometimes"}, "deletionPolicy", id="unknown deletionPolicy"
        ),
        pytest.param(
            {**VALID, "certificateName": "not_valid!"}, "certificateName", id="bad Key Vault name"
        ),
        pytest.param({**VALID, "secretName": None}, "secretName", id="no secretName"),
        pytest.param(
            {**VALID, "secretTemplate": {"labels": {"kvcert.io/certificate": "x"}}},
            "secretTemplate may not set labels or annotations under kvcert.io/",
            id="a secretTemplate key under kvcert.io/",
        ),
        pytest.param(
            {**VALID, "additionalOutputFormats": [{"type": "PKCS12"}]},
            "passwordSecretRef is required for PKCS12 and allowed only there",
            id="a PKCS12 output without its password",
        ),
        pytest.param(
            {
                **VALID,
                "additionalOutputFormats": [
                    {"type": "DER", "passwordSecretRef": {"name": "p", "key": "k"}}
                ],
            },
            "passwordSecretRef is required for PKCS12 and allowed only there",
            id="a password on another output",
        ),
        pytest.param(
            {**VALID, "additionalOutputFormats": [{"type": "DER"}, {"type": "DER"}]},
            "additionalOutputFormats may list each type once",
            id="an output listed twice",
        ),
        pytest.param(
            {**VALID, "additionalOutputFormats": [{"type": "JKS"}]},
            "additionalOutputFormats",
            id="an unknown output type",
        ),
    ],
)
def test_the_api_server_rejects_an_invalid_certificate(kube: Kube, spec, message):
    assert message in _rejected(kube, "bad", {k: v for k, v in spec.items() if v is not None})


def test_certificate_name_cannot_change_once_set(kube: Kube):
    kube.apply_certificate("web", {**VALID, "certificateName": "web-one"})
    with pytest.raises(ApiException) as raised:
        kube.patch_certificate("web", {"spec": {"certificateName": "web-two"}})
    assert raised.value.status == 422
    assert "certificateName is immutable" in str(raised.value.body)
    kube.delete_certificate("web")


def test_certificate_name_cannot_be_added_or_removed_later(kube: Kube):
    kube.apply_certificate("web", VALID)
    with pytest.raises(ApiException) as added:
        kube.patch_certificate("web", {"spec": {"certificateName": "someone-elses"}})
    assert added.value.status == 422
    assert "certificateName is immutable" in str(added.value.body)
    kube.delete_certificate("web")
    kube.apply_certificate("web-b", {**VALID, "certificateName": "web-one"})
    with pytest.raises(ApiException) as removed:
        kube.patch_certificate("web-b", {"spec": {"certificateName": None}})
    assert removed.value.status == 422
    kube.delete_certificate("web-b")


def test_a_keyvault_needs_exactly_one_credential(kube: Kube):
    body = {
        "apiVersion": "kvcert.io/v1alpha1",
        "kind": "KeyVault",
        "metadata": {"name": "two"},
        "spec": {
            "url": "https://kv.example.vault.azure.net",
            "auth": {
                "managedIdentity": {},
                "token": {"secretRef": {"name": "t", "key": "token"}},
            },
        },
    }
    with pytest.raises(ApiException) as raised:
        kube.custom.create_namespaced_custom_object(
            "kvcert.io", "v1alpha1", kube.namespace, "keyvaults", body
        )
    assert raised.value.status == 422


def _policy(**fields: Any) -> dict[str, Any]:
    return {**VALID, "policy": {**VALID["policy"], **fields}}


def _renew(**trigger: int) -> list[dict[str, Any]]:
    return [{"trigger": trigger, "action": "AutoRenew"}]


@pytest.mark.parametrize(
    "subject",
    [
        pytest.param("CN=TestCert, O=TenantId", id="a space after the comma"),
        pytest.param(
            'CN=a.example,O="Field Services, Inc.",L=Dallas,S=Texas,C=US',
            id="a quoted value with a comma, and S for the state",
        ),
        pytest.param("CN=a; ST=Texas; E=admin@a.example", id="semicolons, ST and E"),
        pytest.param("CN=a+OU=b, O=Example\\, Inc.", id="a multi-valued RDN, an escaped comma"),
        pytest.param("cn = a , OID.2.5.4.10 = b", id="lower-case keyword and a dotted OID"),
    ],
)
def test_the_api_server_accepts_subjects_as_key_vault_writes_them(kube: Kube, subject: str):
    kube.apply_certificate("subject", _policy(subject=subject))
    kube.delete_certificate("subject")


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        pytest.param({"subject": "not a distinguished name"}, "X.500 name", id="no attribute"),
        pytest.param({"subject": "CN=a,"}, "X.500 name", id="a trailing separator"),
        pytest.param({"subject": "FOO=bar"}, "X.500 name", id="an unknown attribute keyword"),
        pytest.param({"subject": 'CN="unterminated'}, "X.500 name", id="an unterminated quote"),
        pytest.param(
            {"lifetimeActions": _renew(lifetimePercentage=80) * 2},
            "lifetimeActions",
            id="two lifetime actions",
        ),
        pytest.param(
            {"lifetimeActions": _renew(lifetimePercentage=100)},
            "lifetimePercentage",
            id="lifetime percentage 100",
        ),
        pytest.param(
            {"lifetimeActions": _renew(lifetimePercentage=0)},
            "lifetimePercentage",
            id="lifetime percentage 0",
        ),
        pytest.param(
            {"validityMonths": 1, "lifetimeActions": _renew(daysBeforeExpiry=28)},
            "27 x validityMonths",
            id="days before expiry over 27 x validityMonths",
        ),
        pytest.param(
            {"lifetimeActions": _renew(daysBeforeExpiry=325)},
            "27 x validityMonths",
            id="days before expiry over 27 x the default 12 months",
        ),
        pytest.param({"validityMonths": 0}, "validityMonths", id="zero validity months"),
        pytest.param({"validityMonths": 1201}, "validityMonths", id="validity over 1200 months"),
        pytest.param({"key": {"type": "RSA", "size": 1024}}, "size", id="RSA 1024"),
        pytest.param({"key": {"type": "EC", "size": 2048}}, "size", id="a size on an EC key"),
        pytest.param({"key": {"type": "EC", "curve": "P-192"}}, "curve", id="an unknown curve"),
        pytest.param({"key": {"type": "oct"}}, "type", id="a symmetric key type"),
        pytest.param({"keyUsage": ["everything"]}, "keyUsage", id="an unknown key usage"),
        pytest.param({"ekus": ["serverAuth"]}, "ekus", id="an EKU that is not an OID"),
        pytest.param({"ekus": ["1.40.1"]}, "ekus", id="an OID that cannot be encoded"),
        pytest.param({"contentType": "text/plain"}, "contentType", id="an unknown content type"),
        pytest.param({"issuer": {"name": "my issuer"}}, "issuer", id="an invalid issuer name"),
        pytest.param({"dnsNames": ["a b.example"]}, "dnsNames", id="a DNS name with a space"),
    ],
)
def test_the_api_server_rejects_what_key_vault_rejects_in_a_policy(
    kube: Kube, policy: dict[str, Any], message: str
):
    assert message in _rejected(kube, "bad-policy", _policy(**policy))


def test_days_before_expiry_may_reach_27_x_validity_months(kube: Kube):
    spec = _policy(validityMonths=2, lifetimeActions=_renew(daysBeforeExpiry=54))
    kube.apply_certificate("edge", spec)
    kube.delete_certificate("edge")
