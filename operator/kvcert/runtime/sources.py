"""Reading the Secrets a Certificate points at: its output Secret, mergeFrom and importFrom.

Reconcile sees only facts (exists, which content by fingerprint); the content itself is read
again, and checked against the fingerprint, only by the action that uses it.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from dataclasses import field as dataclass_field

from kubernetes import client

from kvcert.reconcile.facts import SecretFacts, SourceFacts
from kvcert.runtime.kube import (
    MANAGED_BY,
    UID_ANNOTATION,
    VERSION_ANNOTATION,
    X5T_ANNOTATION,
)

PFX_KEYS = ("tls.pfx", "certificate.pfx")
_CERT_BLOCK = re.compile(
    rb"-----BEGIN CERTIFICATE-----\r?\n(.*?)-----END CERTIFICATE-----", re.DOTALL
)


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
    )


def chain_der(pem: bytes) -> list[bytes]:
    """The certificates of a PEM chain as DER, in order (leaf first, as users paste it)."""
    blocks = _CERT_BLOCK.findall(pem)
    try:
        return [base64.b64decode(b"".join(block.split())) for block in blocks]
    except ValueError:
        raise SourceError("tls.crt holds a certificate block that is not base64") from None


def merge_facts(secret: client.V1Secret | None) -> SourceFacts:
    if secret is None:
        return SourceFacts.absent()
    pem = _data(secret).get("tls.crt", b"")
    if not _CERT_BLOCK.search(pem):
        return SourceFacts(exists=True)
    return SourceFacts(exists=True, fingerprint=fingerprint(pem), chain_pem_length=len(pem))


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
        password = data[password_key].decode("utf-8").strip()
    for key in PFX_KEYS:
        if key in data:
            return ImportContent("pfx", data[key], password, fingerprint(data[key]))
    crt, key_pem = data.get("tls.crt"), data.get("tls.key")
    if crt and key_pem and _CERT_BLOCK.search(crt):
        pem = key_pem.rstrip(b"\n") + b"\n" + crt
        return ImportContent("pem", pem.decode("ascii", "replace"), None, fingerprint(pem))
    raise SourceError("importFrom Secret holds neither tls.pfx nor tls.crt with tls.key")


def import_facts(secret: client.V1Secret | None, password_key: str | None) -> SourceFacts:
    if secret is None:
        return SourceFacts.absent()
    try:
        content = import_content(secret, password_key)
    except SourceError:
        return SourceFacts(exists=True)
    return SourceFacts(exists=True, fingerprint=content.fingerprint, format=content.format)
