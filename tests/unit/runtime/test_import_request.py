"""importFrom content turned into what Key Vault imports (issue 14): a PKCS#8 key under the PEM
content type, or a PFX under PKCS#12; converted off the event loop, never leaking the key."""

from __future__ import annotations

import base64
import datetime as dt
import threading
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from kubernetes import client

from kvcert.api.certificate import Policy
from kvcert.reconcile import actions
from kvcert.runtime import perform, sources
from kvcert.runtime.kube import Owner

PEM_TYPE = "application/x-pem-file"
PFX_TYPE = "application/x-pkcs12"
PEM = serialization.Encoding.PEM
TRADITIONAL = serialization.PrivateFormat.TraditionalOpenSSL
PKCS8 = serialization.PrivateFormat.PKCS8
EC_PARAMETERS = b"-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"
Key = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
CA = tuple[ec.EllipticCurvePrivateKey, x509.Certificate]


def _cert(key: Key, cn: str, issuer_key: Key | None = None, issuer: str | None = None) -> Any:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer or cn)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(issuer_key or key, hashes.SHA256())
    )


@pytest.fixture(scope="module")
def ca() -> CA:
    key = ec.generate_private_key(ec.SECP256R1())
    return key, _cert(key, "ca")


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _tls_secret(key_pem: bytes, crt: bytes) -> client.V1Secret:
    data = {"tls.crt": crt, "tls.key": key_pem}
    return client.V1Secret(
        type="kubernetes.io/tls", data={k: base64.b64encode(v).decode() for k, v in data.items()}
    )


def _pem_content(key: Key, certs: list[x509.Certificate], fmt: Any, prefix: bytes = b"") -> Any:
    key_pem = prefix + key.private_bytes(PEM, fmt, serialization.NoEncryption())
    crt = b"".join(c.public_bytes(PEM) for c in certs)
    return sources.import_content(_tls_secret(key_pem, crt), None), key_pem


def _key_of(pem_text: str) -> Any:
    return serialization.load_pem_private_key(pem_text.encode(), None)


def test_a_pkcs1_key_becomes_pkcs8_under_the_pem_content_type(
    rsa_key: rsa.RSAPrivateKey, ca: CA
) -> None:
    leaf = _cert(rsa_key, "leaf", ca[0], "ca")
    content, key_pem = _pem_content(rsa_key, [leaf, ca[1]], TRADITIONAL)
    assert b"BEGIN RSA PRIVATE KEY" in key_pem
    request = sources.prepare_import(content, None)
    assert request.content_type == PEM_TYPE
    assert request.password is None
    assert isinstance(request.value, str)
    assert "BEGIN RSA PRIVATE KEY" not in request.value
    assert request.value.startswith("-----BEGIN PRIVATE KEY-----")
    assert _key_of(request.value).public_key() == rsa_key.public_key()
    certs = x509.load_pem_x509_certificates(request.value.encode())
    assert certs == [leaf, ca[1]]


def test_a_sec1_key_after_ec_parameters_becomes_pkcs8_and_the_parameters_go(ca: CA) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = _cert(key, "leaf", ca[0], "ca")
    content, _ = _pem_content(key, [leaf], TRADITIONAL, EC_PARAMETERS)
    request = sources.prepare_import(content, PEM_TYPE)
    assert isinstance(request.value, str)
    assert "EC PARAMETERS" not in request.value
    assert "BEGIN EC PRIVATE KEY" not in request.value
    assert _key_of(request.value).public_key() == key.public_key()


def test_a_pkcs8_key_is_passed_through_unparsed(ca: CA) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = _cert(key, "leaf", ca[0], "ca")
    content, key_pem = _pem_content(key, [leaf], PKCS8)
    request = sources.prepare_import(content, None)
    assert isinstance(request.value, str)
    assert request.value.startswith(key_pem.decode().rstrip("\n"))


def test_a_pem_pair_under_the_pkcs12_content_type_becomes_a_pfx_leaf_first(
    rsa_key: rsa.RSAPrivateKey, ca: CA
) -> None:
    leaf = _cert(rsa_key, "leaf", ca[0], "ca")
    content, _ = _pem_content(rsa_key, [ca[1], leaf], TRADITIONAL)
    request = sources.prepare_import(content, PFX_TYPE)
    assert request.content_type == PFX_TYPE
    assert isinstance(request.value, bytes)
    key, cert, extra = pkcs12.load_key_and_certificates(request.value, None)
    assert cert == leaf
    assert extra == [ca[1]]
    assert key is not None
    assert key.public_key() == rsa_key.public_key()


