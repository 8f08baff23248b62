"""Turn Key Vault's certificate secret into the data of a `kubernetes.io/tls` Secret.

Key Vault hands out a certificate with its key as base64 PKCS#12 or as PEM text (per the
policy's contentType). Ingress controllers want `tls.crt` (leaf first, then the chain),
`tls.key`, and many tools read `ca.crt`. Every path orders its certificates with
`kvcert.chain.order`, so the Secret is the same whatever order Key Vault kept them in: `tls.crt`
is the leaf followed by each issuer, certificates that do not link are left out, and `ca.crt` is
`Chain.ca` (a CA certificate only: the root, else the top intermediate, else no `ca.crt` key at
all, as cert-manager; a self-signed leaf alone is its own CA). PEM is passed through block by
block without parsing the key (its certificates are parsed to order them); PKCS#12 must be
parsed, which costs milliseconds, so callers run all of this off the loop.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12

from kvcert import chain as chains

PKCS12 = "application/x-pkcs12"
PEM = "application/x-pem-file"
_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----\r?\n?", re.DOTALL)


class TlsSecretError(ValueError):
    """The vault's secret could not be turned into TLS data; the message holds no key bytes."""


@dataclass(frozen=True)
class TlsData:
    """PEM bytes for the Secret's keys. `key` is None for a non-exportable certificate;
    `ca_crt` is None when the chain names no CA (`kvcert.chain`, rule 6): no `ca.crt` then."""

    certificates: tuple[bytes, ...]
    key: bytes | None = field(default=None, repr=False)
    ca_crt: bytes | None = None

    @property
    def tls_crt(self) -> bytes:
        return b"".join(self.certificates)

    def secret_data(self, extra: Mapping[str, bytes] | None = None) -> dict[str, str]:
        """The Secret's `data`, base64 as the API wants it; `extra` from `additional_outputs`.
        `ca.crt` is left out when no CA is known (cert-manager deletes the key then, rather
        than write it empty)."""
        data = {"tls.crt": self.tls_crt}
        if self.ca_crt is not None:
            data["ca.crt"] = self.ca_crt
        if self.key is not None:
            data["tls.key"] = self.key
        data.update(extra or {})
        return {name: base64.b64encode(value).decode("ascii") for name, value in data.items()}

    @property
    def secret_type(self) -> str:
        """kubernetes.io/tls demands tls.key, so a certificate without one is Opaque."""
        return "kubernetes.io/tls" if self.key is not None else "Opaque"


COMBINED_PEM = "CombinedPEM"
DER = "DER"
KEYSTORE = "PKCS12"


def additional_outputs(
    data: TlsData, formats: Collection[str], password: bytes | None = None
) -> dict[str, bytes]:
    """cert-manager's additionalOutputFormats: `tls-combined.pem` (key then chain), `key.der`
    (the key as PKCS#8 DER), `keystore.p12` (key, leaf and chain, encrypted with `password`).

    Each needs the private key: without one (not exportable) nothing is returned. Parsing the
    key and encrypting the keystore cost milliseconds: callers run this off the loop.
    """
    if data.key is None or not formats:
        return {}
    out: dict[str, bytes] = {}
    if COMBINED_PEM in formats:
        out["tls-combined.pem"] = data.key + data.tls_crt
    if DER not in formats and KEYSTORE not in formats:
        return out
    try:
        key = serialization.load_pem_private_key(data.key, password=None)
    except (ValueError, TypeError):
        raise TlsSecretError("the private key cannot be read") from None
    if DER in formats:
        out["key.der"] = key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    if KEYSTORE in formats:
        if not password:
            raise TlsSecretError("the keystore needs a non-empty password")
        if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
            raise TlsSecretError("only RSA and EC keys go into the keystore")
        leaf, *rest = (x509.load_pem_x509_certificate(block) for block in data.certificates)
        out["keystore.p12"] = pkcs12.serialize_key_and_certificates(
            None, key, leaf, rest or None, serialization.BestAvailableEncryption(password)
        )
    return out


def _normalise(block: bytes) -> bytes:
    return block.replace(b"\r\n", b"\n").rstrip(b"\n") + b"\n"


def from_pem(text: str | bytes) -> TlsData:
    """Split Key Vault's PEM secret (key and certificates, any order) without parsing the key.

    The leaf is found by the chain's structure, not by the key (`kvcert.chain`, rule 2); each
    certificate keeps its own PEM block.
    """
    raw = text.encode("ascii", "replace") if isinstance(text, str) else text
    blocks: dict[bytes, bytes] = {}
    certificates: list[x509.Certificate] = []
    key: bytes | None = None
    for match in _BLOCK.finditer(raw):
        label = match.group(1)
        if label == b"CERTIFICATE":
            block = _normalise(match.group(0))
            try:
                cert = x509.load_pem_x509_certificate(block)
            except ValueError:
                raise TlsSecretError(
                    "the PEM secret holds a certificate that cannot be read"
                ) from None
            blocks.setdefault(cert.public_bytes(serialization.Encoding.DER), block)
            certificates.append(cert)
        elif label.endswith(b"PRIVATE KEY") and key is None:
            key = _normalise(match.group(0))
    if not certificates:
        raise TlsSecretError("the PEM secret holds no certificate")
    ordered = _order(certificates)

    def block_of(cert: x509.Certificate) -> bytes:
        return blocks[cert.public_bytes(serialization.Encoding.DER)]

    return TlsData(
        certificates=tuple(block_of(cert) for cert in ordered.path),
        key=key,
        ca_crt=block_of(ordered.ca) if ordered.ca is not None else None,
    )


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
    public = key.public_key() if key is not None else None
    ordered = _order([leaf, *extra], public)
    key_pem = None
    if key is not None:
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    return _data(ordered, key_pem)


def _data(ordered: chains.Chain, key: bytes | None = None) -> TlsData:
    """PEM of the ordered chain: tls.crt's certificates and ca.crt's (rule 6 of kvcert.chain)."""
    pem = serialization.Encoding.PEM
    return TlsData(
        certificates=tuple(cert.public_bytes(pem) for cert in ordered.path),
        key=key,
        ca_crt=ordered.ca.public_bytes(pem) if ordered.ca is not None else None,
    )


def _order(certificates: list[x509.Certificate], key: PublicKeyTypes | None = None) -> chains.Chain:
    try:
        return chains.order(certificates, key)
    except chains.ChainError as error:
        raise TlsSecretError(f"the secret's chain is unusable: {error}") from None


def is_pem(content_type: str, value: str) -> bool:
    """Whether Key Vault's secret is PEM text (by its content type, or by its first line)."""
    return content_type.lower().startswith(PEM) or value.lstrip().startswith("-----BEGIN")


def from_vault_secret(content_type: str, value: str) -> TlsData:
    """Dispatch on the secret's content type (Key Vault's default is PKCS#12)."""
    return from_pem(value) if is_pem(content_type, value) else from_pkcs12(value)


def from_der(cer: bytes) -> TlsData:
    """A certificate alone (non-exportable key): tls.crt, no tls.key; ca.crt only when the
    certificate is self-signed (Key Vault's `cer` holds the leaf without its chain)."""
    try:
        cert = x509.load_der_x509_certificate(cer)
    except ValueError:
        raise TlsSecretError("the certificate cannot be read") from None
    return _data(_order([cert]))
