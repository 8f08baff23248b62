"""Imports are validated as Key Vault validates them, and every request field of import, create,
merge, update and policy update is honoured or refused with Key Vault's error (issue 14, kind 1).

Nothing a refused request carries is stored: each refusal is followed by a read that finds
nothing (or the state from before).
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from azure.core.exceptions import HttpResponseError
from azure.keyvault.certificates import CertificateClient, CertificateContentType, CertificatePolicy
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from tests.integration.vault.vault_helpers import (
    OutsideCA,
    assert_error,
    create,
    pending,
    policy,
    url,
)

PEM_TYPE = "application/x-pem-file"
PFX_TYPE = "application/x-pkcs12"
POLICY_INVALID = "Property policy has invalid value"
PEM_FORMAT = (
    "The specified PEM X.509 certificate content is in an unexpected format. "
    "Please check if certificate is in valid PEM format."
)
PFX_FORMAT = (
    "The specified PKCS#12 X.509 certificate content can not be read. "
    "Please check if certificate is in valid PKCS#12 format."
)
PEM_POLICY = {"secret_props": {"contentType": PEM_TYPE}}
Key = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class Material:
    key: Key
    cert: x509.Certificate

    def key_pem(self, fmt: serialization.PrivateFormat, password: bytes | None = None) -> bytes:
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password)
            if password
            else serialization.NoEncryption()
        )
        return self.key.private_bytes(serialization.Encoding.PEM, fmt, encryption)

    def pem(self, fmt: serialization.PrivateFormat = serialization.PrivateFormat.PKCS8) -> str:
        return (self.key_pem(fmt) + self.cert.public_bytes(serialization.Encoding.PEM)).decode()

    def pfx_b64(self, password: bytes | None = None) -> str:
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password)
            if password
            else serialization.NoEncryption()
        )
        blob = pkcs12.serialize_key_and_certificates(None, self.key, self.cert, None, encryption)
        return base64.b64encode(blob).decode()

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)


def _material(key: Key, months: int = 3) -> Material:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "import.example.com")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30 * months))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("import.example.com")]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    return Material(key, cert)


@pytest.fixture(scope="module")
def rsa_material() -> Material:
    return _material(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="module")
def ec_material() -> Material:
    return _material(ec.generate_private_key(ec.SECP256R1()))


def _import(kv: httpx.Client, name: str, body: dict[str, Any], **query: str) -> httpx.Response:
    return kv.post(url(f"/certificates/{name}/import", **query), json=body)


def _absent(kv: httpx.Client, name: str) -> None:
    assert_error(kv.get(url(f"/certificates/{name}/")), 404, "CertificateNotFound")


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# --- the content type decides how `value` is read ---------------------------------------------

PEM_WITHOUT_PEM_POLICY: list[tuple[str, dict[str, Any] | None]] = [
    ("no policy", None),
    ("a policy without secret_props", {"issuer": {"name": "Self"}}),
    ("a policy without a content type", {"secret_props": {}}),
    ("the PKCS#12 content type", {"secret_props": {"contentType": PFX_TYPE}}),
    ("an unknown content type", {"secret_props": {"contentType": "text/plain"}}),
]


@pytest.mark.parametrize("encoded", [False, True], ids=["PEM text", "base64 of PEM text"])
@pytest.mark.parametrize(
    ("case", "given"), PEM_WITHOUT_PEM_POLICY, ids=[c[0] for c in PEM_WITHOUT_PEM_POLICY]
)
def test_pem_without_the_pem_content_type_is_refused_and_nothing_is_stored(
    kv: httpx.Client,
    name: str,
    ec_material: Material,
    case: str,
    given: dict[str, Any] | None,
    encoded: bool,
) -> None:
    value = ec_material.pem()
    body: dict[str, Any] = {"value": _b64(value) if encoded else value}
    if given is not None:
        body["policy"] = given
    assert_error(_import(kv, name, body), 400, "BadParameter", POLICY_INVALID)
    _absent(kv, name)


@pytest.mark.parametrize(
    ("label", "fmt"),
    [
        ("RSA PRIVATE KEY", serialization.PrivateFormat.TraditionalOpenSSL),
        ("EC PRIVATE KEY", serialization.PrivateFormat.TraditionalOpenSSL),
    ],
    ids=["PKCS#1 RSA key", "SEC1 EC key"],
)
@pytest.mark.parametrize("encoded", [False, True], ids=["PEM text", "base64 of PEM text"])
def test_a_pem_key_that_is_not_pkcs8_is_refused(
    kv: httpx.Client,
    name: str,
    rsa_material: Material,
    ec_material: Material,
    label: str,
    fmt: serialization.PrivateFormat,
    encoded: bool,
) -> None:
    material = rsa_material if label.startswith("RSA") else ec_material
    value = material.pem(fmt)
    assert f"BEGIN {label}" in value
    body = {"value": _b64(value) if encoded else value, "policy": PEM_POLICY}
    error = assert_error(_import(kv, name, body), 400, "BadParameter", PEM_FORMAT)
    assert "MII" not in error["error"]["message"]
    _absent(kv, name)


def test_a_pfx_under_the_pem_content_type_is_read_as_pem_and_refused(
    kv: httpx.Client, name: str, ec_material: Material
) -> None:
    body = {"value": ec_material.pfx_b64(), "policy": PEM_POLICY}
    assert_error(_import(kv, name, body), 400, "BadParameter", PEM_FORMAT)
    _absent(kv, name)


def test_a_pem_with_only_a_certificate_is_malformed_pem(
    kv: httpx.Client, name: str, ec_material: Material
) -> None:
    value = ec_material.cert.public_bytes(serialization.Encoding.PEM).decode()
    assert_error(
        _import(kv, name, {"value": value, "policy": PEM_POLICY}), 400, "BadParameter", PEM_FORMAT
    )
    _absent(kv, name)


@pytest.mark.parametrize(
    "given", [None, {"secret_props": {"contentType": PFX_TYPE}}], ids=["no policy", "PKCS#12"]
)
def test_a_pfx_without_or_with_the_pkcs12_content_type_is_imported(
    kv: httpx.Client, name: str, rsa_material: Material, given: dict[str, Any] | None
) -> None:
    body: dict[str, Any] = {"value": rsa_material.pfx_b64()}
    if given is not None:
        body["policy"] = given
    response = _import(kv, name, body)
    assert response.status_code == 200, response.text
    assert response.json()["policy"]["secret_props"]["contentType"] == PFX_TYPE
    assert base64.b64decode(response.json()["cer"]) == rsa_material.der


def test_an_unreadable_pfx_and_a_wrong_password_are_refused(
    kv: httpx.Client, name: str, ec_material: Material
) -> None:
    garbage = base64.b64encode(b"\x30\x82\x01\x00" + b"\x00" * 64).decode()
    assert_error(_import(kv, name, {"value": garbage}), 400, "BadParameter", PFX_FORMAT)
    body = {"value": ec_material.pfx_b64(b"right"), "pwd": "wrong"}
    assert_error(_import(kv, name, body), 400, "BadParameter", PFX_FORMAT)
    _absent(kv, name)


@pytest.mark.parametrize("encoded", [False, True], ids=["PEM text", "base64 of PEM text"])
def test_a_pkcs8_pem_with_the_pem_content_type_is_imported(
    kv: httpx.Client, name: str, rsa_material: Material, encoded: bool
) -> None:
    value = rsa_material.pem()
    response = _import(kv, name, {"value": _b64(value) if encoded else value, "policy": PEM_POLICY})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["policy"]["secret_props"]["contentType"] == PEM_TYPE
    assert body["contentType"] == PEM_TYPE
    secret = kv.get(url(f"/secrets/{name}/")).json()
    assert secret["contentType"] == PEM_TYPE
    assert "-----BEGIN PRIVATE KEY-----" in secret["value"]


def test_an_encrypted_pkcs8_pem_is_imported_with_its_password(
    kv: httpx.Client, name: str, ec_material: Material
) -> None:
    key = ec_material.key_pem(serialization.PrivateFormat.PKCS8, b"s3cret")
    assert b"BEGIN ENCRYPTED PRIVATE KEY" in key
    value = (key + ec_material.cert.public_bytes(serialization.Encoding.PEM)).decode()
    refused = _import(kv, name, {"value": value, "policy": PEM_POLICY})
    assert_error(refused, 400, "BadParameter", PEM_FORMAT)
    response = _import(kv, name, {"value": value, "pwd": "s3cret", "policy": PEM_POLICY})
    assert response.status_code == 200, response.text


# --- ImportCertificate: every other field -----------------------------------------------------


def test_import_honours_attributes_tags_and_the_policy_it_is_given(
    kv: httpx.Client, name: str, ec_material: Material
) -> None:
    given = {
        "key_props": {"kty": "EC", "crv": "P-256", "exportable": False, "reuse_key": True},
        "secret_props": {"contentType": PEM_TYPE},
        "x509_props": {"validity_months": 6, "key_usage": ["digitalSignature"]},
        "lifetime_actions": [
            {"trigger": {"days_before_expiry": 30}, "action": {"action_type": "EmailContacts"}}
        ],
        "issuer": {"name": "Unknown", "cty": "OV-SSL", "cert_transparency": False},
    }
    nbf_claim = 1_000_000_000
    body = {
        "value": ec_material.pem(),
        "policy": given,
        "attributes": {"enabled": False, "nbf": nbf_claim, "exp": nbf_claim + 60},
        "tags": {"team": "a"},
    }
    response = _import(kv, name, body)
    assert response.status_code == 200, response.text
    bundle = response.json()
    attributes = bundle["attributes"]
    assert attributes["enabled"] is False
    # nbf/exp of a certificate are its X.509 validity: the request's claim is not taken.
    assert attributes["nbf"] == int(ec_material.cert.not_valid_before_utc.timestamp())
    assert attributes["exp"] == int(ec_material.cert.not_valid_after_utc.timestamp())
    assert bundle["tags"] == {"team": "a"}
    stored = kv.get(url(f"/certificates/{name}/policy")).json()
    assert stored["key_props"] == {
        "kty": "EC",
        "crv": "P-256",
        "key_size": 256,
        "exportable": False,
        "reuse_key": True,
    }
    assert stored["x509_props"]["validity_months"] == 6
    assert stored["x509_props"]["key_usage"] == ["digitalSignature"]
    assert stored["x509_props"]["subject"] == "CN=import.example.com"
    assert stored["lifetime_actions"] == given["lifetime_actions"]
    assert stored["issuer"] == {"name": "Unknown", "cty": "OV-SSL", "cert_transparency": False}
    enabled = kv.patch(url(f"/certificates/{name}/"), json={"attributes": {"enabled": True}})
    assert enabled.status_code == 200, enabled.text
    refused = assert_error(kv.get(url(f"/secrets/{name}/")), 403, "Forbidden")
    assert "not exportable" in refused["error"]["message"]


CONTRADICTING_KEY_PROPS: list[tuple[str, dict[str, Any]]] = [
    ("RSA for an EC key", {"kty": "RSA"}),
    ("a curve the key is not on", {"kty": "EC", "crv": "P-384"}),
    ("a size the key does not have", {"key_size": 384}),
]


@pytest.mark.parametrize(
    ("case", "props"), CONTRADICTING_KEY_PROPS, ids=[c[0] for c in CONTRADICTING_KEY_PROPS]
)
def test_import_key_props_that_contradict_the_key_are_refused(
    kv: httpx.Client, name: str, ec_material: Material, case: str, props: dict[str, Any]
) -> None:
    body = {"value": ec_material.pem(), "policy": {**PEM_POLICY, "key_props": props}}
    assert_error(_import(kv, name, body), 400, "BadParameter", POLICY_INVALID)
    _absent(kv, name)


def test_import_key_props_of_an_rsa_key_are_checked_too(
    kv: httpx.Client, name: str, rsa_material: Material
) -> None:
    wrong = {"value": rsa_material.pfx_b64(), "policy": {"key_props": {"key_size": 4096}}}
    assert_error(_import(kv, name, wrong), 400, "BadParameter", POLICY_INVALID)
    curve = {"value": rsa_material.pfx_b64(), "policy": {"key_props": {"crv": "P-256"}}}
    assert_error(_import(kv, name, curve), 400, "BadParameter", POLICY_INVALID)
    right = {
        "value": rsa_material.pfx_b64(),
        "policy": {"key_props": {"kty": "RSA", "key_size": 2048}},
    }
    assert _import(kv, name, right).status_code == 200


# --- fields this vault refuses rather than drop -----------------------------------------------


def test_platform_managed_is_refused_by_every_call_that_takes_a_policy(
    kv: httpx.Client, name: str, ec_material: Material
) -> None:
    internal = {"platformManaged": {"certificateUsage": "internal"}}
    assert_error(create(kv, name, "Self", **internal), 400, "BadParameter")
    assert_error(pending(kv, name), 404, "PendingCertificateNotFound")
    body = {"value": ec_material.pem(), "policy": {**PEM_POLICY, **internal}}
    assert_error(_import(kv, name, body), 400, "BadParameter")
    _absent(kv, name)
    assert _import(kv, name, {"value": ec_material.pfx_b64()}).status_code == 200
    before = kv.get(url(f"/certificates/{name}/policy")).json()
    assert_error(kv.patch(url(f"/certificates/{name}/policy"), json=internal), 400, "BadParameter")
    update = kv.patch(url(f"/certificates/{name}/"), json={"policy": internal})
    assert_error(update, 400, "BadParameter")
    assert kv.get(url(f"/certificates/{name}/policy")).json() == before


# --- CreateCertificate, MergeCertificate, UpdateCertificate -----------------------------------


def test_create_and_merge_honour_enabled_and_tags(kv: httpx.Client, name: str) -> None:
    body = {
        "policy": policy("Unknown"),
        "attributes": {"enabled": False},
        "tags": {"from": "create"},
    }
    op = kv.post(url(f"/certificates/{name}/create"), json=body)
    assert op.status_code == 202, op.text
    ca = OutsideCA()
    merge = {"x5c": ca.x5c(op.json()["csr"]), "tags": {}}
    merged = kv.post(url(f"/certificates/{name}/pending/merge"), json=merge)
    assert merged.status_code == 201, merged.text
    assert merged.json()["attributes"]["enabled"] is False
    assert merged.json()["tags"] == {}


def test_merge_without_tags_keeps_the_tags_of_the_create(kv: httpx.Client, name: str) -> None:
    body = {"policy": policy("Unknown"), "tags": {"from": "create"}}
    op = kv.post(url(f"/certificates/{name}/create"), json=body).json()
    merge = {"x5c": OutsideCA().x5c(op["csr"]), "attributes": {"enabled": True}}
    merged = kv.post(url(f"/certificates/{name}/pending/merge"), json=merge)
    assert merged.status_code == 201, merged.text
    assert merged.json()["tags"] == {"from": "create"}
    assert merged.json()["attributes"]["enabled"] is True


def test_update_honours_enabled_tags_and_policy_and_ignores_validity_claims(
    kv: httpx.Client, name: str, ec_material: Material
) -> None:
    imported = _import(kv, name, {"value": ec_material.pfx_b64(), "tags": {"a": "1"}}).json()
    body = {
        "attributes": {"enabled": False, "nbf": 1, "exp": 2},
        "tags": {"b": "2"},
        "policy": {"x509_props": {"validity_months": 24}},
    }
    updated = kv.patch(url(f"/certificates/{name}/"), json=body)
    assert updated.status_code == 200, updated.text
    bundle = updated.json()
    assert bundle["attributes"]["enabled"] is False
    assert bundle["attributes"]["nbf"] == imported["attributes"]["nbf"]
    assert bundle["attributes"]["exp"] == imported["attributes"]["exp"]
    assert bundle["tags"] == {"b": "2"}
    assert bundle["policy"]["x509_props"]["validity_months"] == 24


# --- Microsoft's SDK sees the same answers ----------------------------------------------------


def test_the_sdk_imports_pem_only_with_the_pem_policy_and_a_pkcs8_key(
    sdk: CertificateClient, name: str, ec_material: Material
) -> None:
    pem = ec_material.pem().encode()
    with pytest.raises(HttpResponseError) as caught:
        sdk.import_certificate(name, pem)
    assert caught.value.status_code == 400
    assert caught.value.error is not None
    assert caught.value.error.code == "BadParameter"
    assert caught.value.error.message == POLICY_INVALID
    policy = CertificatePolicy(content_type=CertificateContentType.pem)
    sec1 = ec_material.pem(serialization.PrivateFormat.TraditionalOpenSSL).encode()
    with pytest.raises(HttpResponseError) as refused:
        sdk.import_certificate(name, sec1, policy=policy)
    assert refused.value.error is not None
    assert refused.value.error.message == PEM_FORMAT
    imported = sdk.import_certificate(name, pem, policy=policy)
    assert bytes(imported.cer or b"") == ec_material.der