def test_a_pfx_is_passed_through_or_becomes_pem(ca: CA) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = _cert(key, "leaf", ca[0], "ca")
    blob = pkcs12.serialize_key_and_certificates(
        b"x", key, leaf, [ca[1]], serialization.BestAvailableEncryption(b"pw")
    )
    secret = client.V1Secret(
        data={"tls.pfx": base64.b64encode(blob).decode(), "pwd": base64.b64encode(b"pw").decode()}
    )
    content = sources.import_content(secret, "pwd")
    kept = sources.prepare_import(content, None)
    assert (kept.value, kept.password, kept.content_type) == (blob, "pw", PFX_TYPE)
    as_pem = sources.prepare_import(content, PEM_TYPE)
    assert as_pem.content_type == PEM_TYPE
    assert as_pem.password is None
    assert isinstance(as_pem.value, str)
    assert as_pem.value.startswith("-----BEGIN PRIVATE KEY-----")
    assert x509.load_pem_x509_certificates(as_pem.value.encode()) == [leaf, ca[1]]


def test_unreadable_material_is_a_source_error_without_the_material(ca: CA) -> None:
    garbage = b"-----BEGIN RSA PRIVATE KEY-----\nU0VDUkVUU0VDUkVU\n-----END RSA PRIVATE KEY-----\n"
    content = sources.import_content(_tls_secret(garbage, ca[1].public_bytes(PEM)), None)
    with pytest.raises(sources.SourceError) as caught:
        sources.prepare_import(content, None)
    assert "U0VDUkVU" not in str(caught.value)
    assert "PRIVATE KEY-----" not in str(caught.value)
    wrong = client.V1Secret(data={"tls.pfx": base64.b64encode(b"\x30\x03\x02\x01\x01").decode()})
    with pytest.raises(sources.SourceError):
        sources.prepare_import(sources.import_content(wrong, None), PEM_TYPE)


def test_the_request_does_not_show_its_value_or_password(ca: CA) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    content, _ = _pem_content(key, [_cert(key, "leaf", ca[0], "ca")], TRADITIONAL)
    request = sources.prepare_import(content, None)
    assert "PRIVATE" not in repr(request)


class _Kube:
    def __init__(self, secret: client.V1Secret) -> None:
        self.secret = secret

    async def get_secret(self, namespace: str, name: str) -> client.V1Secret:
        return self.secret


class _Client:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    async def import_certificate(self, name: str, value: Any, **kwargs: Any) -> str:
        self.calls.append({"name": name, "value": value, **kwargs})
        return "imported"


async def test_the_import_action_converts_off_the_event_loop_and_sends_the_content_type(
    monkeypatch: pytest.MonkeyPatch, rsa_key: rsa.RSAPrivateKey, ca: CA
) -> None:
    leaf = _cert(rsa_key, "leaf", ca[0], "ca")
    key_pem = rsa_key.private_bytes(PEM, TRADITIONAL, serialization.NoEncryption())
    secret = _tls_secret(key_pem, leaf.public_bytes(PEM))
    content = sources.import_content(secret, None)
    threads: list[threading.Thread] = []
    real = sources.prepare_import

    def spy(*args: Any) -> sources.ImportRequest:
        threads.append(threading.current_thread())
        return real(*args)

    monkeypatch.setattr(sources, "prepare_import", spy)
    vault = _Client()
    performer = perform.Performer(
        kube=_Kube(secret),  # type: ignore[arg-type]
        vault=vault,  # type: ignore[arg-type]
        namespace="ns",
        owner=Owner("web", "uid"),
        resource_version=None,
    )
    policy = Policy.model_validate({"issuer": {"name": "Self"}, "subject": "CN=leaf"})
    for given, expected in ((None, PEM_TYPE), (policy, PFX_TYPE)):
        action = actions.ImportCertificate("web", "src", content.fingerprint, None, given)
        assert await performer.perform(action) == "imported"
        call = vault.calls[-1]
        assert call["content_type"] == expected
        if expected == PEM_TYPE:
            assert "BEGIN PRIVATE KEY" in call["value"]
        else:
            assert isinstance(call["value"], bytes)
    assert threads
    assert all(t is not threading.main_thread() for t in threads)
