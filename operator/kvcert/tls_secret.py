"""Turn Key Vault's certificate secret into the data of a `kubernetes.io/tls` Secret.

Key Vault hands out a certificate with its key as base64 PKCS#12 or as PEM text (per the
policy's contentType). Ingress controllers want `tls.crt` (leaf first, then the chain),
`tls.key`, and many tools read `ca.crt`. PEM is passed through block by block without parsing
the key; PKCS#12 must be parsed, which costs milliseconds, so callers run this off the loop.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

PKCS12 = "application/x-pkcs12"
PEM = "application/x-pem-file"
_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----\r?\n?", re.DOTALL)


class TlsSecretError(ValueError):
    """The vault's secret could not be turned into TLS data; the message holds no key bytes."""


@dataclass(frozen=True)
class TlsData:
    """PEM bytes for the Secret's keys. `key` is None for a non-exportable certificate."""

    certificates: tuple[bytes, ...]
    key: bytes | None = field(default=None, repr=False)

    @property
    def tls_crt(self) -> bytes:
        return b"".join(self.certificates)

    @property
    def ca_crt(self) -> bytes:
        """The top of the chain: the root, or the leaf itself when it is self-signed."""
        return self.certificates[-1]

    def secret_data(self) -> dict[str, str]:
        """The Secret's `data`, base64 as the API wants it."""
        data = {"tls.crt": self.tls_crt, "ca.crt": self.ca_crt}
        if self.key is not None:
            data["tls.key"] = self.key
        return {name: base64.b64encode(value).decode("ascii") for name, value in data.items()}

    @property
    def secret_type(self) -> str:
        """kubernetes.io/tls demands tls.key, so a certificate without one is Opaque."""
        return "kubernetes.io/tls" if self.key is not None else "Opaque"


def _normalise(block: bytes) -> bytes:
    return block.replace(b"\r\n", b"\n").rstrip(b"\n") + b"\n"


def from_pem(text: str | bytes) -> TlsData:
    """Split Key Vault's PEM secret (key and certificates, any order) without parsing the key."""
    raw = text.encode("ascii", "replace") if isinstance(text, str) else text
    certificates: list[bytes] = []
    key: bytes | None = None
    for match in _BLOCK.finditer(raw):
        label = match.group(1)
        if label == b"CERTIFICATE":
            certificates.append(_normalise(match.group(0)))
        elif label.endswith(b"PRIVATE KEY") and key is None:
            key = _normalise(match.group(0))
    if not certificates:
        raise TlsSecretError("the PEM secret holds no certificate")
    return TlsData(certificates=tuple(certificates), key=key)


def from_pkcs12(value_b64: str, password: bytes | None = None) -> TlsData:
    """Parse base64 PKCS#12 into PEM: leaf first, then the rest of the chain."""
    try:
        blob = base64.b64decode(value_b64, validate=True)
    except (binascii.Error, ValueError):
        raise TlsSecretError("the PKCS#12 secret is not valid base64") from None
    try:
        key, leaf, extra = pkcs12.load_key_and_certificates(blob, password)
    except ValueError:
        raise TlsSecretError(
            "the PKCS#12 secret could not be read (corrupt or encrypted)"
        ) from None
    if leaf is None:
        raise TlsSecretError("the PKCS#12 secret holds no certificate")
    chain = [leaf, *_order_chain(leaf, list(extra))]
    key_pem = None
    if key is not None:
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    return TlsData(
        certificates=tuple(cert.public_bytes(serialization.Encoding.PEM) for cert in chain),
        key=key_pem,
    )


def _order_chain(leaf: x509.Certificate, rest: list[x509.Certificate]) -> list[x509.Certificate]:
    """Follow issuer links from the leaf; anything unlinked keeps its order at the end."""
    ordered: list[x509.Certificate] = []
    current = leaf
    while rest:
        parent = next((c for c in rest if c.subject == current.issuer and c != current), None)
        if parent is None:
            break
        ordered.append(parent)
        rest.remove(parent)
        current = parent
    return ordered + rest


def from_vault_secret(content_type: str, value: str) -> TlsData:
    """Dispatch on the secret's content type (Key Vault's default is PKCS#12)."""
    if content_type.lower().startswith(PEM) or value.lstrip().startswith("-----BEGIN"):
        return from_pem(value)
    return from_pkcs12(value)


def from_der(cer: bytes) -> TlsData:
    """A certificate alone (non-exportable key): tls.crt and ca.crt, no tls.key."""
    cert = x509.load_der_x509_certificate(cer)
    return TlsData(certificates=(cert.public_bytes(serialization.Encoding.PEM),))
