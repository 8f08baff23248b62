"""Pydantic models of Key Vault's certificate API bodies, named exactly as on the wire.

Responses are lenient (unknown fields ignored, nearly everything optional) so a newer api-version
or the other profile never breaks parsing; requests are strict (unknown fields refused) so the
client can only send what it means to. Field names follow reference/keyvault-api/7.5
certificates.json, including the service's mixed cases (`secret_props.contentType`,
`attributes.recoveryLevel`). Nothing outside `keyvault/` sees these: convert.py turns responses
into kvcert.reconcile.observed values once.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_serializer

KeyType = Literal["EC", "EC-HSM", "RSA", "RSA-HSM"]
CurveName = Literal["P-256", "P-384", "P-521", "P-256K"]
KeyUsage = Literal[
    "digitalSignature",
    "nonRepudiation",
    "keyEncipherment",
    "dataEncipherment",
    "keyAgreement",
    "keyCertSign",
    "cRLSign",
    "encipherOnly",
    "decipherOnly",
]
ActionType = Literal["EmailContacts", "AutoRenew"]


class Request(BaseModel):
    """What the client sends: refuses unknown fields, dumps by wire name without nulls."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class Response(BaseModel):
    """What the vault sends: ignores what kvcert does not read."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


# --- policy (sent on create and import) ------------------------------------------------------


class KeyProperties(Request):
    exportable: bool | None = None
    kty: KeyType | None = None
    key_size: int | None = None
    reuse_key: bool | None = None
    crv: CurveName | None = None


class SecretProperties(Request):
    content_type: str | None = Field(default=None, alias="contentType")


class SubjectAlternativeNames(Request):
    emails: list[str] | None = None
    dns_names: list[str] | None = None
    upns: list[str] | None = None


class X509Properties(Request):
    subject: str | None = None
    ekus: list[str] | None = None
    sans: SubjectAlternativeNames | None = None
    key_usage: list[KeyUsage] | None = None
    validity_months: int | None = Field(default=None, ge=1)


class Trigger(Request):
    lifetime_percentage: int | None = Field(default=None, ge=1, le=99)
    days_before_expiry: int | None = Field(default=None, ge=1)


class Action(Request):
    action_type: ActionType


class LifetimeAction(Request):
    trigger: Trigger
    action: Action


class IssuerParameters(Request):
    name: str
    cty: str | None = None
    cert_transparency: bool | None = None


class CertificateAttributesIn(Request):
    enabled: bool | None = None


class CertificatePolicy(Request):
    key_props: KeyProperties | None = None
    secret_props: SecretProperties | None = None
    x509_props: X509Properties | None = None
    lifetime_actions: list[LifetimeAction] | None = None
    issuer: IssuerParameters | None = None
    attributes: CertificateAttributesIn | None = None


# --- request bodies --------------------------------------------------------------------------


class CertificateCreateParameters(Request):
    policy: CertificatePolicy
    attributes: CertificateAttributesIn | None = None
    tags: dict[str, str] | None = None


class CertificateImportParameters(Request):
    """`value` is base64 PFX or PEM text with the key, `pwd` the PFX password: both secrets,
    redacted in repr and revealed only when the body is serialised."""

    value: SecretStr
    pwd: SecretStr | None = None
    policy: CertificatePolicy | None = None
    attributes: CertificateAttributesIn | None = None
    tags: dict[str, str] | None = None

    @field_serializer("value", "pwd", when_used="json")
    def _reveal(self, secret: SecretStr | None) -> str | None:
        return None if secret is None else secret.get_secret_value()


class CertificateUpdateParameters(Request):
    attributes: CertificateAttributesIn | None = None
    tags: dict[str, str] | None = None


class CertificateMergeParameters(Request):
    x5c: list[str] = Field(min_length=1)
    attributes: CertificateAttributesIn | None = None
    tags: dict[str, str] | None = None


class CertificateOperationUpdateParameter(Request):
    cancellation_requested: bool


class IssuerCredentials(Request):
    account_id: str | None = None
    pwd: SecretStr | None = None

    @field_serializer("pwd", when_used="json")
    def _reveal(self, secret: SecretStr | None) -> str | None:
        return None if secret is None else secret.get_secret_value()


class AdministratorDetails(Request):
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None


class OrganizationDetails(Request):
    id: str | None = None
    admin_details: list[AdministratorDetails] | None = None


class IssuerAttributesIn(Request):
    enabled: bool | None = None


class CertificateIssuerSetParameters(Request):
    provider: str
    credentials: IssuerCredentials | None = None
    org_details: OrganizationDetails | None = None
    attributes: IssuerAttributesIn | None = None


class CertificateIssuerUpdateParameters(Request):
    """PATCH /certificates/issuers/{name}: every field optional; an absent one is kept."""

    provider: str | None = None
    credentials: IssuerCredentials | None = None
    org_details: OrganizationDetails | None = None
    attributes: IssuerAttributesIn | None = None


# --- response bodies -------------------------------------------------------------------------


class ErrorDetail(Response):
    code: str | None = None
    message: str | None = None
    innererror: ErrorDetail | None = None


class ErrorBody(Response):
    error: ErrorDetail | None = None


class CertificateAttributes(Response):
    enabled: bool | None = None
    nbf: int | None = None
    exp: int | None = None
    created: int | None = None
    updated: int | None = None
    recoverable_days: int | None = Field(default=None, alias="recoverableDays")
    recovery_level: str | None = Field(default=None, alias="recoveryLevel")


class IssuerReference(Response):
    name: str | None = None
    cty: str | None = None
    cert_transparency: bool | None = None


class OperationError(Response):
    code: str | None = None
    message: str | None = None


class CertificateOperation(Response):
    id: str | None = None
    issuer: IssuerReference | None = None
    csr: str | None = None
    cancellation_requested: bool | None = None
    status: str | None = None
    status_details: str | None = None
    error: OperationError | None = None
    target: str | None = None
    request_id: str | None = None
    preserve_cert_order: bool | None = Field(default=None, alias="preserveCertOrder")


class PendingReference(Response):
    id: str | None = None


class CertificateBundle(Response):
    """Also the deleted-certificate bundle: the deletion fields are simply absent otherwise.
    `policy` stays a plain mapping because nothing reads it yet and the 2026 api-version adds
    fields to it."""

    id: str | None = None
    kid: str | None = None
    sid: str | None = None
    x5t: str | None = None
    cer: str | None = None
    content_type: str | None = Field(default=None, alias="contentType")
    attributes: CertificateAttributes | None = None
    tags: dict[str, str] | None = None
    pending: PendingReference | None = None
    policy: dict[str, Any] | None = None
    preserve_cert_order: bool | None = Field(default=None, alias="preserveCertOrder")
    recovery_id: str | None = Field(default=None, alias="recoveryId")
    deleted_date: int | None = Field(default=None, alias="deletedDate")
    scheduled_purge_date: int | None = Field(default=None, alias="scheduledPurgeDate")


class SecretBundle(Response):
    """A certificate's secret (key + chain). `value` is a SecretStr so no repr, log line or
    validation error can show it."""

    id: str | None = None
    value: SecretStr | None = None
    content_type: str | None = Field(default=None, alias="contentType")
    kid: str | None = None
    managed: bool | None = None


class IssuerCredentialsOut(Response):
    account_id: str | None = None


class IssuerAttributes(Response):
    enabled: bool | None = None
    created: int | None = None
    updated: int | None = None


class AdministratorDetailsOut(Response):
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None


class OrganizationDetailsOut(Response):
    id: str | None = None
    admin_details: list[AdministratorDetailsOut] | None = None


class IssuerBundle(Response):
    """Key Vault never returns `credentials.pwd`."""

    id: str | None = None
    provider: str | None = None
    credentials: IssuerCredentialsOut | None = None
    org_details: OrganizationDetailsOut | None = None
    attributes: IssuerAttributes | None = None


# --- certificate contacts (REST 7.5: Contacts, Contact) --------------------------------------


class ContactIn(Request):
    email: str
    name: str | None = None
    phone: str | None = None


class ContactsSetParameters(Request):
    """The body of PUT /certificates/contacts: the whole list, which replaces the vault's."""

    contacts: list[ContactIn]


class ContactOut(Response):
    email: str | None = None
    name: str | None = None
    phone: str | None = None


class Contacts(Response):
    id: str | None = None
    contacts: list[ContactOut] | None = None
