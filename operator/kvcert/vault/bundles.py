"""Certificates with their keys: PKCS#12/PEM import and export, x5c chains, version records.

The functions here are synchronous and CPU-bound (PKCS#12 encoding, RSA key loading): the service
runs them in a worker thread. Errors are `CryptoInputError` or `BadParameter` with fixed texts,
never with the material itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from kvcert.vault import crypto
from kvcert.vault.crypto import (
    CertSpec,
    CryptoInputError,
    KeySpec,
    PrivateKey,
    cert_info,
    der_to_pem,
    key_from_pem,
    key_to_pem,
    public_der,
)
from kvcert.vault.errors import bad_parameter

PEM_CONTENT_TYPE = "application/x-pem-file"
X5C_PARSE = "Unable to parse X5c certificate chain and locate leaf certificate"
KEY_MISMATCH = "Public key from x509 certificate and key of this instance doesn't match"
POLICY_INVALID = "Property policy has invalid value"
PEM_FORMAT = (
    "The specified PEM X.509 certificate content is in an unexpected format. "
    "Please check if certificate is in valid PEM format."
)
PFX_FORMAT = (
    "The specified PKCS#12 X.509 certificate content can not be read. "
    "Please check if certificate is in valid PKCS#12 format."
)
_PEM_LABEL = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")
_PKCS8 = frozenset((b"PRIVATE KEY", b"ENCRYPTED PRIVATE KEY"))
_NOT_PKCS8 = frozenset((b"RSA PRIVATE KEY", b"EC PRIVATE KEY", b"DSA PRIVATE KEY"))
Doc = dict[str, Any]


@dataclass(frozen=True)
class Bundle:
    """A private key with its leaf and chain, as imported or issued.

    `chain_der` keeps the order the certificates were given in; `leaf_index` is where the leaf
    stood among them (0 when unknown). The secret puts the leaf there only for a version made
    with `preserveCertOrder: true` (see `ordered`).
    """

    key_pem: bytes
    leaf_der: bytes
    chain_der: tuple[bytes, ...]
    leaf_index: int = 0

    def ordered(self) -> tuple[bytes, ...]:
        """All certificates, the leaf at `leaf_index` and the chain around it in given order."""
        at = min(max(self.leaf_index, 0), len(self.chain_der))
        return (*self.chain_der[:at], self.leaf_der, *self.chain_der[at:])


def order_chain(key: PrivateKey, certs: list[bytes]) -> tuple[bytes, tuple[bytes, ...], int]:
    """Find the leaf whose public key matches `key`: the leaf, the rest in given order, and
    the leaf's index among `certs`."""
    wanted = public_der(key)
    for i, der in enumerate(certs):
        if public_der(cert_info(der)) == wanted:
            return der, tuple(c for j, c in enumerate(certs) if j != i), i
    raise CryptoInputError(KEY_MISMATCH)


def _pfx_leaf_index(data: bytes, leaf: bytes, chain: tuple[bytes, ...]) -> int:
    """Where the leaf's certificate bag stood among the PKCS#12's certificate bags.

    The PKCS#12 reader returns the key's certificate apart from the others (those in bag
    order), so its position is found from the file itself: when every certificate's DER is
    present verbatim (certificate bags not encrypted), their offsets give the uploaded order.
    In an encrypted SafeContents they are not visible: the leaf is then taken as first (0).
    """
    where = [data.find(der) for der in (leaf, *chain)]
    if any(w < 0 for w in where) or len(set(where)) != len(where):
        return 0
    return sum(1 for w in where[1:] if w < where[0])


def load_pfx(data: bytes, password: str | None) -> Bundle:
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(
            data, password.encode() if password else None
        )
    except ValueError as exc:
        raise CryptoInputError(PFX_FORMAT) from exc
    if key is None or cert is None:
        raise CryptoInputError(PFX_FORMAT)
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise CryptoInputError("Only RSA and EC keys are supported.")
    leaf = cert.public_bytes(serialization.Encoding.DER)
    if public_der(cert) != public_der(key):
        raise CryptoInputError(KEY_MISMATCH)
    chain = tuple(c.public_bytes(serialization.Encoding.DER) for c in extra or [])
    return Bundle(key_to_pem(key), leaf, chain, _pfx_leaf_index(data, leaf, chain))


