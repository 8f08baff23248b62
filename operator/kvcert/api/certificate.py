"""Certificate: a Key Vault certificate declared in Kubernetes, delivered as a TLS Secret.

Field names are the contract of DESIGN §2. Rules that the API server can check are CEL rules in
the generated CRD (immutable certificateName, mergeFrom/importFrom exclusive, ...); the same rules
are pydantic validators here so that a body that bypassed admission (an old CRD, a unit test)
still fails with the same words.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated, Any, ClassVar

from pydantic import ConfigDict, Field, ValidationError, model_validator

from kvcert.api.base import (
    DNS_SUBDOMAIN_PATTERN,
    SECRET_KEY_PATTERN,
    InvalidResource,
    KvModel,
    ObjectMeta,
    cel,
    section,
)
from kvcert.api.lifecycle import (
    DURATION_PATTERN,
    EXISTING_REFRESH,
    MAX_USER_TAGS,
    MIN_REFRESH,
    REFRESH_MESSAGE,
    REFRESH_RULE,
    RENEW_BEFORE_EXCLUSIVE_MESSAGE,
    RENEW_BEFORE_EXCLUSIVE_RULE,
    TAG_NAME_MAX_LENGTH,
    TAG_NAMES_MESSAGE,
    TAG_NAMES_RULE,
    TAGS_MESSAGE,
    TAGS_RULE,
    parse_duration,
)
from kvcert.api.outputs import (
    UNIQUE_FORMATS_MESSAGE,
    UNIQUE_FORMATS_RULE,
    OutputFormat,
    SecretTemplate,
)
from kvcert.api.policy import (
    _SUBJECT_RE,
    DAYS_BEFORE_EXPIRY_MESSAGE,
    DAYS_PER_VALIDITY_MONTH,
    DEFAULT_VALIDITY_MONTHS,
    SUBJECT_PATTERN,
    ContentType,
    Curve,
    Issuer,
    IssuerKind,
    Key,
    KeyType,
    KeyUsage,
    LifetimeAction,
    LifetimeActionType,
    LifetimeTrigger,
    Policy,
)
from kvcert.api.status import CertificateStatus

__all__ = [  # the policy's names are re-exported: callers import them from here
    "DAYS_BEFORE_EXPIRY_MESSAGE",
    "DAYS_PER_VALIDITY_MONTH",
    "DEFAULT_VALIDITY_MONTHS",
    "SUBJECT_PATTERN",
    "_SUBJECT_RE",
    "Certificate",
    "CertificateSource",
    "CertificateSpec",
    "ContentType",
    "Curve",
    "DeletionPolicy",
    "ImportSource",
    "Issuer",
    "IssuerKind",
    "Key",
    "KeyType",
    "KeyUsage",
    "LifetimeAction",
    "LifetimeActionType",
    "LifetimeTrigger",
    "OnSoftDeleted",
    "Policy",
    "SourceSecret",
    "VaultKind",
    "VaultRef",
    "parse_certificate_status",
]

CERTIFICATE_NAME_PATTERN = r"^[0-9a-zA-Z-]{1,127}$"
IMMUTABLE_NAME_RULE = (
    "has(self.certificateName) == has(oldSelf.certificateName) && "
    "(!has(self.certificateName) || self.certificateName == oldSelf.certificateName)"
)
"""Set at creation or never: added later, it would point an issued Certificate at a name whose
ownership was never checked (issue #18 review)."""
MERGE_IMPORT_EXCLUSIVE_RULE = "!(has(self.mergeFrom) && has(self.importFrom))"
EXISTING_RULE = "has(self.source) && self.source == 'Existing'"
POLICY_OR_IMPORT_RULE = f"has(self.policy) || has(self.importFrom) || ({EXISTING_RULE})"
POLICY_OR_IMPORT_MESSAGE = "policy is required unless importFrom is set or source is Existing"
EXISTING_FIX = "remove it, or set source: Managed (kvcert then creates and renews the certificate)"
EXISTING_REFUSALS: tuple[tuple[str, str, str], ...] = (
    # (spec field as users write it, CEL condition that the field is set, message)
    ("policy", "has(self.policy)", "policy"),
    ("merge_from", "has(self.mergeFrom)", "mergeFrom"),
    ("import_from", "has(self.importFrom)", "importFrom"),
    ("cancel", "has(self.cancel) && self.cancel", "cancel: true"),
    ("renew_before", "has(self.renewBefore)", "renewBefore"),
    ("renew_before_percentage", "has(self.renewBeforePercentage)", "renewBeforePercentage"),
    ("tags", "has(self.tags)", "tags"),
    (
        "deletion_policy",
        "has(self.deletionPolicy) && self.deletionPolicy != 'Retain'",
        "deletionPolicy other than Retain",
    ),
    (
        "on_soft_deleted",
        "has(self.onSoftDeleted) && self.onSoftDeleted == 'Recover'",
        "onSoftDeleted: Recover",
    ),
    ("adopt", "has(self.adopt) && self.adopt", "adopt: true"),
)
"""What source Existing refuses (issue #19 §3): kvcert only reads and delivers such a
certificate, so every field that would write to Key Vault (or adopt it) is a mistake to say so."""


def existing_message(field: str) -> str:
    """The refusal of `field` (as users write it) with source Existing, naming the fix."""
    return (
        f"{field} is not allowed with source Existing (kvcert only delivers the Key Vault"
        f" certificate, it never writes to it): {EXISTING_FIX}"
    )


class CertificateSource(enum.StrEnum):
    MANAGED = "Managed"  # kvcert creates (or imports), renews and updates it in Key Vault
    EXISTING = "Existing"  # kvcert only delivers the Key Vault certificate's current version


class VaultKind(enum.StrEnum):
    KEY_VAULT = "KeyVault"
    CLUSTER_KEY_VAULT = "ClusterKeyVault"


class DeletionPolicy(enum.StrEnum):
    RETAIN = "Retain"  # delete nothing in Key Vault
    DELETE_PENDING = "DeletePending"  # delete the pending object while it is in progress
    DELETE = "Delete"  # soft-delete the certificate


class OnSoftDeleted(enum.StrEnum):
    FAIL = "Fail"  # report a soft-deleted name (NameSoftDeleted) and wait for a human
    RECOVER = "Recover"  # recover the soft-deleted certificate, then create or import


class VaultRef(KvModel):
    """Which KeyVault (same namespace) or ClusterKeyVault holds the certificate."""

    name: str = Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)
    kind: VaultKind = VaultKind.KEY_VAULT


