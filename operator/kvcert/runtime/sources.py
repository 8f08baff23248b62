"""Reading the Secrets a Certificate points at: its output Secret, mergeFrom and importFrom.

Reconcile sees only facts (exists, which content by fingerprint); the content itself is read
again, and checked against the fingerprint, only by the action that uses it.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from kubernetes_asyncio import client

from kvcert import chain
from kvcert.reconcile.facts import SecretFacts, SourceFacts
from kvcert.runtime.kube import (
    DATA_HASH_ANNOTATION,
    MANAGED_BY,
    OUTPUT_HASH_ANNOTATION,
    SOURCE_LABEL,
    UID_ANNOTATION,
    VERSION_ANNOTATION,
    X5T_ANNOTATION,
)

PFX_KEYS = ("tls.pfx", "certificate.pfx")
_CERT_BLOCK = re.compile(
    rb"-----BEGIN CERTIFICATE-----\r?\n(.*?)-----END CERTIFICATE-----", re.DOTALL
)

_KEY_BLOCK = re.compile(
    rb"-----BEGIN ([A-Z ]*)PRIVATE KEY-----\r?\n.*?-----END \1PRIVATE KEY-----\r?\n?", re.DOTALL
)
_CERT_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", re.DOTALL)
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


class SourceError(ValueError):
    """A source Secret is unusable; the message names keys, never content."""


def _data(secret: client.V1Secret) -> dict[str, bytes]:
    return {key: base64.b64decode(value) for key, value in (secret.data or {}).items()}


def field(secret: client.V1Secret, key: str) -> bytes:
    """One key of a Secret, decoded; a missing key is a SourceError naming it."""
    value = _data(secret).get(key)
    if not value:
        raise SourceError(f"Secret has no key {key}")
    return value


def fingerprint(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def data_hash(data: Mapping[str, Any] | None) -> str:
    """sha256 (hex, first 32 chars) of a Secret's `data` (base64 values, as the API has them):
    over the sorted keys and the decoded values, each length-prefixed so that no two different
    maps hash alike. Written as the `kvcert.io/data-hash` annotation with the output Secret."""
    digest = hashlib.sha256()
    for key in sorted(data or {}):
        value = base64.b64decode((data or {})[key] or "")
        for part in (key.encode(), value):
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
    return digest.hexdigest()[:32]


def intact(annotations: Mapping[str, str] | None, data: Mapping[str, Any] | None) -> bool:
    """Whether an output Secret still holds what the operator wrote: its data hash annotation is
    absent (a Secret written before kvcert recorded one) or matches `data`."""
    recorded = (annotations or {}).get(DATA_HASH_ANNOTATION)
    if recorded is None:
        return True
    try:
        return data_hash(data) == recorded
    except ValueError:  # a value that is not base64 cannot be what the operator wrote
        return False


def output_facts(secret: client.V1Secret | None, uid: str) -> SecretFacts:
    if secret is None:
        return SecretFacts.absent()
    meta = secret.metadata or client.V1ObjectMeta()
    labels = meta.labels or {}
    annotations = meta.annotations or {}
    owned = any(ref.uid == uid for ref in meta.owner_references or [])
    ours = labels.get(MANAGED_BY) == "kvcert" and (annotations.get(UID_ANNOTATION) == uid or owned)
    return SecretFacts(
        exists=True,
        ours=ours,
        x5t=annotations.get(X5T_ANNOTATION) if ours else None,
        version=annotations.get(VERSION_ANNOTATION) if ours else None,
        output_hash=annotations.get(OUTPUT_HASH_ANNOTATION) if ours else None,
        intact=intact(annotations, secret.data) if ours else True,
    )


class OutputWrite(enum.Enum):
    """How WriteSecret writes the output Secret (`output_write`)."""

    CREATE = "create"
    """No Secret of that name: create it."""
    REPLACE = "replace"
    """Ours and of the wanted type: one update, under its resourceVersion."""
    RECREATE = "recreate"
    """Ours, of another type (Opaque <-> kubernetes.io/tls, when the key's exportability
    changed): Kubernetes refuses to change `type` in place, so delete it under a precondition
    on its resourceVersion and create it anew, in the same WriteSecret."""
    REFUSE = "refuse"
    """Someone else's: a SecretConflict, never written over nor deleted."""


