"""CertificateIssuer and ClusterCertificateIssuer: a Key Vault certificate issuer as a resource.

A Key Vault issuer (`PUT /certificates/issuers/{name}`, REST: SetCertificateIssuer) names a CA
provider and the account kvcert's Certificates use through `policy.issuer.name` (issue #19 §2).
Field names are Key Vault's terms in camelCase (CertificateIssuerSetParameters,
OrganizationDetails, AdministratorDetails in certificates.json 7.5): `accountId`, `organizationId`,
`administrators[].firstName`. The password is never in the spec: `passwordSecretRef` names a
Secret key. The namespaced kind may use only a KeyVault of its own namespace and a Secret of its
own namespace; the cluster-scoped twin uses a ClusterKeyVault and a Secret in
`passwordSecretRef.namespace` (default: the operator's namespace).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar, TypeVar

from pydantic import ConfigDict, Field, ValidationError, model_validator
from pydantic.config import JsonValue

from kvcert.api.base import (
    DNS_SUBDOMAIN_PATTERN,
    InvalidResource,
    KvModel,
    ObjectMeta,
    cel,
    section,
)
from kvcert.api.keyvault import SecretKeyRef
from kvcert.api.status import LIST_MAP_BY_TYPE, Condition

ISSUER_NAME_PATTERN = r"^[0-9a-zA-Z-]{1,127}$"
"""Key Vault object names: letters, digits and dashes (the client refuses anything else)."""
RESERVED_ISSUER_NAMES = ("self", "unknown")
"""Key Vault's built-in issuers (policy.issuer.name Self / Unknown): never a configured one."""
IMMUTABLE_ISSUER_NAME_RULE = (
    "has(self.issuerName) == has(oldSelf.issuerName) && "
    "(!has(self.issuerName) || self.issuerName == oldSelf.issuerName)"
)
"""Set at creation or never: a renamed issuer would leave the old one behind, unowned."""
IMMUTABLE_VAULT_REF_RULE = "self.vaultRef == oldSelf.vaultRef"
IMMUTABLE_VAULT_REF_MESSAGE = "vaultRef is immutable: create a new resource for another vault"
"""Ownership is of an issuer in one vault (issue #19 §2 review): another vault's issuer of the
same name is someone else's until adopted."""
RESERVED_NAME_RULE = (
    "!has(self.issuerName) || !(self.issuerName.lowerAscii() in ['self', 'unknown'])"
)
RESERVED_NAME_MESSAGE = "issuerName Self and Unknown are Key Vault's own issuers"
NO_NAMESPACE_RULE = "!has(self.passwordSecretRef) || !has(self.passwordSecretRef.namespace)"
NO_NAMESPACE_MESSAGE = (
    "passwordSecretRef.namespace is for ClusterCertificateIssuer: a CertificateIssuer reads"
    " Secrets of its own namespace"
)
MAX_ADMINISTRATORS = 16
TEXT_MAX = 256


class IssuerProvider(enum.StrEnum):
    """The providers Key Vault accepts for a configured issuer (REST: IssuerBundle.provider)."""

    DIGICERT = "DigiCert"
    GLOBALSIGN = "GlobalSign"
    ONECERT_PRIVATE = "OneCertV2-PrivateCA"
    ONECERT_PUBLIC = "OneCertV2-PublicCA"


class IssuerDeletionPolicy(enum.StrEnum):
    RETAIN = "Retain"  # deleting the resource leaves the issuer in Key Vault
    DELETE = "Delete"  # deleting the resource deletes the issuer from Key Vault


class IssuerVaultRef(KvModel):
    """The vault: a KeyVault of the issuer's namespace, or for a ClusterCertificateIssuer a
    ClusterKeyVault (the kind is implied by the issuer's own). Immutable: another vault is
    another resource."""

    name: str = Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)


class Administrator(KvModel):
    """One organization administrator (REST: AdministratorDetails)."""

    first_name: str | None = Field(default=None, max_length=TEXT_MAX)
    last_name: str | None = Field(default=None, max_length=TEXT_MAX)
    email: str | None = Field(default=None, max_length=TEXT_MAX)
    phone: str | None = Field(default=None, max_length=TEXT_MAX)


def _validations(*, cluster: bool) -> ConfigDict:
    rules: list[JsonValue] = [
        cel(IMMUTABLE_ISSUER_NAME_RULE, "issuerName is immutable"),
        cel(IMMUTABLE_VAULT_REF_RULE, IMMUTABLE_VAULT_REF_MESSAGE),
        cel(RESERVED_NAME_RULE, RESERVED_NAME_MESSAGE),
    ]
    if not cluster:
        rules.append(cel(NO_NAMESPACE_RULE, NO_NAMESPACE_MESSAGE))
    return ConfigDict(json_schema_extra={"x-kubernetes-validations": rules})


