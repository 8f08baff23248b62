"""KeyVault and ClusterKeyVault: where a vault is and how the operator signs in to it.

Both kinds share one spec; ClusterKeyVault is cluster-scoped so that many namespaces can use one
vault. Exactly one authentication method must be given: a model validator checks it for callers
of `from_body`, and the same rule is a CEL rule in the CRD so the API server rejects it at apply.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator

from kvcert.api.base import (
    DNS_LABEL_PATTERN,
    DNS_SUBDOMAIN_PATTERN,
    SECRET_KEY_PATTERN,
    InvalidResource,
    KvModel,
    ObjectMeta,
    camel,
    cel,
    section,
)
from kvcert.api.policy import EMAIL_MAX_LENGTH, EMAIL_PATTERN
from kvcert.api.status import LIST_MAP_BY_TYPE, Condition

AUTH_METHODS = ("workload_identity", "managed_identity", "client_secret", "token")
VAULT_URL_PATTERN = r"^https://[^\s/?#]+/?$"
"""`https://host[:port]`, nothing after it: the Key Vault client refuses a path, query or fragment
(keyvault.session.check_vault_url), and a KeyVault that cannot be used is better refused at
apply than reported later."""
PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----"
CA_BUNDLE_MAX_LENGTH = 512 * 1024
"""Mozilla's whole root store is about 220 KB of PEM; a private root is a few KB."""
CA_BUNDLE_RULE = f"self == '' || self.contains('{PEM_CERTIFICATE}')"
CA_BUNDLE_MESSAGE = (
    "caBundle must be PEM: one or more -----BEGIN CERTIFICATE----- blocks (or empty: the"
    " system's roots)"
)

CONTACTS_MAX_ITEMS = 20
"""A vault's contact list is a handful of people or team mailboxes; a bound keeps the PUT small."""
CONTACT_NAME_MAX_LENGTH = 256
CONTACT_PHONE_MAX_LENGTH = 64
CONTACT_PHONE_PATTERN = r"^[0-9A-Za-z+(). /-]+$"
"""Digits, `+`, spaces and the usual separators (`(`, `)`, `.`, `/`, `-`), letters for `ext`."""
CONTACTS_DESCRIPTION = (
    "Certificate contacts of the vault: whom Key Vault emails before a certificate expires (its"
    " lifetime action EmailContacts). Unset: kvcert leaves the vault's contacts alone. A list:"
    " kvcert makes the vault's contacts exactly these (order and e-mail case aside). []: kvcert"
    " deletes the vault's contacts. Applied when the object is first seen or its spec changes,"
    " and reported in the ContactsApplied condition. Key Vault keeps one list per vault: two"
    " KeyVault or ClusterKeyVault objects for the same vault with different contacts overwrite"
    " each other, the last one probed wins (no loop: kvcert writes only on a spec change or a"
    " restart). Give contacts on one object per vault."
)

AUTH_EXACTLY_ONE_RULE = (
    "(has(self.workloadIdentity) ? 1 : 0) + (has(self.managedIdentity) ? 1 : 0)"
    " + (has(self.clientSecret) ? 1 : 0) + (has(self.token) ? 1 : 0) == 1"
)


class SecretKeyRef(KvModel):
    """A key of a Secret: in the KeyVault's namespace, or for a ClusterKeyVault in `namespace`
    (default: the operator's own), since a cluster-scoped object has no namespace to imply."""

    name: str = Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)
    key: str = Field(min_length=1, max_length=253, pattern=SECRET_KEY_PATTERN)
    namespace: str | None = Field(
        default=None, max_length=63, pattern=DNS_LABEL_PATTERN, description="ClusterKeyVault only"
    )


class WorkloadIdentity(KvModel):
    """Azure AD workload identity federation: the pod's service account token is exchanged."""

    client_id: str = Field(min_length=1)
    tenant_id: str = Field(min_length=1)


class ManagedIdentity(KvModel):
    """An Azure managed identity; without clientId, the system-assigned one."""

    client_id: str | None = None


class ClientSecret(KvModel):
    """A service principal whose secret is read from a Kubernetes Secret."""

    tenant_id: str = Field(min_length=1)
    client_id: str = Field(min_length=1)
    secret_ref: SecretKeyRef


class StaticToken(KvModel):
    """A bearer token read from a Secret: what the local vault accepts."""

    secret_ref: SecretKeyRef