def output_write(ours: bool | None, current_type: str | None, wanted_type: str) -> OutputWrite:
    """How to write the output Secret, from what is known of it. Pure.

    `ours`: None when no Secret has the name, else whether it is this Certificate's
    (`output_facts`, `KnownSecret.facts`: the managed-by label with the uid annotation or an
    ownerReference); `current_type` its `type` (None or "" read as "Opaque", the API server's
    default); `wanted_type` the type of the data to write (`TlsData.secret_type`). Ownership
    alone decides a refusal: a Secret that is ours is never refused because of its type or its
    keys (issue #19 follow-up); Kubernetes keeps `type` immutable, hence RECREATE.
    """
    if ours is None:
        return OutputWrite.CREATE
    if not ours:
        return OutputWrite.REFUSE
    if (current_type or "Opaque") != wanted_type:
        return OutputWrite.RECREATE
    return OutputWrite.REPLACE


def chain_der(pem: bytes) -> list[bytes]:
    """The certificates of a PEM chain as DER, in order (leaf first, as users paste it)."""
    blocks = _CERT_BLOCK.findall(pem)
    try:
        return [base64.b64decode(b"".join(block.split())) for block in blocks]
    except ValueError:
        raise SourceError("tls.crt holds a certificate block that is not base64") from None


def watched(secret: client.V1Secret) -> bool:
    """Labelled `kvcert.io/source: "true"`: the operator's source watch sees its changes."""
    labels = (secret.metadata.labels if secret.metadata else None) or {}
    return labels.get(SOURCE_LABEL) == "true"


def leaf_x5t(pem: bytes) -> str | None:
    """x5t of the chain's leaf: base64url (no padding) of the SHA-1 of its DER, the leaf as
    kvcert.chain orders the chain (the one kvcert merges first); None for unreadable PEM."""
    try:
        certs = [x509.load_der_x509_certificate(der) for der in chain_der(pem)]
        leaf = chain.order(certs).leaf
    except ValueError:  # SourceError, ChainError, or a certificate that cannot be read
        return None
    der = leaf.public_bytes(serialization.Encoding.DER)
    sha1 = hashlib.sha1(der, usedforsecurity=False).digest()
    return base64.urlsafe_b64encode(sha1).rstrip(b"=").decode("ascii")


def merge_facts(secret: client.V1Secret | None) -> SourceFacts:
    if secret is None:
        return SourceFacts.absent()
    pem = _data(secret).get("tls.crt", b"")
    if not _CERT_BLOCK.search(pem):
        return SourceFacts(exists=True, watched=watched(secret))
    return SourceFacts(
        exists=True,
        fingerprint=fingerprint(pem),
        chain_pem_length=len(pem),
        watched=watched(secret),
        leaf_x5t=leaf_x5t(pem),
    )


@dataclass(frozen=True)
class ImportContent:
    """What importFrom holds, ready for Key Vault's import call."""

    format: str
    value: str | bytes = dataclass_field(repr=False)
    password: str | None = dataclass_field(default=None, repr=False)
    fingerprint: str = ""


def import_content(secret: client.V1Secret, password_key: str | None) -> ImportContent:
    data = _data(secret)
    password = None
    if password_key is not None:
        if password_key not in data:
            raise SourceError(f"importFrom Secret has no key {password_key}")
        try:
            password = data[password_key].decode("utf-8").strip()
        except UnicodeDecodeError:
            raise SourceError(f"importFrom Secret: key {password_key} is not UTF-8 text") from None
    for key in PFX_KEYS:
        if key in data:
            return ImportContent("pfx", data[key], password, fingerprint(data[key]))
    crt, key_pem = data.get("tls.crt"), data.get("tls.key")
    if crt and key_pem and _CERT_BLOCK.search(crt):
        pem = key_pem.rstrip(b"\n") + b"\n" + crt
        return ImportContent("pem", pem.decode("ascii", "replace"), None, fingerprint(pem))
    raise SourceError("importFrom Secret holds neither tls.pfx nor tls.crt with tls.key")


@dataclass(frozen=True)
class ImportRequest:
    """The import as Key Vault accepts it: `value` read as `content_type` says."""

    value: str | bytes = dataclass_field(repr=False)
    password: str | None = dataclass_field(repr=False)
    content_type: str


