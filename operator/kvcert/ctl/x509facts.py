"""Public facts of certificates, CSRs and TLS Secrets, decoded locally (pure, no I/O).

A private key is loaded only to compare its public half with a certificate's; neither the key
nor anything derived from it but that yes/no leaves this module. Serials are upper-case hex
(as the Azure portal, openssl and status.certificate.serialNumber show them), x5t is Key
Vault's thumbprint: base64url, unpadded, of the SHA-1 of the DER (RFC 7517 4.8).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from kvcert import chain as chains

_DER = serialization.Encoding.DER
_PEM = serialization.Encoding.PEM
_SPKI = serialization.PublicFormat.SubjectPublicKeyInfo


class ChainRefused(ValueError):
    """The chain cannot be merged for this CSR; the message says why and names no content."""


def x5t(cert: x509.Certificate) -> str:
    digest = hashlib.sha1(cert.public_bytes(_DER), usedforsecurity=False).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def serial(cert: x509.Certificate) -> str:
    """Upper-case hex, an even number of digits (`0A1B...`)."""
    text = f"{cert.serial_number:X}"
    return text.zfill(len(text) + len(text) % 2)


def sans(extensions: x509.Extensions) -> list[str]:
    """DNS names, IPs, e-mails and URIs of the subjectAltName extension, prefixed by kind."""
    try:
        names = extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    found = [f"DNS:{n}" for n in names.get_values_for_type(x509.DNSName)]
    found += [f"IP:{n}" for n in names.get_values_for_type(x509.IPAddress)]
    found += [f"email:{n}" for n in names.get_values_for_type(x509.RFC822Name)]
    found += [f"URI:{n}" for n in names.get_values_for_type(x509.UniformResourceIdentifier)]
    return found


def certificate_facts(cert: x509.Certificate) -> dict[str, Any]:
    """subject, issuer, sans, serialNumber, x5t, notBefore, notAfter (RFC 3339, UTC)."""
    return {
        "subject": cert.subject.rfc4514_string(),
        "sans": sans(cert.extensions),
        "issuer": cert.issuer.rfc4514_string(),
        "serialNumber": serial(cert),
        "x5t": x5t(cert),
        "notBefore": _iso(cert.not_valid_before_utc),
        "notAfter": _iso(cert.not_valid_after_utc),
    }


def csr_facts(csr: x509.CertificateSigningRequest) -> dict[str, Any]:
    return {"subject": csr.subject.rfc4514_string(), "sans": sans(csr.extensions)}


def load_csr(pem: str | bytes) -> x509.CertificateSigningRequest:
    """Raises ValueError when `pem` holds no CSR."""
    return x509.load_pem_x509_csr(pem.encode() if isinstance(pem, str) else pem)


def load_certificates(pem: bytes) -> list[x509.Certificate]:
    """Every CERTIFICATE block of `pem`, in order. Raises ValueError when there is none."""
    return x509.load_pem_x509_certificates(pem)


def _public_der(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(_DER, _SPKI)


def key_matches(key_pem: bytes, cert: x509.Certificate) -> bool | None:
    """Whether the PEM private key is the certificate's; None when it cannot be read (an
    encrypted or malformed key). The key itself is dropped at once."""
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        return None
    return _public_der(key.public_key()) == _public_der(cert.public_key())


@dataclass(frozen=True)
class CheckedChain:
    """A chain fit to merge: `pem` is the path leaf first, then what does not link."""

    pem: bytes
    leaf: x509.Certificate
    length: int
    unlinked: int


def check_chain(pem: bytes, csr: x509.CertificateSigningRequest, now: datetime) -> CheckedChain:
    """Order `pem` leaf first for the CSR's key (kvcert.chain) and check every certificate on
    the path is valid at `now`. Raises ChainRefused: no certificate, none for the CSR's key,
    a certificate not yet or no longer valid."""
    try:
        certs = load_certificates(pem)
    except ValueError as error:
        raise ChainRefused("the file holds no PEM certificate") from error
    try:
        ordered = chains.order(certs, csr.public_key())
    except chains.ChainError as error:
        raise ChainRefused(
            "no certificate in the chain is for the CSR's public key (was another CSR signed?)"
        ) from error
    for cert in ordered.path:
        name = cert.subject.rfc4514_string()
        if cert.not_valid_before_utc > now:
            raise ChainRefused(f"{name} is not valid before {_iso(cert.not_valid_before_utc)}")
        if cert.not_valid_after_utc <= now:
            raise ChainRefused(f"{name} expired at {_iso(cert.not_valid_after_utc)}")
    body = b"".join(c.public_bytes(_PEM) for c in (*ordered.path, *ordered.unlinked))
    return CheckedChain(body, ordered.leaf, len(ordered.path), len(ordered.unlinked))


def secret_facts(secret_type: str, data: Mapping[str, str]) -> dict[str, Any]:
    """Facts of a Secret's base64 `data`: type, keys (sorted), the leaf of tls.crt (its
    certificate_facts), chainLength, and keyMatchesLeaf (true/false, null when there is no
    tls.key, its key cannot be read, or there is no leaf). `error` says what did not decode."""
    facts: dict[str, Any] = {"type": secret_type, "keys": sorted(data)}
    try:
        crt = base64.b64decode(data.get("tls.crt", ""), validate=True)
        certs = load_certificates(crt) if crt else []
    except (binascii.Error, ValueError):
        facts.update(leaf=None, chainLength=0, keyMatchesLeaf=None)
        facts["error"] = "tls.crt holds no PEM certificate"
        return facts
    if not certs:
        facts.update(leaf=None, chainLength=0, keyMatchesLeaf=None)
        return facts
    facts["leaf"] = certificate_facts(certs[0])
    facts["chainLength"] = len(certs)
    match = None
    if "tls.key" in data:
        try:
            match = key_matches(base64.b64decode(data["tls.key"], validate=True), certs[0])
        except binascii.Error:
            match = None
    facts["keyMatchesLeaf"] = match
    return facts


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
