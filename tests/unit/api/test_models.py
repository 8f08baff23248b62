"""The resource models: what they accept, what they refuse and in which words."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from kvcert.api import (
    Certificate,
    CertificateInfo,
    CertificateStatus,
    ClusterKeyVault,
    Condition,
    Intent,
    InvalidResource,
    IssuerKind,
    KeyVault,
    OperationState,
    Policy,
    parse_certificate_status,
)


def certificate_body(**spec: Any) -> dict[str, Any]:
    """The Certificate of DESIGN §2 (mergeFrom only: importFrom is its alternative)."""
    base: dict[str, Any] = {
        "vaultRef": {"name": "main"},
        "certificateName": "web",
        "secretName": "web-tls",
        "policy": {
            "issuer": {"name": "Self"},
            "subject": "CN=web.example.com",
            "dnsNames": ["web.example.com"],
            "validityMonths": 12,
            "key": {"type": "EC", "curve": "P-256", "exportable": True, "reuseKey": False},
            "contentType": "application/x-pem-file",
            "keyUsage": ["digitalSignature", "keyEncipherment"],
            "ekus": ["1.3.6.1.5.5.7.3.1"],
            "lifetimeActions": [{"trigger": {"lifetimePercentage": 80}, "action": "AutoRenew"}],
        },
        "mergeFrom": {"secretName": "web-signed"},
        "cancel": False,
        "deletionPolicy": "Retain",
    }
    base.update(spec)
    return {
        "apiVersion": "kvcert.io/v1alpha1",
        "kind": "Certificate",
        "metadata": {"name": "web", "namespace": "team-a", "uid": "u1", "generation": 3},
        "spec": {k: v for k, v in base.items() if v is not None},
    }


def with_policy(**policy: Any) -> dict[str, Any]:
    body = certificate_body()
    body["spec"]["policy"].update(policy)
    body["spec"]["policy"] = {k: v for k, v in body["spec"]["policy"].items() if v is not None}
    return body


def vault_body(
    auth: dict[str, Any], url: str = "https://kv.example.vault.azure.net"
) -> dict[str, Any]:
    return {"metadata": {"name": "main"}, "spec": {"url": url, "auth": auth}}


WORKLOAD = {"workloadIdentity": {"clientId": "c", "tenantId": "t"}}
TOKEN = {"token": {"secretRef": {"name": "vault-token", "key": "token"}}}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(certificate_body(), id="accepts the DESIGN example"),
        pytest.param(
            certificate_body(mergeFrom=None, policy=None, importFrom={"secretName": "web-pfx"}),
            id="accepts an import without a policy",
        ),
        pytest.param(with_policy(key={"type": "RSA", "size": 4096}), id="accepts RSA 4096"),
        pytest.param(
            with_policy(key={"type": "EC-HSM", "curve": "P-256K"}),
            id="accepts an HSM EC key on P-256K",
        ),
        pytest.param(
            with_policy(
                issuer={
                    "name": "mydigicert",
                    "certificateType": "OV-SSL",
                    "certificateTransparency": False,
                }
            ),
            id="accepts a configured issuer with its options",
        ),
        pytest.param(
            with_policy(subject=None, emails=["a@example.com"], dnsNames=None),
            id="accepts a policy with only a SAN",
        ),
        pytest.param(
            with_policy(
                lifetimeActions=[{"trigger": {"daysBeforeExpiry": 30}, "action": "EmailContacts"}]
            ),
            id="accepts days before expiry with e-mail contacts",
        ),
        pytest.param(certificate_body(certificateName=None), id="defaults the name to metadata"),
        pytest.param(
            certificate_body(
                secretTemplate={"labels": {"team": "web"}, "annotations": {"a.io/b": "c"}},
                additionalOutputFormats=[
                    {"type": "CombinedPEM"},
                    {"type": "DER"},
                    {"type": "PKCS12", "passwordSecretRef": {"name": "p12", "key": "password"}},
                ],
            ),
            id="accepts a secretTemplate and every additional output format",
        ),
    ],
)
def test_valid_certificates_parse(body: dict[str, Any]) -> None:
    Certificate.from_body(body)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        pytest.param(
            with_policy(key={"type": "RSA", "curve": "P-256"}),
            "curve applies to EC keys only",
            id="refuses a curve on an RSA key",
        ),
        pytest.param(
            with_policy(key={"type": "EC", "size": 2048}),
            "size applies to RSA keys only",
            id="refuses a size on an EC key",
        ),
        pytest.param(
            with_policy(key={"type": "RSA", "size": 1024}),
            "spec.policy.key.size",
            id="refuses RSA 1024",
        ),
        pytest.param(
            with_policy(key={"type": "EC", "curve": "P-999"}),
            "spec.policy.key.curve",
            id="refuses an unknown curve",
        ),
        pytest.param(
            with_policy(key={"type": "DSA"}),
            "spec.policy.key.type",
            id="refuses an unknown key type",
        ),
        pytest.param(
            with_policy(contentType="text/plain"),
            "spec.policy.contentType",
            id="refuses an unknown content type",
        ),
        pytest.param(
            with_policy(validityMonths=0),
            "spec.policy.validityMonths",
            id="refuses zero months of validity",
        ),
        pytest.param(
            with_policy(validityMonths=1201),
            "spec.policy.validityMonths",
            id="refuses more than 1200 months",
        ),
        pytest.param(
            with_policy(
                lifetimeActions=[{"trigger": {"lifetimePercentage": 100}, "action": "AutoRenew"}]
            ),
            "lifetimePercentage",
            id="refuses a lifetime percentage of 100",
        ),
        pytest.param(
            with_policy(
                lifetimeActions=[
                    {
                        "trigger": {"lifetimePercentage": 80, "daysBeforeExpiry": 3},
                        "action": "AutoRenew",
                    }
                ]
            ),
            "exactly one of lifetimePercentage or daysBeforeExpiry",
            id="refuses a trigger with both thresholds",
        ),
        pytest.param(
            with_policy(lifetimeActions=[{"trigger": {}, "action": "AutoRenew"}]),
            "exactly one of lifetimePercentage or daysBeforeExpiry",
            id="refuses a trigger with no threshold",
        ),
        pytest.param(
            with_policy(
                lifetimeActions=[{"trigger": {"lifetimePercentage": 80}, "action": "Renew"}]
            ),
            "action",
            id="refuses an unknown lifetime action",
        ),
        pytest.param(
            with_policy(ekus=["serverAuth"]),
            "spec.policy.ekus",
            id="refuses an EKU that is not an OID",
        ),
        pytest.param(
            with_policy(subject=None, dnsNames=None),
            "a subject or at least one of dnsNames",
            id="refuses a nameless policy",
        ),
        pytest.param(
            with_policy(issuer={"name": ""}),
            "spec.policy.issuer.name",
            id="refuses an empty issuer name",
        ),
        pytest.param(
            certificate_body(deletionPolicy="Purge"),
            "spec.deletionPolicy",
            id="refuses an unknown deletion policy",
        ),
        pytest.param(
            certificate_body(vaultRef={"name": "main", "kind": "Vault"}),
            "spec.vaultRef.kind",
            id="refuses an unknown vault kind",
        ),
        pytest.param(
            certificate_body(certificateName="web_tls"),
            "spec.certificateName",
            id="refuses an underscore in the Key Vault name",
        ),
        pytest.param(
            certificate_body(certificateName="a" * 128),
            "spec.certificateName",
            id="refuses a Key Vault name of 128 characters",
        ),
        pytest.param(
            certificate_body(importFrom={"secretName": "web-pfx"}),
            "mergeFrom and importFrom are mutually exclusive",
            id="refuses mergeFrom with importFrom",
        ),
        pytest.param(
            certificate_body(policy=None, mergeFrom=None),
            "policy is required unless importFrom is set",
            id="refuses a Certificate with neither policy nor importFrom",
        ),
        pytest.param(
            certificate_body(secretName="Web_TLS"),
            "spec.secretName",
            id="refuses a Secret name Kubernetes would refuse",
        ),
        pytest.param(
            certificate_body(vaultRef=None),
            "spec.vaultRef",
            id="refuses a Certificate without a vault",
        ),
        pytest.param(
            certificate_body(secretTemplate={"labels": {"kvcert.io/certificate": "x"}}),
            "secretTemplate may not set labels or annotations under kvcert.io/",
            id="refuses a secretTemplate label under kvcert.io/",
        ),
        pytest.param(
            certificate_body(secretTemplate={"annotations": {"kvcert.io/x5t": "x"}}),
            "secretTemplate may not set labels or annotations under kvcert.io/",
            id="refuses a secretTemplate annotation under kvcert.io/",
        ),
        pytest.param(
            certificate_body(additionalOutputFormats=[{"type": "PKCS12"}]),
            "passwordSecretRef is required for PKCS12",
            id="refuses a PKCS12 keystore without a password Secret",
        ),
        pytest.param(
            certificate_body(
                additionalOutputFormats=[
                    {"type": "DER", "passwordSecretRef": {"name": "p", "key": "k"}}
                ]
            ),
            "passwordSecretRef is required for PKCS12 and allowed only there",
            id="refuses a password Secret on a format without one",
        ),
        pytest.param(
            certificate_body(additionalOutputFormats=[{"type": "DER"}, {"type": "DER"}]),
            "additionalOutputFormats may list each type once",
            id="refuses a format listed twice",
        ),
        pytest.param(
            certificate_body(additionalOutputFormats=[{"type": "JKS"}]),
            "spec.additionalOutputFormats.0.type",
            id="refuses an unknown format",
        ),
    ],
)
def test_invalid_certificates_are_refused_in_words(body: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidResource) as caught:
        Certificate.from_body(body)
    assert words in caught.value.message
    assert caught.value.kind == "Certificate"


def test_a_metadata_name_unfit_for_key_vault_asks_for_certificate_name() -> None:
    body = certificate_body(certificateName=None)
    body["metadata"]["name"] = "web.example.com"
    with pytest.raises(InvalidResource, match=r"set spec\.certificateName"):
        Certificate.from_body(body)


def test_error_messages_never_quote_the_value_given() -> None:
    body = certificate_body(certificateName="hunter2_SECRET_VALUE")
    body["spec"]["policy"]["validityMonths"] = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"
    with pytest.raises(InvalidResource) as caught:
        Certificate.from_body(body)
    assert "SECRET_VALUE" not in str(caught.value)
    assert "MIIEvQ" not in str(caught.value)


def test_camel_case_round_trips_and_defaults_are_filled() -> None:
    body = certificate_body()
    spec = Certificate.from_body(body).spec
    wire = spec.to_wire()
    assert wire["policy"]["dnsNames"] == ["web.example.com"]
    assert wire["policy"]["key"]["reuseKey"] is False
    assert wire["vaultRef"] == {"name": "main", "kind": "KeyVault"}
    again = Certificate.from_body({**copy.deepcopy(body), "spec": wire}).spec
    assert again == spec


def test_models_accept_python_names_too() -> None:
    policy = Policy(issuer={"name": "Self"}, dns_names=["a.example.com"])  # type: ignore[arg-type]
    assert policy.to_wire()["dnsNames"] == ["a.example.com"]
    assert policy.content_type == "application/x-pkcs12"


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        pytest.param("Self", IssuerKind.SELF, id="Self signs itself"),
        pytest.param("self", IssuerKind.SELF, id="issuer names are case-insensitive"),
        pytest.param("Unknown", IssuerKind.UNKNOWN, id="Unknown is the manual issuer"),
        pytest.param("mydigicert", IssuerKind.CONFIGURED, id="any other name is configured"),
    ],
)
def test_issuer_kind(name: str, kind: IssuerKind) -> None:
    assert with_issuer(name).kind is kind


def with_issuer(name: str) -> Any:
    return Certificate.from_body(with_policy(issuer={"name": name})).spec.policy.issuer  # type: ignore[union-attr]


def test_status_dumps_camel_case_without_nulls() -> None:
    when = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    status = CertificateStatus(
        observed_generation=2,
        conditions=[
            Condition(
                type="Ready",
                status="True",
                reason="Issued",
                last_transition_time=when,
                observed_generation=2,
            )
        ],
        operation=OperationState(
            request_id="r1",
            status="completed",
            cancellation_requested=False,
            intent=Intent(generation=2, marker="m", action="create", recorded_at=when),
        ),
        certificate=CertificateInfo(version="v1", x5t="abc", not_after=when),
    )
    wire = status.model_dump(by_alias=True, exclude_none=True, mode="json")
    assert wire == status.to_wire()
    assert wire["conditions"][0] == {
        "type": "Ready",
        "status": "True",
        "reason": "Issued",
        "message": "",
        "lastTransitionTime": "2026-11-22T12:00:00Z",
        "observedGeneration": 2,
    }
    assert wire["operation"]["requestId"] == "r1"
    assert wire["operation"]["intent"]["recordedAt"] == "2026-11-22T12:00:00Z"
    assert wire["certificate"] == {
        "version": "v1",
        "x5t": "abc",
        "notAfter": "2026-11-22T12:00:00Z",
    }
    assert parse_certificate_status(wire) == status


def test_an_unreadable_status_is_treated_as_empty() -> None:
    assert parse_certificate_status({"conditions": "garbage"}) == CertificateStatus()


@pytest.mark.parametrize(
    "auth",
    [
        pytest.param(WORKLOAD, id="accepts workload identity"),
        pytest.param({"managedIdentity": {}}, id="accepts a system-assigned managed identity"),
        pytest.param(
            {
                "clientSecret": {
                    "tenantId": "t",
                    "clientId": "c",
                    "secretRef": {"name": "sp", "key": "secret"},
                }
            },
            id="accepts a client secret",
        ),
        pytest.param(TOKEN, id="accepts a static token for the local vault"),
    ],
)
def test_vault_auth_methods(auth: dict[str, Any]) -> None:
    vault = KeyVault.from_body(vault_body(auth))
    assert vault.spec.auth.method == next(iter(auth))
    assert ClusterKeyVault.from_body(vault_body(auth)).KIND == "ClusterKeyVault"


@pytest.mark.parametrize(
    ("body", "words"),
    [
        pytest.param(
            vault_body({**WORKLOAD, **TOKEN}),
            "exactly one of",
            id="refuses two authentication methods",
        ),
        pytest.param(vault_body({}), "exactly one of", id="refuses no authentication method"),
        pytest.param(
            vault_body(TOKEN, url="http://kv.local"),
            "spec.url",
            id="refuses a vault over plain http",
        ),
    ],
)
def test_invalid_vaults_are_refused(body: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidResource) as caught:
        KeyVault.from_body(body)
    assert words in caught.value.message
