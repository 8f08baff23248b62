"""Bad input of every kind: Key Vault's error shape with a 4xx (never a 5xx), state unchanged."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from tests.integration.vault.vault_helpers import (
    OutsideCA,
    assert_error,
    create,
    pending,
    policy,
    url,
)

GOOD_POLICY = policy("Self")
CREATE_CASES: list[tuple[str, Any]] = [
    ("malformed JSON", b'{"policy": {'),
    ("a JSON array instead of an object", b"[]"),
    (
        "a string where a number belongs",
        {"policy": {**GOOD_POLICY, "key_props": {"kty": "RSA", "key_size": "2048"}}},
    ),
    ("a number where a string belongs", {"policy": {**GOOD_POLICY, "x509_props": {"subject": 42}}}),
    (
        "a boolean where a number belongs",
        {"policy": {**GOOD_POLICY, "x509_props": {"subject": "CN=a", "validity_months": True}}},
    ),
    ("an unknown key type", {"policy": {**GOOD_POLICY, "key_props": {"kty": "DSA"}}}),
    (
        "an RSA size Key Vault refuses",
        {"policy": {**GOOD_POLICY, "key_props": {"kty": "RSA", "key_size": 1024}}},
    ),
    ("an unknown curve", {"policy": {**GOOD_POLICY, "key_props": {"kty": "EC", "crv": "P-999"}}}),
    (
        "a curve with a mismatched size",
        {"policy": {**GOOD_POLICY, "key_props": {"kty": "EC", "crv": "P-256", "key_size": 384}}},
    ),
    (
        "an unknown content type",
        {"policy": {**GOOD_POLICY, "secret_props": {"contentType": "text/plain"}}},
    ),
    (
        "zero validity months",
        {"policy": {**GOOD_POLICY, "x509_props": {"subject": "CN=a", "validity_months": 0}}},
    ),
    (
        "an unknown key usage",
        {"policy": {**GOOD_POLICY, "x509_props": {"subject": "CN=a", "key_usage": ["everything"]}}},
    ),
    (
        "an EKU that is not an OID",
        {"policy": {**GOOD_POLICY, "x509_props": {"subject": "CN=a", "ekus": ["serverAuth"]}}},
    ),
    (
        "a subject that is not a name",
        {"policy": {**GOOD_POLICY, "x509_props": {"subject": "not a distinguished name"}}},
    ),
    ("neither subject nor SANs", {"policy": {**GOOD_POLICY, "x509_props": {}}}),
    (
        "a lifetime percentage of 100",
        {
            "policy": {
                **GOOD_POLICY,
                "lifetime_actions": [
                    {
                        "trigger": {"lifetime_percentage": 100},
                        "action": {"action_type": "AutoRenew"},
                    }
                ],
            }
        },
    ),
    (
        "an unknown lifetime action",
        {
            "policy": {
                **GOOD_POLICY,
                "lifetime_actions": [
                    {"trigger": {"lifetime_percentage": 80}, "action": {"action_type": "Explode"}}
                ],
            }
        },
    ),
    ("an issuer that does not exist", {"policy": policy("nosuchissuer")}),
    (
        "a non-ASCII e-mail SAN",
        {
            "policy": {
                **GOOD_POLICY,
                "x509_props": {"subject": "CN=a", "sans": {"emails": ["\u00e9@example.com"]}},
            }
        },
    ),
    (
        "an IP SAN that is not an address",
        {
            "policy": {
                **GOOD_POLICY,
                "x509_props": {"subject": "CN=a", "sans": {"ipAddresses": ["999.1.1.1"]}},
            }
        },
    ),
    (
        "a DNS SAN with a space",
        {
            "policy": {
                **GOOD_POLICY,
                "x509_props": {"subject": "CN=a", "sans": {"dns_names": ["a b.example"]}},
            }
        },
    ),
    ("no policy for a new certificate", {}),
]


def _send(kv: httpx.Client, path: str, body: Any, method: str = "POST") -> httpx.Response:
    if isinstance(body, bytes):
        return kv.request(method, path, content=body, headers={"content-type": "application/json"})
    return kv.request(method, path, json=body)


@pytest.mark.parametrize(("case", "body"), CREATE_CASES, ids=[c[0] for c in CREATE_CASES])
def test_bad_create_is_400_and_creates_nothing(
    kv: httpx.Client, name: str, case: str, body: Any
) -> None:
    response = _send(kv, url(f"/certificates/{name}/create"), body)
    assert_error(response, 400, "BadParameter")
    assert_error(kv.get(url(f"/certificates/{name}/")), 404, "CertificateNotFound")
    assert_error(pending(kv, name), 404, "PendingCertificateNotFound")


@pytest.mark.parametrize(
    "bad_name",
    ["under_score", "dot.ted", "x" * 128, "sp%20ace"],
    ids=["underscore", "dot", "128 characters", "space"],
)
def test_invalid_names_are_400(kv: httpx.Client, bad_name: str) -> None:
    assert_error(create(kv, bad_name), 400, "BadParameter")
    assert_error(kv.get(url(f"/certificates/{bad_name}/pending")), 400, "BadParameter")


def test_unknown_api_version_is_400_with_the_live_text(kv: httpx.Client, name: str) -> None:
    response = kv.post(
        f"/certificates/{name}/create?api-version=7.9", json={"policy": policy("Self")}
    )
    assert_error(
        response,
        400,
        "BadParameter",
        "The specified version (7.9) is not recognized. "
        "Consider using the latest supported version (2026-04-01).",
    )
    assert_error(pending(kv, name), 404, "PendingCertificateNotFound")


@pytest.mark.parametrize(
    "version", ["7.0", "7.1", "7.2", "7.3", "7.4", "7.5", "7.6", "2025-07-01", "2026-04-01"]
)
def test_every_supported_api_version_is_accepted(kv: httpx.Client, version: str) -> None:
    assert kv.get(f"/certificates?api-version={version}").status_code == 200


def test_a_body_over_one_mebibyte_is_refused(kv: httpx.Client, name: str) -> None:
    body = b'{"value": "' + b"A" * (1 << 20) + b'"}'
    response = _send(kv, url(f"/certificates/{name}/import"), body)
    assert 400 <= response.status_code < 500
    assert_error(response, response.status_code, "BadParameter")
    assert_error(kv.get(url(f"/certificates/{name}/")), 404, "CertificateNotFound")


IMPORT_CASES: list[tuple[str, dict[str, Any]]] = [
    ("value that is not base64", {"value": "!!!not base64!!!"}),
    (
        "base64 of something that is not a certificate",
        {"value": base64.b64encode(b"\x30\x03\x02\x01\x01" * 20).decode()},
    ),
    (
        "PEM without a private key",
        {"value": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"},
    ),
    ("missing value", {"pwd": "x"}),
    ("value of the wrong type", {"value": 123}),
]


@pytest.mark.parametrize(("case", "body"), IMPORT_CASES, ids=[c[0] for c in IMPORT_CASES])
def test_bad_import_is_400_and_imports_nothing(
    kv: httpx.Client, name: str, case: str, body: dict[str, Any]
) -> None:
    assert_error(_send(kv, url(f"/certificates/{name}/import"), body), 400, "BadParameter")
    assert_error(kv.get(url(f"/certificates/{name}/")), 404, "CertificateNotFound")


def test_import_of_a_pem_chain_whose_key_does_not_match_is_400(kv: httpx.Client, name: str) -> None:
    ca = OutsideCA()
    stranger = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    text = stranger + ca.cert.public_bytes(serialization.Encoding.PEM)
    body = {
        "value": text.decode(),
        "policy": {"secret_props": {"contentType": "application/x-pem-file"}},
    }
    response = _send(kv, url(f"/certificates/{name}/import"), body)
    error = assert_error(response, 400, "BadParameter")
    assert "PRIVATE KEY" not in error["error"]["message"]
    assert_error(kv.get(url(f"/certificates/{name}/")), 404, "CertificateNotFound")


MERGE_CASES: list[tuple[str, Any]] = [
    ("an empty chain", {"x5c": []}),
    ("an item that is not base64", {"x5c": ["%%%"]}),
    ("an item that is not a certificate", {"x5c": [base64.b64encode(b"hello").decode()]}),
    ("x5c of the wrong type", {"x5c": "MIIB"}),
    ("malformed JSON", b'{"x5c": ['),
]


@pytest.mark.parametrize(("case", "body"), MERGE_CASES, ids=[c[0] for c in MERGE_CASES])
def test_bad_merge_is_400_and_leaves_the_operation_in_progress(
    kv: httpx.Client, name: str, case: str, body: Any
) -> None:
    request_id = create(kv, name, "Unknown").json()["request_id"]
    response = _send(kv, url(f"/certificates/{name}/pending/merge"), body)
    assert_error(response, 400, "BadParameter")
    op = pending(kv, name).json()
    assert (op["status"], op["request_id"]) == ("inProgress", request_id)


@pytest.mark.parametrize(
    ("case", "body"),
    [
        ("missing field", {}),
        ("wrong type", {"cancellation_requested": "yes"}),
        ("malformed JSON", b"{"),
    ],
    ids=["missing cancellation_requested", "a string for a boolean", "malformed JSON"],
)
def test_bad_cancel_is_400_and_changes_nothing(
    kv: httpx.Client, name: str, case: str, body: Any
) -> None:
    create(kv, name, "Unknown")
    assert_error(
        _send(kv, url(f"/certificates/{name}/pending"), body, "PATCH"), 400, "BadParameter"
    )
    assert pending(kv, name).json()["cancellation_requested"] is False


@pytest.mark.parametrize("value", ["0", "26", "abc", "-1"])
def test_bad_maxresults_is_400(kv: httpx.Client, value: str) -> None:
    assert_error(kv.get(url("/certificates", maxresults=value)), 400, "BadParameter")


def test_bad_policy_update_is_400_and_keeps_the_policy(kv: httpx.Client, name: str) -> None:
    create(kv, name, "Unknown")
    before = kv.get(url(f"/certificates/{name}/policy")).json()
    response = kv.patch(url(f"/certificates/{name}/policy"), json={"key_props": {"kty": "DSA"}})
    assert_error(response, 400, "BadParameter")
    assert kv.get(url(f"/certificates/{name}/policy")).json() == before


def test_bad_issuer_and_contacts_bodies_are_400(kv: httpx.Client) -> None:
    assert_error(kv.put(url("/certificates/issuers/bad-issuer"), json={}), 400, "BadParameter")
    assert_error(
        kv.put(url("/certificates/issuers/bad-issuer"), json={"provider": 1}), 400, "BadParameter"
    )
    assert_error(kv.get(url("/certificates/issuers/bad-issuer")), 404, "CertificateIssuerNotFound")
    assert_error(kv.put(url("/certificates/contacts"), json={"contacts": "x"}), 400, "BadParameter")


def test_unknown_paths_and_methods_use_the_error_shape(kv: httpx.Client) -> None:
    assert_error(kv.get(url("/nothing/here")), 404, "NotFound")
    assert_error(kv.put(url("/certificates/abc/pending")), 405, "MethodNotAllowed")