class VaultAuth(KvModel):
    """How to authenticate to the vault: exactly one of the four methods."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": AUTH_EXACTLY_ONE_RULE,
                    "message": "exactly one of workloadIdentity, managedIdentity, clientSecret"
                    " or token must be set",
                }
            ]
        }
    )

    workload_identity: WorkloadIdentity | None = None
    managed_identity: ManagedIdentity | None = None
    client_secret: ClientSecret | None = None
    token: StaticToken | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> VaultAuth:
        given = [name for name in AUTH_METHODS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                "exactly one of workloadIdentity, managedIdentity, clientSecret or token"
                f" must be set ({len(given)} given)"
            )
        return self

    @property
    def method(self) -> str:
        """The camelCase name of the chosen method, e.g. `workloadIdentity`."""
        for name in AUTH_METHODS:
            if getattr(self, name) is not None:
                return camel(name)
        raise AssertionError("validated: exactly one method is set")  # pragma: no cover


EMAIL_MESSAGE = "email must be an e-mail address, e.g. pki-team@example.com"
"""A readable refusal: the API server would otherwise quote the whole pattern."""


class Contact(KvModel):
    """One certificate contact of the vault (REST 7.5: Contact, wire `email`, `name`, `phone`)."""

    email: str = Field(
        max_length=EMAIL_MAX_LENGTH,
        description="The e-mail address Key Vault writes to, e.g. pki-team@example.com.",
        json_schema_extra={
            "x-kubernetes-validations": [cel(f'self.matches(r"{EMAIL_PATTERN}")', EMAIL_MESSAGE)]
        },
    )
    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=CONTACT_NAME_MAX_LENGTH,
        description="Who this is, e.g. PKI team.",
    )
    phone: str | None = Field(
        default=None,
        min_length=1,
        description="A phone number, e.g. +1 555 0100.",
        max_length=CONTACT_PHONE_MAX_LENGTH,
        pattern=CONTACT_PHONE_PATTERN,
    )

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        """The CRD's CEL rule, for a body that bypassed admission."""
        if not re.fullmatch(EMAIL_PATTERN, value):
            raise ValueError(EMAIL_MESSAGE)
        return value


class KeyVaultSpec(KvModel):
    """Where the vault is and how to reach it."""

    url: str = Field(
        pattern=VAULT_URL_PATTERN,
        description="The vault's base URL, https://host[:port] only (the Azure SDK refuses http).",
    )
    auth: VaultAuth
    ca_bundle: str | None = Field(
        default=None,
        max_length=CA_BUNDLE_MAX_LENGTH,
        description="PEM of a private TLS root, e.g. the local vault's ca.crt.",
        json_schema_extra={"x-kubernetes-validations": [cel(CA_BUNDLE_RULE, CA_BUNDLE_MESSAGE)]},
    )
    contacts: list[Contact] | None = Field(
        default=None,
        max_length=CONTACTS_MAX_ITEMS,
        description=CONTACTS_DESCRIPTION,
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["email"],
        },
    )

    @model_validator(mode="after")
    def _pem(self) -> KeyVaultSpec:
        if self.ca_bundle and PEM_CERTIFICATE not in self.ca_bundle:
            raise ValueError(CA_BUNDLE_MESSAGE)
        return self

    @model_validator(mode="after")
    def _unique_emails(self) -> KeyVaultSpec:
        """The CRD's list-map keyed by `email` refuses a repeated address; so does this."""
        emails = [contact.email for contact in self.contacts or ()]
        if len(set(emails)) != len(emails):
            raise ValueError("contacts: each email may appear once")
        return self


class KeyVaultStatus(KvModel):
    """Whether the operator could reach the vault with the given credentials."""

    observed_generation: int | None = None
    conditions: list[Condition] | None = Field(default=None, json_schema_extra=LIST_MAP_BY_TYPE)


class KeyVault(KvModel):
    """A namespaced reference to an Azure Key Vault (or the local vault)."""

    KIND: ClassVar[str] = "KeyVault"

    metadata: ObjectMeta
    spec: KeyVaultSpec
    status: KeyVaultStatus = Field(default_factory=KeyVaultStatus)

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> KeyVault:
        """Parse a kopf body; raises `InvalidResource` with a message fit for a condition."""
        return _parse(cls, body)


class ClusterKeyVault(KeyVault):
    """The same as KeyVault, cluster-scoped: usable from every namespace."""

    KIND: ClassVar[str] = "ClusterKeyVault"

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> ClusterKeyVault:
        return _parse(cls, body)


_Vault = TypeVar("_Vault", bound=KeyVault)


def _parse(cls: type[_Vault], body: Mapping[str, Any]) -> _Vault:
    try:
        status = KeyVaultStatus.model_validate(section(body, "status"))
    except ValidationError:
        status = KeyVaultStatus()  # status is ours; a stale shape is rewritten, not fatal
    try:
        return cls.model_validate(
            {"metadata": section(body, "metadata"), "spec": section(body, "spec"), "status": status}
        )
    except ValidationError as error:
        raise InvalidResource.from_validation_error(cls.KIND, error) from None
