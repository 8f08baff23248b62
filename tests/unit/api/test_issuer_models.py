"""CertificateIssuer / ClusterCertificateIssuer models: what is accepted, what is refused, and
that the generated CRDs carry the same rules as CEL (issue #19 §2)."""

from __future__ import annotations

from typing import Any

import pytest

from kvcert.api.base import InvalidResource
from kvcert.api.crdgen import CERTIFICATEISSUER, CLUSTERCERTIFICATEISSUER, build_crd
from kvcert.api.issuer import (
    CertificateIssuer,
    ClusterCertificateIssuer,
    IssuerDeletionPolicy,
    IssuerProvider,
    parse_issuer,
)


def body(name: str = "mydigicert", **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "team-a", "uid": "u1", "generation": 1},
        "spec": {"vaultRef": {"name": "main"}, "provider": "DigiCert", **spec},
    }


def test_the_defaults_and_the_name_in_key_vault() -> None:
    issuer = CertificateIssuer.from_body(body())
    assert issuer.issuer_name == "mydigicert"
    assert issuer.spec.provider is IssuerProvider.DIGICERT
    assert issuer.spec.enabled is True
    assert issuer.spec.adopt is False
    assert issuer.spec.deletion_policy is IssuerDeletionPolicy.RETAIN
    named = CertificateIssuer.from_body(body(issuerName="DigiCert-Prod"))
    assert named.issuer_name == "DigiCert-Prod"


def test_every_field_in_key_vaults_terms_round_trips() -> None:
    spec = {
        "vaultRef": {"name": "main"},
        "issuerName": "gs",
        "provider": "GlobalSign",
        "accountId": "acct",
        "passwordSecretRef": {"name": "gs-account", "key": "password"},
        "organizationId": "org-1",
        "administrators": [
            {"firstName": "Ada", "lastName": "L", "email": "ada@example.com", "phone": "1"}
        ],
        "enabled": False,
        "deletionPolicy": "Delete",
        "adopt": True,
    }
    issuer = CertificateIssuer.from_body({"metadata": {"name": "x"}, "spec": spec})
    assert issuer.spec.to_wire() == spec


@pytest.mark.parametrize(
    ("spec", "name", "where"),
    [
        ({"provider": "Acme"}, "ok", "spec.provider"),
        ({"issuerName": "Self"}, "ok", "Key Vault's own issuers"),
        ({"issuerName": "bad_name"}, "ok", "spec.issuerName"),
        ({}, "unknown", "spec.issuerName"),
        ({"passwordSecretRef": {"name": "s", "key": "k", "namespace": "o"}}, "ok", "namespace"),
        ({"deletionPolicy": "DeletePending"}, "ok", "spec.deletionPolicy"),
        ({"administrators": [{}] * 17}, "ok", "spec.administrators"),
    ],
    ids=[
        "an unknown provider is refused",
        "Self is Key Vault's own issuer",
        "an issuerName Key Vault cannot hold is refused",
        "a metadata.name that is a built-in issuer needs an issuerName",
        "a namespaced issuer reads only Secrets of its own namespace",
        "DeletePending is a Certificate's policy only",
        "at most sixteen administrators",
    ],
)
def test_invalid_specs_are_refused_naming_the_field(
    spec: dict[str, Any], name: str, where: str
) -> None:
    with pytest.raises(InvalidResource) as raised:
        CertificateIssuer.from_body(body(name, **spec))
    assert where in raised.value.message


def test_the_cluster_issuer_may_name_the_password_secrets_namespace() -> None:
    raw = body(passwordSecretRef={"name": "s", "key": "k", "namespace": "platform"})
    issuer = parse_issuer(raw, cluster=True)
    assert isinstance(issuer, ClusterCertificateIssuer)
    assert issuer.spec.password_secret_ref is not None
    assert issuer.spec.password_secret_ref.namespace == "platform"


def test_the_ownership_record_names_its_vault_on_the_wire() -> None:
    raw = {**body(), "status": {"managed": True, "vaultURL": "https://kv.example:8443"}}
    status = CertificateIssuer.from_body(raw).status
    assert status.vault_url == "https://kv.example:8443"
    assert status.to_wire() == {"managed": True, "vaultURL": "https://kv.example:8443"}


def test_a_status_of_another_shape_is_read_as_empty() -> None:
    raw = {**body(), "status": {"managed": "perhaps", "conditions": "no"}}
    assert CertificateIssuer.from_body(raw).status.managed is None


@pytest.mark.parametrize("crd", [CERTIFICATEISSUER, CLUSTERCERTIFICATEISSUER], ids=lambda c: c.kind)
def test_the_crd_carries_the_rules_as_cel(crd: Any) -> None:
    built = build_crd(crd)
    schema = built["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    rules = {rule["message"]: rule["rule"] for rule in schema["x-kubernetes-validations"]}
    messages = set(rules)
    assert "issuerName is immutable" in messages
    # Ownership is of an issuer in one vault: another vault is another resource (#19 review).
    immutable = "vaultRef is immutable: create a new resource for another vault"
    assert rules[immutable] == "self.vaultRef == oldSelf.vaultRef"
    namespaced = any("passwordSecretRef.namespace" in message for message in messages)
    assert namespaced is (crd.scope == "Namespaced")
    assert schema["properties"]["provider"]["enum"] == [p.value for p in IssuerProvider]
    assert built["spec"]["scope"] == (
        "Cluster" if crd is CLUSTERCERTIFICATEISSUER else "Namespaced"
    )
