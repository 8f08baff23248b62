"""Small helpers shared by the vault integration tests (requests, polling, a test CA)."""

from __future__ import annotations

import base64
import datetime as dt
import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

API = "7.5"
HOSTNAME = "kv.vault.test"  # resolved to 127.0.0.1 by the tests that use it
T = TypeVar("T")
PROVIDER_DETAILS = (
    "Pending certificate created. Certificate request is in progress. This may take some time "
    "based on the issuer provider. Please check again later."
)
MANUAL_DETAILS = "Pending certificate created. Please Perform Merge to complete the request."
CONFLICT_TEXT = (
    "A new key vault certificate can not be created or imported while a pending key vault "
    "certificate's status is inProgress."
)

EXPECTED: dict[str, dict[str, Any]] = {
    "documented": {
        "conflict_code": "Forbidden",
        "cancel_error": (400, "BadParameter", None),
        "issuer_create_status": "InProgress",
        "cancelled": "canceled",
        "target_suffix": f"?api-version={API}",
        "completed_details": True,
    },
    "service": {
        "conflict_code": "Conflict",
        "cancel_error": (403, "Forbidden", "Pending status must be in progress to allow update."),
        "issuer_create_status": "inProgress",
        "cancelled": "cancelled",
        "target_suffix": "",
        "completed_details": False,
    },
}


def url(path: str, **query: str) -> str:
    extra = "".join(f"&{k}={v}" for k, v in query.items())
    return f"{path}?api-version={API}{extra}"


def policy(issuer: str | None = "Self", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "x509_props": {"subject": "CN=test.example.com"},
        "key_props": {"kty": "EC", "crv": "P-256"},
    }
    if issuer is not None:
        body["issuer"] = {"name": issuer}
    body.update(extra)
    return body


def create(
    kv: httpx.Client, name: str, issuer: str | None = "Self", **extra: Any
) -> httpx.Response:
    return kv.post(url(f"/certificates/{name}/create"), json={"policy": policy(issuer, **extra)})


def set_issuer(kv: httpx.Client, issuer: str, provider: str = "DigiCert") -> None:
    response = kv.put(url(f"/certificates/issuers/{issuer}"), json={"provider": provider})
    assert response.status_code == 200, response.text


def pending(kv: httpx.Client, name: str, **query: str) -> httpx.Response:
    return kv.get(url(f"/certificates/{name}/pending", **query))


def manage(
    kv: httpx.Client, name: str, action: str, body: dict[str, Any] | None = None
) -> httpx.Response:
    response = kv.post(f"/_kvcert/certificates/{name}/pending/{action}", json=body or {})
    assert response.status_code == 200, response.text
    return response


def wait_for(check: Callable[[], T | None], timeout: float = 30.0, interval: float = 0.05) -> T:
    """Poll `check` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)  # poll interval between condition checks


def wait_status(kv: httpx.Client, name: str, timeout: float = 30.0) -> dict[str, Any]:
    """The operation once it is no longer inProgress."""

    def done() -> dict[str, Any] | None:
        body: dict[str, Any] = pending(kv, name).json()
        return body if body["status"].lower() != "inprogress" else None

    return wait_for(done, timeout)


def assert_error(
    response: httpx.Response, status: int, code: str, message: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert "retry-after" not in response.headers
    body: dict[str, Any] = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    if message is not None:
        assert body["error"]["message"] == message
    return body


class OutsideCA:
    """An outside CA for the manual (Unknown issuer) flow."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test outside CA")])
        now = dt.datetime.now(dt.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )

    def sign(self, csr_b64: str) -> x509.Certificate:
        csr = x509.load_der_x509_csr(base64.b64decode(csr_b64))
        now = dt.datetime.now(dt.UTC)
        return (
            x509.CertificateBuilder()
            .subject_name(csr.subject)
            .issuer_name(self.cert.subject)
            .public_key(csr.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=30))
            .sign(self.key, hashes.SHA256())
        )

    def x5c(self, csr_b64: str, pem: bool = False) -> list[str]:
        """A signed chain for the CSR as merge items: base64 DER each, or one base64 of PEM."""
        return self.items(self.sign(csr_b64), pem)

    def items(self, leaf: x509.Certificate, pem: bool = False) -> list[str]:
        certs = (leaf, self.cert)
        if pem:
            text = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)
            return [base64.b64encode(text).decode()]
        return [
            base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode() for c in certs
        ]