PEM_TYPE = "application/x-pem-file"
PKCS12_TYPE = "application/x-pkcs12"
_PKCS8_LABELS = (b"-----BEGIN PRIVATE KEY-----", b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
_UNREADABLE_KEY = "importFrom Secret: tls.key is not a readable, unencrypted RSA or EC private key"
_UNREADABLE_PFX = "importFrom Secret: the PFX cannot be read (wrong password or not PKCS#12)"


def prepare_import(content: ImportContent, content_type: str | None) -> ImportRequest:
    """Turn importFrom's content into what Key Vault imports, under `content_type` (the
    Certificate's `spec.policy.contentType`; None without a policy: the source's own format).

    Key Vault reads PEM only under `application/x-pem-file` and "will only accept a key in
    PKCS#8 format": a PKCS#1 (`RSA PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`) key, what
    cert-manager and openssl write by default, is converted; a PKCS#8 PEM is passed through
    unparsed. A PEM pair asked to be stored as PKCS#12 becomes a PFX, and a PFX asked to be
    stored as PEM becomes PEM. CPU-bound (key parsing, PKCS#12): run it off the event loop.
    Errors are `SourceError`s naming keys, never content.
    """
    wanted = content_type or (PEM_TYPE if content.format == "pem" else PKCS12_TYPE)
    if content.format == "pfx":
        if wanted == PKCS12_TYPE:
            return ImportRequest(content.value, content.password, PKCS12_TYPE)
        key, leaf, chain = _load_pfx(_as_bytes(content.value), content.password)
        return ImportRequest(_pem(key, [leaf, *chain]).decode("ascii"), None, PEM_TYPE)
    text = _as_bytes(content.value)
    if wanted == PEM_TYPE:
        return ImportRequest(_pkcs8_pem(text).decode("ascii"), None, PEM_TYPE)
    key, leaf, chain = _load_pem_pair(text)
    blob = pkcs12.serialize_key_and_certificates(
        None, key, leaf, chain or None, serialization.NoEncryption()
    )
    return ImportRequest(blob, None, PKCS12_TYPE)


def _as_bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("ascii", "replace")


def _key_block(text: bytes) -> tuple[bytes, bytes]:
    """tls.key's PEM block and the certificates, from the `key + chain` PEM import_content made."""
    match = _KEY_BLOCK.search(text)
    if match is None:
        raise SourceError(_UNREADABLE_KEY)
    return match.group(0), text[: match.start()] + text[match.end() :]


def _pkcs8_pem(text: bytes) -> bytes:
    """The key as PKCS#8 (a PKCS#8 block unchanged), then the certificate blocks only (an
    `EC PARAMETERS` block that openssl writes before a SEC1 key is left out)."""
    block, rest = _key_block(text)
    key_pem = block if block.startswith(_PKCS8_LABELS) else _pem(_load_key(block), [])
    certs = _CERT_PEM.findall(rest)
    if not certs:
        raise SourceError("importFrom Secret: tls.crt holds no certificate")
    return key_pem.rstrip(b"\r\n") + b"\n" + b"\n".join(certs) + b"\n"


def _load_key(block: bytes) -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(block, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise SourceError(_UNREADABLE_KEY) from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise SourceError(_UNREADABLE_KEY)
    return key


def _load_pem_pair(text: bytes) -> tuple[PrivateKey, x509.Certificate, list[x509.Certificate]]:
    block, rest = _key_block(text)
    key = _load_key(block)
    try:
        certs = x509.load_pem_x509_certificates(rest)
    except ValueError:
        raise SourceError("importFrom Secret: tls.crt holds no readable certificate") from None
    return (key, *_leaf_first(key, certs))


def _load_pfx(
    blob: bytes, password: str | None
) -> tuple[PrivateKey, x509.Certificate, list[x509.Certificate]]:
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(
            blob, password.encode() if password else None
        )
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise SourceError(_UNREADABLE_PFX) from None
    if cert is None or not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise SourceError(_UNREADABLE_PFX)
    return key, cert, list(extra or [])


def _leaf_first(
    key: PrivateKey, certs: list[x509.Certificate]
) -> tuple[x509.Certificate, list[x509.Certificate]]:
    """The certificate of `key`, then its issuers in order, then what does not link (Key Vault
    keeps every certificate imported): the one chain order of kvcert.chain (issue #14)."""
    try:
        ordered = chain.order(certs, key.public_key())
    except chain.ChainError:
        raise SourceError("importFrom Secret: no certificate in tls.crt matches tls.key") from None
    return ordered.leaf, [*ordered.path[1:], *ordered.unlinked]


def _spki(item: PrivateKey | x509.Certificate) -> bytes:
    return item.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _pem(key: PrivateKey, certs: list[x509.Certificate]) -> bytes:
    out = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return out + b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def import_facts(secret: client.V1Secret | None, password_key: str | None) -> SourceFacts:
    if secret is None:
        return SourceFacts.absent()
    try:
        content = import_content(secret, password_key)
    except SourceError as error:  # its texts name keys, never values
        return SourceFacts(exists=True, watched=watched(secret), problem=str(error))
    return SourceFacts(
        exists=True,
        fingerprint=content.fingerprint,
        format=content.format,
        watched=watched(secret),
    )
