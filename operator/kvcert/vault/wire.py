"""Pydantic models of the request bodies the local vault accepts (Key Vault's wire names).

Requests are strict (a string where a number belongs is a 400, not a coercion) and ignore unknown
fields, as the service does. Responses are plain dicts built by `views.py`, because their shape
depends on the profile and on state the models do not know.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _In(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", populate_by_name=True)


class KeyPropsIn(_In):
    exportable: bool | None = None
    kty: str | None = None
    key_size: int | None = None
    reuse_key: bool | None = None
    crv: str | None = None


class SecretPropsIn(_In):
    content_type: str | None = Field(default=None, alias="contentType")


class SansIn(_In):
    emails: list[str] | None = None
    dns_names: list[str] | None = None
    upns: list[str] | None = None
    ip_addresses: list[str] | None = Field(default=None, alias="ipAddresses")
    uris: list[str] | None = None


class X509PropsIn(_In):
    subject: str | None = None
    ekus: list[str] | None = None
    sans: SansIn | None = None
    key_usage: list[str] | None = None
    validity_months: int | None = None


class TriggerIn(_In):
    lifetime_percentage: int | None = None
    days_before_expiry: int | None = None


class ActionIn(_In):
    action_type: str | None = None


class LifetimeActionIn(_In):
    trigger: TriggerIn | None = None
    action: ActionIn | None = None


class IssuerParamsIn(_In):
    name: str | None = None
    cty: str | None = None
    cert_transparency: bool | None = None


class AttributesIn(_In):
    """CertificateAttributes as sent. `nbf` and `exp` of a certificate are its X.509 validity:
    the live service keeps them read-only and ignores what a request says (README)."""

    enabled: bool | None = None
    nbf: int | None = None
    exp: int | None = None


class PlatformManagedIn(_In):
    """CertificatePolicy.platformManaged: "intended for internal use only"; refused (README)."""

    certificate_usage: str | None = Field(default=None, alias="certificateUsage")


class PolicyIn(_In):
    key_props: KeyPropsIn | None = None
    secret_props: SecretPropsIn | None = None
    x509_props: X509PropsIn | None = None
    lifetime_actions: list[LifetimeActionIn] | None = None
    issuer: IssuerParamsIn | None = None
    attributes: AttributesIn | None = None
    platform_managed: PlatformManagedIn | None = Field(default=None, alias="platformManaged")


class CreateIn(_In):
    policy: PolicyIn | None = None
    attributes: AttributesIn | None = None
    tags: dict[str, str] | None = None
    preserve_cert_order: bool | None = Field(default=None, alias="preserveCertOrder")


class ImportIn(_In):
    value: str
    pwd: str | None = None
    policy: PolicyIn | None = None
    attributes: AttributesIn | None = None
    tags: dict[str, str] | None = None
    preserve_cert_order: bool | None = Field(default=None, alias="preserveCertOrder")


class MergeIn(_In):
    x5c: list[str]
    attributes: AttributesIn | None = None
    tags: dict[str, str] | None = None


class UpdateIn(_In):
    policy: PolicyIn | None = None
    attributes: AttributesIn | None = None
    tags: dict[str, str] | None = None


class OperationUpdateIn(_In):
    cancellation_requested: bool


class CredentialsIn(_In):
    account_id: str | None = None
    pwd: str | None = None


class AdminIn(_In):
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None


class OrgDetailsIn(_In):
    id: str | None = None
    admin_details: list[AdminIn] | None = None


class IssuerAttributesIn(_In):
    enabled: bool | None = None


class IssuerSetIn(_In):
    provider: str
    credentials: CredentialsIn | None = None
    org_details: OrgDetailsIn | None = None
    attributes: IssuerAttributesIn | None = None


class IssuerUpdateIn(_In):
    provider: str | None = None
    credentials: CredentialsIn | None = None
    org_details: OrgDetailsIn | None = None
    attributes: IssuerAttributesIn | None = None


class ContactIn(_In):
    email: str | None = None
    name: str | None = None
    phone: str | None = None


class ContactsIn(_In):
    contacts: list[ContactIn]


class RestoreIn(_In):
    value: str


class FailIn(_In):
    """Management: make a pending operation fail with this provider error."""

    code: str = "CertificateIssuanceFailed"
    message: str = "The certificate authority rejected the request."


class DelayIn(_In):
    """Management: the provider answers `seconds` from now instead of its configured delay."""

    seconds: float = Field(ge=0, le=86400 * 30)


class ThrottleIn(_In):
    """Management: answer the next `requests` Key Vault requests with 429 Throttled."""

    requests: int = Field(ge=0, le=1_000_000)
    retry_after: int = Field(default=1, ge=0, le=3600, alias="retryAfter")


class ClockIn(_In):
    """Management: move the vault's clock forward by `advanceSeconds` (seconds, >= 0)."""

    advance_seconds: float = Field(alias="advanceSeconds", ge=0, allow_inf_nan=False)