class SourceSecret(KvModel):
    """A Secret in the Certificate's namespace that the operator reads (GET, never watched)."""

    secret_name: str = Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)


class ImportSource(SourceSecret):
    """PFX (`tls.pfx` / `certificate.pfx`) or PEM (`tls.crt` + `tls.key`) to import."""

    password_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=253,
        pattern=SECRET_KEY_PATTERN,
        description="key of the PFX password",
    )


class CertificateSpec(KvModel):
    """The desired Key Vault certificate and its delivery."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(IMMUTABLE_NAME_RULE, "certificateName is immutable"),
                cel(MERGE_IMPORT_EXCLUSIVE_RULE, "mergeFrom and importFrom are mutually exclusive"),
                cel(POLICY_OR_IMPORT_RULE, POLICY_OR_IMPORT_MESSAGE),
                cel(RENEW_BEFORE_EXCLUSIVE_RULE, RENEW_BEFORE_EXCLUSIVE_MESSAGE),
                *(
                    cel(f"!({EXISTING_RULE}) || !({when})", existing_message(field))
                    for _, when, field in EXISTING_REFUSALS
                ),
            ]
        }
    )

    vault_ref: VaultRef
    source: CertificateSource = Field(
        default=CertificateSource.MANAGED,
        description="Managed: kvcert creates, renews and updates the Key Vault certificate;"
        " Existing: kvcert only delivers the current version of a certificate that exists in"
        " Key Vault, looking for new versions every refreshInterval (default 1h)",
    )
    adopt: bool = Field(
        default=False,
        description="source Managed: a Key Vault certificate of that name that kvcert does not"
        " manage yet is adopted (tagged managed-by: kvcert, the policy applied in place) instead"
        " of refused; never one another Certificate manages",
    )
    certificate_name: str | None = Field(
        default=None,
        max_length=127,
        pattern=CERTIFICATE_NAME_PATTERN,
        description="name in Key Vault; defaults to metadata.name; immutable",
    )
    secret_name: str = Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)
    policy: Policy | None = None
    merge_from: SourceSecret | None = None
    import_from: ImportSource | None = None
    cancel: bool = False
    deletion_policy: DeletionPolicy = DeletionPolicy.RETAIN
    on_soft_deleted: OnSoftDeleted = Field(
        default=OnSoftDeleted.FAIL,
        description="when the name is soft-deleted in Key Vault: Fail (report it) or Recover",
    )
    secret_template: SecretTemplate | None = None
    additional_output_formats: list[OutputFormat] | None = Field(
        default=None,
        max_length=3,
        description="CombinedPEM, DER, PKCS12: more keys in the output Secret",
        json_schema_extra={
            "x-kubernetes-validations": [cel(UNIQUE_FORMATS_RULE, UNIQUE_FORMATS_MESSAGE)]
        },
    )

    renew_before: str | None = Field(
        default=None,
        pattern=DURATION_PATTERN,
        description="kvcert creates the next version this long before notAfter (e.g. 720h)",
    )
    renew_before_percentage: int | None = Field(
        default=None,
        ge=1,
        le=99,
        description="kvcert creates the next version when this % of the lifetime remains",
    )
    refresh_interval: str | None = Field(
        default=None,
        pattern=DURATION_PATTERN,
        description="also look for versions made outside kvcert this often, at least 1m"
        " (default: never; 1h for source Existing)",
        json_schema_extra={"x-kubernetes-validations": [cel(REFRESH_RULE, REFRESH_MESSAGE)]},
    )
    tags: dict[str, Annotated[str, Field(max_length=256)]] | None = Field(
        default=None,
        max_length=MAX_USER_TAGS,
        description="Key Vault tags of the certificate (kvcert's own four are kept)",
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(TAGS_RULE, TAGS_MESSAGE),
                cel(TAG_NAMES_RULE, TAG_NAMES_MESSAGE),
            ]
        },
    )

    @model_validator(mode="after")
    def _sources(self) -> CertificateSpec:
        if self.merge_from is not None and self.import_from is not None:
            raise ValueError("mergeFrom and importFrom are mutually exclusive")
        existing = self.source is CertificateSource.EXISTING
        if self.policy is None and self.import_from is None and not existing:
            raise ValueError(POLICY_OR_IMPORT_MESSAGE)
        if existing:
            for attribute, _, field in EXISTING_REFUSALS:
                if _refused_with_existing(attribute, getattr(self, attribute)):
                    raise ValueError(existing_message(field))
        types = [item.type for item in self.additional_output_formats or ()]
        if len(set(types)) != len(types):
            raise ValueError(UNIQUE_FORMATS_MESSAGE)
        if self.renew_before is not None and self.renew_before_percentage is not None:
            raise ValueError(RENEW_BEFORE_EXCLUSIVE_MESSAGE)
        for key in self.tags or {}:
            if key in ("managed-by", "kvcert-uid", "kvcert-owner", "kvcert-intent"):
                raise ValueError(TAGS_MESSAGE)
            if not 1 <= len(key) <= TAG_NAME_MAX_LENGTH:
                raise ValueError(TAG_NAMES_MESSAGE)
        refresh = self.refresh_delta()
        if refresh is not None and refresh < MIN_REFRESH:
            raise ValueError(REFRESH_MESSAGE)
        return self

    def renew_before_delta(self) -> timedelta | None:
        """spec.renewBefore as a timedelta (None when unset)."""
        return parse_duration(self.renew_before) if self.renew_before else None

    def refresh_delta(self) -> timedelta | None:
        """spec.refreshInterval as a timedelta (None when unset)."""
        return parse_duration(self.refresh_interval) if self.refresh_interval else None

    @property
    def existing(self) -> bool:
        """source Existing: kvcert only delivers (issue #19 §3)."""
        return self.source is CertificateSource.EXISTING

    def look_interval(self) -> timedelta:
        """How often a source Existing certificate is looked at: spec.refreshInterval, else
        EXISTING_REFRESH (1h, as akv2k8s and External Secrets poll)."""
        return self.refresh_delta() or EXISTING_REFRESH


class Certificate(KvModel):
    """A Certificate resource as handed to a kopf handler."""

    KIND: ClassVar[str] = "Certificate"

    metadata: ObjectMeta
    spec: CertificateSpec
    status: CertificateStatus = Field(default_factory=CertificateStatus)

    @property
    def certificate_name(self) -> str:
        """The name in Key Vault: spec.certificateName, else metadata.name."""
        return self.spec.certificate_name or self.metadata.name

    @classmethod
    def from_body(cls, body: Mapping[str, Any], *, with_status: bool = True) -> Certificate:
        """Parse a kopf body; raises `InvalidResource` with a message fit for a condition.
        `with_status=False` leaves status empty (a caller that parses it itself: each parse
        of a status costs a pydantic validation per round, issue #17)."""
        status = parse_certificate_status(section(body, "status")) if with_status else None
        try:
            parsed = cls.model_validate(
                {"metadata": section(body, "metadata"), "spec": section(body, "spec")}
            )
        except ValidationError as error:
            raise InvalidResource.from_validation_error(cls.KIND, error) from None
        if parsed.spec.certificate_name is None and not _is_certificate_name(parsed.metadata.name):
            raise InvalidResource(
                cls.KIND,
                "spec.certificateName: metadata.name is not a valid Key Vault certificate name"
                " (1-127 letters, digits and dashes); set spec.certificateName",
            )
        return parsed.model_copy(update={"status": status}) if status is not None else parsed


def parse_certificate_status(raw: Mapping[str, Any]) -> CertificateStatus:
    """Status is ours: an unreadable one is treated as empty and rewritten, never fatal."""
    try:
        return CertificateStatus.model_validate(dict(raw))
    except ValidationError:
        return CertificateStatus()


def _refused_with_existing(attribute: str, value: object) -> bool:
    """Whether `value` of the spec attribute is one EXISTING_REFUSALS lists as set."""
    if attribute == "deletion_policy":
        return value is not DeletionPolicy.RETAIN
    if attribute == "on_soft_deleted":
        return value is OnSoftDeleted.RECOVER
    if isinstance(value, bool):
        return value
    return value is not None


def _is_certificate_name(name: str) -> bool:
    return 1 <= len(name) <= 127 and all(
        ch.isascii() and (ch.isalnum() or ch == "-") for ch in name
    )
