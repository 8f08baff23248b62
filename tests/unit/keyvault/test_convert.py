"""Wire objects become the same observed values whatever the profile or example spells."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from cryptography import x509

from kvcert.keyvault import errors, wire
from kvcert.keyvault.convert import (
    call_error,
    certificate_from_wire,
    csr_to_pem,
    operation_from_wire,
    strip_query,
    version_from_id,
)
from kvcert.keyvault.errors import UnexpectedResponse
from kvcert.reconcile.observed import CallError, OperationStatus

from .conftest import example

BASE = "https://kv.vault.local/certificates/web"


def op(**fields: object) -> wire.CertificateOperation:
    body = {"id": f"{BASE}/pending", "request_id": "a76827a18b63421c917da80f28e9913d"}
    return wire.CertificateOperation.model_validate({**body, **fields})


@pytest.mark.parametrize(
    ("documented", "service"),
    [
        pytest.param(
            {"status": "InProgress"},
            {"status": "inProgress"},
            id="InProgress and inProgress are the same state",
        ),
        pytest.param(
            {"status": "canceled"},
            {"status": "cancelled"},
            id="canceled and cancelled are the same state",
        ),
        pytest.param(
            {"status": "completed", "target": f"{BASE}?api-version=7.5", "status_details": ""},
            {"status": "completed", "target": BASE},
            id="completed target with and without api-version",
        ),
        pytest.param(
            {"status": "Failed", "error": {"code": "X", "message": "no"}},
            {"status": "failed", "error": {"code": "X", "message": "no"}},
            id="failed with its error",
        ),
    ],
)
def test_both_profiles_convert_to_the_same_observed_operation(
    documented: dict[str, object], service: dict[str, object]
) -> None:
    assert operation_from_wire(op(**documented)) == operation_from_wire(op(**service))


def test_create_example_converts() -> None:
    body = example("CreateCertificate")["responses"]["202"]["body"]
    observed = operation_from_wire(wire.CertificateOperation.model_validate(body))
    assert observed.request_id == "6faacd568ab049a2803861e8dd3ae21f"
    assert observed.status is OperationStatus.IN_PROGRESS
    assert observed.issuer_name == "Self"
    assert observed.cancellation_requested is False
    assert observed.status_details.startswith("Pending certificate created.")
    assert observed.csr_pem is not None
    csr = x509.load_pem_x509_csr(observed.csr_pem.encode())
    assert csr.subject.rfc4514_string() == "CN=*.microsoft.com"
    assert observed.target is None
    assert observed.error is None


@pytest.mark.parametrize(
    ("name", "code", "cancellation"),
    [
        ("GetCertificateOperation", "200", False),
        ("UpdateCertificateOperation", "200", True),
        ("DeleteCertificateOperation", "200", False),
    ],
)
def test_operation_examples_convert(name: str, code: str, cancellation: bool) -> None:
    body = example(name)["responses"][code]["body"]
    observed = operation_from_wire(wire.CertificateOperation.model_validate(body))
    assert observed.status is OperationStatus.IN_PROGRESS
    assert observed.request_id == body["request_id"]
    assert observed.cancellation_requested is cancellation
    assert observed.issuer_name == body["issuer"]["name"]


def test_get_certificate_example_converts() -> None:
    body = example("GetCertificate")["responses"]["200"]["body"]
    cert = certificate_from_wire(wire.CertificateBundle.model_validate(body))
    assert cert.version == "f60f2a4f8ae442cfb41ca2090bd4b769"
    assert cert.enabled is True
    assert cert.x5t == "fLi3U52HunIVNXubkEnf8tP6Wbo"
    assert cert.der == base64.b64decode(body["cer"])
    assert cert.serial_number == "A879A9040BFE098F48245A148656F389"
    assert cert.not_before == datetime(2015, 4, 29, 21, 53, 41, tzinfo=UTC)
    assert cert.not_after == datetime.fromtimestamp(2208988799, tz=UTC)
    assert cert.not_after is not None
    assert cert.not_after.tzinfo is UTC
    assert cert.pending_id is None
    assert cert.tags == {}


@pytest.mark.parametrize(
    ("name", "code"),
    [("MergeCertificate", "201"), ("ImportCertificate", "200"), ("DeleteCertificate", "200")],
)
def test_bundle_examples_convert_even_with_placeholder_cer(name: str, code: str) -> None:
    body = example(name)["responses"][code]["body"]
    cert = certificate_from_wire(wire.CertificateBundle.model_validate(body))
    assert cert.version == body["id"].rsplit("/", 1)[1]
    assert cert.enabled is True
    assert cert.x5t == body["x5t"]
    assert cert.not_after == datetime.fromtimestamp(body["attributes"]["exp"], tz=UTC)
    # The examples' "MII++cut+for+brevity++EPAQj8" is no certificate: no serial, no failure.
    if "cut+for+brevity" in body["cer"]:
        assert cert.serial_number is None


def test_pending_only_certificate_converts() -> None:
    body = {
        "id": f"{BASE}/0123456789abcdef0123456789abcdef",
        "attributes": {"enabled": False, "created": 1, "updated": 1},
        "pending": {"id": f"{BASE}/pending"},
        "tags": {"managed-by": "kvcert"},
    }
    cert = certificate_from_wire(wire.CertificateBundle.model_validate(body))
    assert cert.enabled is False
    assert cert.pending_id == f"{BASE}/pending"
    assert (cert.x5t, cert.der, cert.serial_number, cert.not_after) == (None, None, None, None)
    assert cert.tags == {"managed-by": "kvcert"}


def test_serial_is_even_length_hex(leaf_der: bytes) -> None:
    body = {"id": f"{BASE}/v1", "cer": base64.b64encode(leaf_der).decode()}
    assert (
        certificate_from_wire(wire.CertificateBundle.model_validate(body)).serial_number == "0ABC"
    )


def test_unknown_fields_from_a_newer_api_version_are_ignored() -> None:
    body = example("GetCertificate")["responses"]["200"]["body"]
    newer = {**body, "preserveCertOrder": True, "policy": {**body["policy"], "platformManaged": {}}}
    assert certificate_from_wire(wire.CertificateBundle.model_validate(newer)) == (
        certificate_from_wire(wire.CertificateBundle.model_validate(body))
    )


@pytest.mark.parametrize(
    "fields",
    [
        {"status": None},
        {"request_id": None},
        {"status": "weird"},
        {"status": "completed", "csr": "!!notbase64"},
    ],
)
def test_unusable_operations_are_unexpected_responses(fields: dict[str, object]) -> None:
    with pytest.raises(UnexpectedResponse):
        operation_from_wire(op(**fields))


def test_operation_error_message_is_scrubbed() -> None:
    observed = operation_from_wire(
        op(status="failed", error={"code": "IssuerError", "message": "rejected Bearer abc.def"})
    )
    assert observed.error is not None
    assert "abc.def" not in observed.error.message


def test_csr_pem_wraps_at_64() -> None:
    pem = csr_to_pem(base64.b64encode(bytes(range(100))).decode())
    lines = pem.splitlines()
    assert lines[0] == "-----BEGIN CERTIFICATE REQUEST-----"
    assert lines[-1] == "-----END CERTIFICATE REQUEST-----"
    assert all(len(line) <= 64 for line in lines[1:-1])


@pytest.mark.parametrize(
    ("object_id", "version"),
    [
        (f"{BASE}/abc123", "abc123"),
        (f"{BASE}/abc123?api-version=7.5", "abc123"),
        (BASE, ""),
        ("https://kv.vault.local:8443/secrets/web/v9", "v9"),
    ],
)
def test_version_from_id(object_id: str, version: str) -> None:
    assert version_from_id(object_id) == version


def test_strip_query() -> None:
    assert strip_query(f"{BASE}/?api-version=2026-04-01") == BASE


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        pytest.param(
            errors.Throttled(429, "Throttled", "slow", retry_after=5.0),
            CallError(429, "Throttled", "slow", 5.0),
            id="an HTTP error keeps status, code, message and retry-after",
        ),
        pytest.param(
            errors.Conflict(
                409, "", "PEM -----BEGIN PRIVATE KEY-----\nAAA\n-----END PRIVATE KEY-----"
            ),
            CallError(409, "Conflict", "PEM [PEM redacted]"),
            id="a missing code falls back to the class, the message stays scrubbed",
        ),
        pytest.param(
            errors.DeletedButRecoverable(
                409, "Conflict", "soft-deleted", inner_code="ObjectIsDeletedButRecoverable"
            ),
            CallError(409, "Conflict", "soft-deleted", inner_code="ObjectIsDeletedButRecoverable"),
            id="the inner code survives: it tells a soft-deleted name from a pending operation",
        ),
        pytest.param(
            errors.Forbidden(403, "Forbidden", "not authorized", inner_code="ForbiddenByRbac"),
            CallError(403, "Forbidden", "not authorized", inner_code="ForbiddenByRbac"),
            id="an access denial keeps its inner code",
        ),
        pytest.param(
            errors.KeyVaultTimeout("timed out: read"),
            CallError(None, "KeyVaultTimeout", "timed out: read"),
            id="no answer has no status",
        ),
    ],
)
def test_call_error(error: errors.KeyVaultError, expected: CallError) -> None:
    assert call_error(error) == expected
    assert call_error(error).transient is (expected.status in (None, 429))