def load_pem_bundle(text: bytes, password: str | None) -> Bundle:
    """PEM text holding X.509 certificates and one PKCS#8 key (encrypted only with `password`).

    Key Vault "will only accept a key in PKCS#8 format" (ImportCertificate): a PKCS#1
    (`RSA PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`) block is refused like any malformed PEM.
    """
    labels = set(_PEM_LABEL.findall(text))
    if labels & _NOT_PKCS8 or not labels & _PKCS8:
        raise CryptoInputError(PEM_FORMAT)
    try:
        certs = x509.load_pem_x509_certificates(text)
    except ValueError as exc:
        raise CryptoInputError(PEM_FORMAT) from exc
    key_block = _pem_key_block(text)
    if key_block is None:
        raise CryptoInputError(PEM_FORMAT)
    try:
        key = serialization.load_pem_private_key(key_block, password.encode() if password else None)
    except (ValueError, TypeError) as exc:
        raise CryptoInputError(PEM_FORMAT) from exc
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise CryptoInputError("Only RSA and EC keys are supported.")
    ders = [c.public_bytes(serialization.Encoding.DER) for c in certs]
    leaf, chain, index = order_chain(key, ders)
    return Bundle(key_to_pem(key), leaf, chain, index)


def _pem_key_block(text: bytes) -> bytes | None:
    for label in sorted(_PKCS8):
        begin = text.find(b"-----BEGIN " + label + b"-----")
        if begin >= 0:
            end_marker = b"-----END " + label + b"-----"
            end = text.find(end_marker, begin)
            if end >= 0:
                return text[begin : end + len(end_marker)] + b"\n"
    return None


def export_secret(bundle: Bundle, content_type: str) -> str:
    """The secret value Key Vault serves: base64 PKCS#12 (no password) or PEM text.

    The certificates come in `bundle.ordered()` order (the leaf first unless the version keeps
    its uploaded order). PEM: the key, then the certificate blocks in that order. PKCS#12: the
    certificate bags in that order; with the leaf first its bag carries the key's localKeyId,
    as usual. With the leaf elsewhere no bag does (the format's writer here can only tie the
    key to a certificate it puts first): readers that pair the key with the certificate it
    certifies (OpenSSL's PKCS12_parse, Python's `cryptography`) still find the leaf, readers
    that pair only by localKeyId do not.
    """
    key = key_from_pem(bundle.key_pem)
    ordered = bundle.ordered()
    if content_type == "application/x-pem-file":
        parts = [bundle.key_pem] + [der_to_pem(d) for d in ordered]
        return b"".join(parts).decode()
    certs = [x509.load_der_x509_certificate(d) for d in ordered]
    if ordered[0] == bundle.leaf_der:
        leaf: x509.Certificate | None = certs[0]
        cas = certs[1:]
    else:
        leaf, cas = None, certs
    pfx = pkcs12.serialize_key_and_certificates(
        None, key, leaf, cas or None, serialization.NoEncryption()
    )
    return crypto.b64(pfx)


def public_cert_spec(der: bytes) -> CertSpec:
    """Read back a policy's x509 content from an imported certificate."""
    cert = cert_info(der)
    dns: list[str] = []
    emails: list[str] = []
    ekus: list[str] = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = san.get_values_for_type(x509.DNSName)
        emails = san.get_values_for_type(x509.RFC822Name)
    except x509.ExtensionNotFound:
        pass
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        ekus = [o.dotted_string for o in eku]
    except x509.ExtensionNotFound:
        pass
    span = cert.not_valid_after_utc - cert.not_valid_before_utc
    months = max(1, round(span.days / 30.4))
    return CertSpec(
        subject=cert.subject.rfc4514_string(),
        dns_names=tuple(dns),
        emails=tuple(emails),
        ekus=tuple(ekus),
        validity_months=months,
    )


def key_spec_of(key_pem: bytes) -> KeySpec:
    key = key_from_pem(key_pem)
    if isinstance(key, rsa.RSAPrivateKey):
        return KeySpec("RSA", key.key_size)
    names = {v.name: k for k, v in crypto.CURVES.items()}
    return KeySpec("EC", key.curve.key_size, names.get(key.curve.name, "P-256"))


