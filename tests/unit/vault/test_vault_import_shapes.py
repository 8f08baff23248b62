"""How the vault reads an import's `value` under its content type (issue 14): one row per shape."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from kvcert.vault import bundles
from kvcert.vault.crypto import CryptoInputError

PEM_TYPE = "application/x-pem-file"
PFX_TYPE = "application/x-pkcs12"
KEY = ec.generate_private_key(ec.SECP256R1())
_NAME = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "shape.example.com")])
_NOW = dt.datetime.now(dt.UTC)
CERT = (
    x509.CertificateBuilder()
    .subject_name(_NAME)
    .issuer_name(_NAME)
    .public_key(KEY.public_key())
    .serial_number(1)
    .not_valid_before(_NOW)
    .not_valid_after(_NOW + dt.timedelta(days=1))
    .sign(KEY, hashes.SHA256())
)
CERT_PEM = CERT.public_bytes(serialization.Encoding.PEM)


def _key(fmt: serialization.PrivateFormat, password: bytes | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return KEY.private_bytes(serialization.Encoding.PEM, fmt, encryption)


PKCS8_PEM = (_key(serialization.PrivateFormat.PKCS8) + CERT_PEM).decode()
SEC1_PEM = (_key(serialization.PrivateFormat.TraditionalOpenSSL) + CERT_PEM).decode()
ENCRYPTED_PEM = (_key(serialization.PrivateFormat.PKCS8, b"pw") + CERT_PEM).decode()
PFX = base64.b64encode(
    pkcs12.serialize_key_and_certificates(None, KEY, CERT, None, serialization.NoEncryption())
).decode()


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


ACCEPTED = [
    ("PKCS#8 PEM text under the PEM type", PKCS8_PEM, None, PEM_TYPE),
    ("base64 of PKCS#8 PEM under the PEM type", _b64(PKCS8_PEM), None, PEM_TYPE),
    ("encrypted PKCS#8 PEM with its password", ENCRYPTED_PEM, "pw", PEM_TYPE),
    ("PKCS#12 without a content type", PFX, None, None),
    ("PKCS#12 under the PKCS#12 type", PFX, None, PFX_TYPE),
]
REFUSED = [
    ("PEM without a content type", PKCS8_PEM, None, None, bundles.POLICY_INVALID),
    ("PEM under the PKCS#12 type", _b64(PKCS8_PEM), None, PFX_TYPE, bundles.POLICY_INVALID),
    ("a SEC1 key", SEC1_PEM, None, PEM_TYPE, bundles.PEM_FORMAT),
    ("an encrypted key without its password", ENCRYPTED_PEM, None, PEM_TYPE, bundles.PEM_FORMAT),
    ("a certificate without a key", CERT_PEM.decode(), None, PEM_TYPE, bundles.PEM_FORMAT),
    ("PKCS#12 under the PEM type", PFX, None, PEM_TYPE, bundles.PEM_FORMAT),
    ("PKCS#12 with a password it does not have", PFX, "pw", PFX_TYPE, bundles.PFX_FORMAT),
]


@pytest.mark.parametrize(("case", "value", "pwd", "ctype"), ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_accepted(case: str, value: str, pwd: str | None, ctype: str | None) -> None:
    bundle = bundles.parse_import(value, pwd, ctype)
    assert bundle.leaf_der == CERT.public_bytes(serialization.Encoding.DER)
    assert bundle.key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")


@pytest.mark.parametrize(
    ("case", "value", "pwd", "ctype", "message"), REFUSED, ids=[c[0] for c in REFUSED]
)
def test_refused(case: str, value: str, pwd: str | None, ctype: str | None, message: str) -> None:
    with pytest.raises(CryptoInputError) as caught:
        bundles.parse_import(value, pwd, ctype)
    assert str(caught.value) == message
