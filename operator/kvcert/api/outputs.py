"""What shapes the output Secret beyond tls.crt/tls.key/ca.crt: cert-manager's secretTemplate
and additionalOutputFormats, as its users know them (issue #15 §7)."""

from __future__ import annotations

import enum

from pydantic import ConfigDict, Field, model_validator

from kvcert.api.base import DNS_SUBDOMAIN_PATTERN, KvModel, cel

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

    labels: dict[str, str] | None = Field(default=None, max_length=64)
    annotations: dict[str, str] | None = Field(default=None, max_length=64)

    @model_validator(mode="after")
    def _reserved(self) -> SecretTemplate:
        for keys in (self.labels or {}, self.annotations or {}):
            if any(key.startswith(RESERVED_PREFIX) for key in keys):
                raise ValueError(TEMPLATE_KEYS_MESSAGE)
        return self


class OutputFormatType(enum.StrEnum):
    COMBINED_PEM = "CombinedPEM"  # tls-combined.pem: the key, then the chain
    DER = "DER"  # key.der: the private key as DER (PKCS#8)
    PKCS12 = "PKCS12"  # keystore.p12: key and chain, encrypted with passwordSecretRef's value


KEY_FORMATS = frozenset(OutputFormatType)
"""Every additional format holds the private key, so each needs an exportable key."""


class SecretKeyRef(KvModel):
    """A key of a Secret in the Certificate's namespace."""

    name: str = Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)
    key: str = Field(min_length=1, max_length=253)


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