def key_and_csr(spec: KeySpec, cert: CertSpec, key_pem: bytes | None) -> tuple[bytes, bytes]:
    """A new key (or the reused `key_pem`) and its CSR: the slow part of a create."""
    key = crypto.key_from_pem(key_pem) if key_pem else crypto.generate_key(spec)
    return crypto.key_to_pem(key), crypto.make_csr(key, cert)


def version_doc(
    leaf: bytes,
    chain: tuple[bytes, ...],
    *,
    enabled: bool,
    tags: dict[str, str] | None,
    content_type: str,
    now: float,
    preserve_order: bool = False,
    leaf_index: int = 0,
) -> Doc:
    """A version record; `leaf_index` (the leaf's place in the given order) is kept only when
    the version preserves its certificates' order."""
    info = crypto.cert_info(leaf)
    return {
        "x5t": crypto.x5t(leaf),
        "cer": crypto.b64(leaf),
        "chain": [crypto.b64(c) for c in chain],
        "nbf": int(info.not_valid_before_utc.timestamp()),
        "exp": int(info.not_valid_after_utc.timestamp()),
        "enabled": enabled,
        "tags": tags or {},
        "content_type": content_type,
        "created": now,
        "updated": now,
        "preserve_order": preserve_order,
        "leaf_index": leaf_index if preserve_order else 0,
    }


def import_shape(value: str) -> tuple[str, bytes]:
    """Whether an import's `value` is PEM (text, or base64 of PEM text) or a PKCS#12 blob.

    Cheap (one base64 decode of at most 1 MiB): the service decides on it before any key work.
    """
    text = value.strip()
    if "-----BEGIN" in text:
        return "pem", text.encode()
    raw = crypto.b64decode_strict(text)
    if b"-----BEGIN" in raw:
        return "pem", raw
    return "pfx", raw


def check_import_content_type(shape: str, content_type: str | None) -> None:
    """Key Vault reads `value` as the policy's `secret_props.contentType` says.

    PEM needs `application/x-pem-file` (without a policy, or with any other content type, the
    policy is what Key Vault names as wrong); a PKCS#12 blob under the PEM content type is read
    as PEM and fails as malformed PEM. Raises `CryptoInputError` with Key Vault's texts.
    """
    if shape == "pem" and content_type != PEM_CONTENT_TYPE:
        raise CryptoInputError(POLICY_INVALID)
    if shape == "pfx" and content_type == PEM_CONTENT_TYPE:
        raise CryptoInputError(PEM_FORMAT)


def parse_import(value: str, password: str | None, content_type: str | None) -> Bundle:
    """An import's `value` (PEM text, base64 of PEM text, or base64 PKCS#12) under its policy's
    content type: the key, leaf and chain, or `CryptoInputError` with Key Vault's text."""
    shape, raw = import_shape(value)
    check_import_content_type(shape, content_type)
    if shape == "pem":
        return load_pem_bundle(raw, password)
    return load_pfx(raw, password)


def parse_x5c(items: list[str]) -> list[bytes]:
    """Leaf first; each item base64 DER or base64 of PEM text (possibly several certificates)."""
    if not items:
        raise bad_parameter(X5C_PARSE)
    certs: list[bytes] = []
    try:
        for item in items:
            certs.extend(crypto.split_certificates(crypto.b64decode_strict(item)))
    except crypto.CryptoInputError as exc:
        raise bad_parameter(X5C_PARSE) from exc
    if not certs:
        raise bad_parameter(X5C_PARSE)
    return certs


def locate_leaf(
    certs: list[bytes], key_pem: bytes, *, anywhere: bool
) -> tuple[bytes, tuple[bytes, ...], int]:
    """A merged x5c's leaf (the certificate of the pending key), the rest in given order, and
    the leaf's index. Leaf first, as always, unless the create asked `preserveCertOrder: true`:
    then the leaf may stand anywhere and its place is kept. `CryptoInputError(KEY_MISMATCH)`."""
    if not anywhere:
        if not same_key(certs[0], key_pem):
            raise CryptoInputError(KEY_MISMATCH)
        return certs[0], tuple(certs[1:]), 0
    return order_chain(key_from_pem(key_pem), certs)


def same_key(leaf: bytes, key_pem: bytes) -> bool:
    """Whether a merged leaf certifies the pending key (compared as SubjectPublicKeyInfo)."""
    return crypto.public_der(crypto.cert_info(leaf)) == crypto.public_der(
        crypto.key_from_pem(key_pem)
    )
