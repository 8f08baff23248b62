"""What shapes the output Secret beyond tls.crt/tls.key/ca.crt: cert-manager's secretTemplate
and additionalOutputFormats, as its users know them (issue #15 §7)."""

from __future__ import annotations

import enum
import re
from typing import Annotated

from pydantic import ConfigDict, Field, model_validator

from kvcert.api.base import DNS_SUBDOMAIN_PATTERN, SECRET_KEY_PATTERN, KvModel, cel

__all__ = [
    "KEY_FORMATS",
    "UNIQUE_FORMATS_MESSAGE",
    "UNIQUE_FORMATS_RULE",
    "OutputFormat",
    "OutputFormatType",
    "SecretKeyRef",
    "SecretTemplate",
]

RESERVED_PREFIX = "kvcert.io/"
TEMPLATE_KEYS_MESSAGE = "secretTemplate may not set labels or annotations under kvcert.io/"
# Kubernetes' rules for metadata of the Secret these are copied onto (apimachinery's
# IsQualifiedName, IsValidLabelValue, ValidateAnnotationsSize): checked at apply, because the
# API server refusing the Secret later left a Certificate retrying "Unprocessable Entity".
QUALIFIED_NAME_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
LABEL_VALUE_PATTERN = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
PREFIX_MAX_LENGTH = 253
KEYS_RULE = (
    f"self.all(k, k.matches(r'{QUALIFIED_NAME_PATTERN}')"
    f" && (!k.contains('/') || k.indexOf('/') <= {PREFIX_MAX_LENGTH}))"
)
LABEL_KEYS_MESSAGE = (
    "secretTemplate.labels keys must be label keys: [prefix/]name, name 1-63 letters, digits,"
    " '-', '_' or '.', prefix a DNS subdomain"
)
ANNOTATION_KEYS_MESSAGE = (
    "secretTemplate.annotations keys must be [prefix/]name, name 1-63 letters, digits, '-', '_'"
    " or '.', prefix a DNS subdomain"
)
ANNOTATIONS_MAX_BYTES = 256 * 1024 - 4096
"""Kubernetes allows 256 KiB of annotations (keys and values, in bytes) on an object; kvcert's
own annotations on the output Secret take a few hundred bytes of the rest."""
ANNOTATIONS_SIZE_RULE = (
    f"self.map(k, size(bytes(k)) + size(bytes(self[k]))).sum() <= {ANNOTATIONS_MAX_BYTES}"
)
ANNOTATIONS_SIZE_MESSAGE = (
    f"secretTemplate.annotations may hold at most {ANNOTATIONS_MAX_BYTES} bytes of keys and"
    " values (Kubernetes' 256 KiB limit, less kvcert's own)"
)


_QUALIFIED_RE = re.compile(QUALIFIED_NAME_PATTERN)


class SecretTemplate(KvModel):
    """Labels and annotations put on the output Secret (cert-manager's secretTemplate); the
    operator's own keys always win, and keys under kvcert.io/ are refused."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "(!has(self.labels) || self.labels.all(k, !k.startsWith('kvcert.io/'))) && "
                    "(!has(self.annotations) || "
                    "self.annotations.all(k, !k.startsWith('kvcert.io/')))",
                    TEMPLATE_KEYS_MESSAGE,
                )
            ]
        }
    )

    labels: dict[str, Annotated[str, Field(max_length=63, pattern=LABEL_VALUE_PATTERN)]] | None = (
        Field(
            default=None,
            max_length=64,
            json_schema_extra={"x-kubernetes-validations": [cel(KEYS_RULE, LABEL_KEYS_MESSAGE)]},
        )
    )
    annotations: dict[str, Annotated[str, Field(max_length=ANNOTATIONS_MAX_BYTES)]] | None = Field(
        default=None,
        max_length=64,
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(KEYS_RULE, ANNOTATION_KEYS_MESSAGE),
                cel(ANNOTATIONS_SIZE_RULE, ANNOTATIONS_SIZE_MESSAGE),
            ]
        },
    )

    @model_validator(mode="after")
    def _reserved(self) -> SecretTemplate:
        for keys in (self.labels or {}, self.annotations or {}):
            if any(key.startswith(RESERVED_PREFIX) for key in keys):
                raise ValueError(TEMPLATE_KEYS_MESSAGE)
        for key in self.labels or {}:
            if not _qualified(key):
                raise ValueError(LABEL_KEYS_MESSAGE)
        annotations = self.annotations or {}
        if not all(_qualified(key) for key in annotations):
            raise ValueError(ANNOTATION_KEYS_MESSAGE)
        size = sum(len(k.encode()) + len(v.encode()) for k, v in annotations.items())
        if size > ANNOTATIONS_MAX_BYTES:
            raise ValueError(ANNOTATIONS_SIZE_MESSAGE)
        return self


def _qualified(key: str) -> bool:
    """A Kubernetes qualified name (label or annotation key), as KEYS_RULE checks it."""
    prefix, slash, _ = key.partition("/")
    return bool(_QUALIFIED_RE.fullmatch(key)) and (not slash or len(prefix) <= PREFIX_MAX_LENGTH)


class OutputFormatType(enum.StrEnum):
    COMBINED_PEM = "CombinedPEM"  # tls-combined.pem: the key, then the chain
    DER = "DER"  # key.der: the private key as DER (PKCS#8)
    PKCS12 = "PKCS12"  # keystore.p12: key and chain, encrypted with passwordSecretRef's value


KEY_FORMATS = frozenset(OutputFormatType)
"""Every additional format holds the private key, so each needs an exportable key."""


class SecretKeyRef(KvModel):
    """A key of a Secret in the Certificate's namespace."""

    name: str = Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)
    key: str = Field(min_length=1, max_length=253, pattern=SECRET_KEY_PATTERN)


PKCS12_REF_MESSAGE = "passwordSecretRef is required for PKCS12 and allowed only there"


class OutputFormat(KvModel):
    """One more output in the Secret, as cert-manager's additionalOutputFormats."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "(self.type == 'PKCS12') == has(self.passwordSecretRef)",
                    PKCS12_REF_MESSAGE,
                )
            ]
        }
    )

    type: OutputFormatType
    password_secret_ref: SecretKeyRef | None = Field(
        default=None, description="PKCS12 only: the keystore password (same namespace)"
    )

    @model_validator(mode="after")
    def _password(self) -> OutputFormat:
        if (self.type == OutputFormatType.PKCS12) != (self.password_secret_ref is not None):
            raise ValueError(PKCS12_REF_MESSAGE)
        return self


UNIQUE_FORMATS_RULE = "self.all(f, self.exists_one(g, g.type == f.type))"
UNIQUE_FORMATS_MESSAGE = "additionalOutputFormats may list each type once"