class IssuerSpecBase(KvModel):
    """What both kinds declare: the issuer as Key Vault should have it."""

    vault_ref: IssuerVaultRef
    issuer_name: str | None = Field(
        default=None,
        max_length=127,
        pattern=ISSUER_NAME_PATTERN,
        description="name in Key Vault (policy.issuer.name of Certificates); defaults to"
        " metadata.name; immutable",
    )
    provider: IssuerProvider
    account_id: str | None = Field(
        default=None, max_length=TEXT_MAX, description="the provider account (credentials)"
    )
    password_secret_ref: SecretKeyRef | None = Field(
        default=None,
        description="the Secret key holding the provider account's password, sent as is"
        " except one trailing newline (\\n or \\r\\n, as `kubectl create secret"
        " --from-file` leaves it)",
    )
    organization_id: str | None = Field(
        default=None, max_length=TEXT_MAX, description="the provider's organization id"
    )
    administrators: list[Administrator] | None = Field(
        default=None,
        max_length=MAX_ADMINISTRATORS,
        description="the organization's administrators (org_details.admin_details)",
    )
    enabled: bool = True
    deletion_policy: IssuerDeletionPolicy = Field(
        default=IssuerDeletionPolicy.RETAIN,
        description="Retain (leave the issuer in Key Vault) or Delete it with this resource",
    )
    adopt: bool = Field(
        default=False,
        description="take over an issuer of that name that kvcert does not manage yet",
    )

    @model_validator(mode="after")
    def _not_reserved(self) -> IssuerSpecBase:
        if self.issuer_name is not None and self.issuer_name.lower() in RESERVED_ISSUER_NAMES:
            raise ValueError(RESERVED_NAME_MESSAGE)
        return self


class CertificateIssuerSpec(IssuerSpecBase):
    model_config = _validations(cluster=False)

    @model_validator(mode="after")
    def _own_namespace(self) -> CertificateIssuerSpec:
        if self.password_secret_ref is not None and self.password_secret_ref.namespace:
            raise ValueError(NO_NAMESPACE_MESSAGE)
        return self


class ClusterCertificateIssuerSpec(IssuerSpecBase):
    model_config = _validations(cluster=True)


class IssuerInfo(KvModel):
    """The issuer as Key Vault last answered (IssuerBundle; its credentials are never shown)."""

    id: str | None = None
    provider: str | None = None
    enabled: bool | None = None
    created: datetime | None = None
    updated: datetime | None = None


class CertificateIssuerStatus(KvModel):
    """kvcert's record of the issuer. `managed` and `vaultURL` are the ownership record (Key
    Vault issuers carry no tags): written before the first write to Key Vault; the issuer is
    kvcert's only in that vault. `appliedHash` is a digest of what was applied (the spec's Key
    Vault fields and the password Secret's uid and resourceVersion, never the password) so a
    rotated password is noticed although Key Vault never returns it. `failedAttempts` is
    written only with a status that changes anyway (the count is kept in memory)."""

    observed_generation: int | None = None
    conditions: list[Condition] | None = Field(default=None, json_schema_extra=LIST_MAP_BY_TYPE)
    managed: bool | None = None
    vault_url: str | None = Field(
        default=None,
        alias="vaultURL",
        max_length=2048,
        description="the vault whose issuer `managed` is about (https://host[:port])",
    )
    applied_hash: str | None = Field(default=None, max_length=64)
    issuer: IssuerInfo | None = None
    failed_attempts: int | None = Field(default=None, ge=0)


class IssuerResource(KvModel):
    """What both kinds share; `CLUSTER` says which one a body is."""

    KIND: ClassVar[str] = "CertificateIssuer"
    CLUSTER: ClassVar[bool] = False

    metadata: ObjectMeta
    spec: IssuerSpecBase
    status: CertificateIssuerStatus = Field(default_factory=CertificateIssuerStatus)

    @property
    def issuer_name(self) -> str:
        """The name in Key Vault: spec.issuerName, else metadata.name."""
        return self.spec.issuer_name or self.metadata.name


class CertificateIssuer(IssuerResource):
    """A Key Vault issuer managed from a namespace."""

    spec: CertificateIssuerSpec

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> CertificateIssuer:
        """Parse a kopf body; raises `InvalidResource` with a message fit for a condition."""
        return _parse(cls, body)


class ClusterCertificateIssuer(IssuerResource):
    """The cluster-scoped twin: its vault is a ClusterKeyVault."""

    KIND: ClassVar[str] = "ClusterCertificateIssuer"
    CLUSTER: ClassVar[bool] = True

    spec: ClusterCertificateIssuerSpec

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> ClusterCertificateIssuer:
        return _parse(cls, body)


def parse_issuer(body: Mapping[str, Any], *, cluster: bool) -> IssuerResource:
    """Either kind from its body; raises `InvalidResource`."""
    return (ClusterCertificateIssuer if cluster else CertificateIssuer).from_body(body)


_Issuer = TypeVar("_Issuer", bound=IssuerResource)


def parse_issuer_status(raw: Mapping[str, Any]) -> CertificateIssuerStatus:
    """Status is ours: an unreadable one is treated as empty and rewritten, never fatal."""
    try:
        return CertificateIssuerStatus.model_validate(dict(raw))
    except ValidationError:
        return CertificateIssuerStatus()


def _parse(cls: type[_Issuer], body: Mapping[str, Any]) -> _Issuer:
    status = parse_issuer_status(section(body, "status"))
    try:
        parsed = cls.model_validate(
            {"metadata": section(body, "metadata"), "spec": section(body, "spec"), "status": status}
        )
    except ValidationError as error:
        raise InvalidResource.from_validation_error(cls.KIND, error) from None
    name = parsed.issuer_name
    if parsed.spec.issuer_name is None and (
        len(name) > 127
        or not all(ch.isascii() and (ch.isalnum() or ch == "-") for ch in name)
        or name.lower() in RESERVED_ISSUER_NAMES
    ):
        raise InvalidResource(
            cls.KIND,
            "spec.issuerName: metadata.name is not a usable Key Vault issuer name (1-127"
            " letters, digits and dashes, not Self or Unknown); set spec.issuerName",
        )
    return parsed
