"""The Key Vault certificate policy as the Certificate's `spec.policy` declares it.

Field names are the contract of DESIGN §2; the rules are Key Vault's (the REST definitions'
`CertificatePolicy`, `X509CertificateProperties`, `LifetimeAction`), repeated as CEL rules in
the generated CRD so that the API server refuses with the same words.
"""

from __future__ import annotations

import enum
import re
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from kvcert.api.base import KvModel, cel

# A dotted OID that can be encoded: first arc 0-2, second arc 0-39 under 0 and 1, no leading zeros.
OID_PATTERN = r"^([01]\.([0-9]|[1-3][0-9])|2\.(0|[1-9][0-9]*))(\.(0|[1-9][0-9]*))*$"
ISSUER_NAME_PATTERN = r"^[0-9a-zA-Z-]{1,127}$"
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# A host name of LDH labels of 1-63 characters, no empty label (`a..b`), optionally a leading
# `*.` wildcard: what a CA signs in a dNSName (RFC 5280 4.2.1.6, CA/B Baseline Requirements).
DNS_NAME_PATTERN = rf"^(\*\.)?({_LABEL}\.)*{_LABEL}$"
# An RFC 5321 mailbox in ASCII (dot-atom local part, a host name): what an rfc822Name holds.
EMAIL_PATTERN = rf"^[A-Za-z0-9!#$%&'*+/=?^_`{{|}}~.-]+@({_LABEL}\.)*{_LABEL}$"
EMAIL_MAX_LENGTH = 254  # RFC 5321 4.5.3.1.3: a path is at most 256 octets with its brackets
# A user principal name: `user@suffix`, no spaces (UTF-8 allowed: it is a UTF8String).
UPN_PATTERN = r"^[^@\s]+@[^@\s]+$"
UPN_MAX_LENGTH = 256  # a bound, as for e-mail addresses: no megabyte of name reaches Key Vault
MAX_NAMES = 250
"""At most this many dnsNames, emails and upns each: a create stays far below a request size
limit (250 x 253 bytes is 63 KB), where a megabyte of names was refused by the vault (413) and
retried with backoff for ever."""
# Subjects as Key Vault writes them (X.500 names, not strict RFC 4514): `CN=a, O="B, Inc."`;
# `,` or `;` between RDNs, `+` inside one, Windows' keywords (S and ST, E) or a dotted OID, values
# plain (backslash escapes), quoted (`""` is a quote) or `#` hex. The local vault parses the same.
_SUBJECT_TYPE = (
    r"((?i:CN|C|L|S|ST|O|OU|E|EMAIL|STREET|T|TITLE|G|GIVENNAME|I|INITIALS|SN|DC|UID|"
    r"SERIALNUMBER|POSTALCODE|DNQUALIFIER|DESCRIPTION|POBOX|PHONE|UNSTRUCTUREDNAME)|"
    r"(?i:OID\.)?[0-2](\.(0|[1-9][0-9]*))+)"
)
_SUBJECT_VALUE = (
    r'("([^"\\]|\\.|"")*"|#([0-9A-Fa-f]{2})+|'
    r'([^,;+"\\ #]|\\.)(([^,;+"\\]|\\.)*([^,;+"\\ ]|\\.))?)'
)
_SUBJECT_ATTRIBUTE = f" *{_SUBJECT_TYPE} *= *{_SUBJECT_VALUE} *"
SUBJECT_PATTERN = f"^{_SUBJECT_ATTRIBUTE}([,;+]{_SUBJECT_ATTRIBUTE})*$"
SUBJECT_MAX_LENGTH = 1024
SUBJECT_MESSAGE = (
    "subject must be an X.500 name as Key Vault writes it, e.g. "
    'CN=web.example.com, O="Example, Inc.", S=Texas, C=US'
)
DAYS_PER_VALIDITY_MONTH = 27  # Key Vault: days_before_expiry <= 27 x validity_months
DEFAULT_VALIDITY_MONTHS = 12  # what Key Vault uses when the policy gives none
MAX_VALIDITY_MONTHS = 1200
DAYS_BEFORE_EXPIRY_RULE = (
    "!has(self.lifetimeActions) || self.lifetimeActions.all(a, "
    "!has(a.trigger.daysBeforeExpiry) || a.trigger.daysBeforeExpiry <= "
    f"{DAYS_PER_VALIDITY_MONTH} * "
    f"(has(self.validityMonths) ? self.validityMonths : {DEFAULT_VALIDITY_MONTHS}))"
)
DAYS_BEFORE_EXPIRY_MESSAGE = (
    "lifetimeActions[].trigger.daysBeforeExpiry must be at most 27 x validityMonths "
    "(validityMonths defaults to 12)"
)


_SUBJECT_RE = re.compile(SUBJECT_PATTERN)


class KeyType(enum.StrEnum):
    EC = "EC"
    EC_HSM = "EC-HSM"
    RSA = "RSA"
    RSA_HSM = "RSA-HSM"


class Curve(enum.StrEnum):
    P256 = "P-256"
    P384 = "P-384"
    P521 = "P-521"
    P256K = "P-256K"


class ContentType(enum.StrEnum):
    PKCS12 = "application/x-pkcs12"
    PEM = "application/x-pem-file"


class KeyUsage(enum.StrEnum):
    DIGITAL_SIGNATURE = "digitalSignature"
    NON_REPUDIATION = "nonRepudiation"
    KEY_ENCIPHERMENT = "keyEncipherment"
    DATA_ENCIPHERMENT = "dataEncipherment"
    KEY_AGREEMENT = "keyAgreement"
    KEY_CERT_SIGN = "keyCertSign"
    CRL_SIGN = "cRLSign"
    ENCIPHER_ONLY = "encipherOnly"
    DECIPHER_ONLY = "decipherOnly"


class LifetimeActionType(enum.StrEnum):
    AUTO_RENEW = "AutoRenew"
    EMAIL_CONTACTS = "EmailContacts"


class IssuerKind(enum.Enum):
    """Key Vault treats two issuer names specially; every other name is a configured issuer."""

    SELF = "Self"  # Key Vault signs it itself, right away
    UNKNOWN = "Unknown"  # manual: a human or an outside CA signs the CSR, then a merge
    CONFIGURED = "configured"  # a provider (DigiCert, GlobalSign, ...) signs it, minutes later


class Issuer(KvModel):
    """The Key Vault issuer: `Self`, `Unknown`, or the name of an issuer configured in the vault."""

    name: str = Field(min_length=1, max_length=127, pattern=ISSUER_NAME_PATTERN)
    certificate_type: str | None = Field(
        default=None, min_length=1, max_length=64, description="e.g. OV-SSL, EV-SSL"
    )
    certificate_transparency: bool | None = None

    @property
    def kind(self) -> IssuerKind:
        folded = self.name.casefold()
        if folded == "self":
            return IssuerKind.SELF
        if folded == "unknown":
            return IssuerKind.UNKNOWN
        return IssuerKind.CONFIGURED


class Key(KvModel):
    """The key pair Key Vault generates: EC with a curve, or RSA with a size."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(self.curve) || self.type == 'EC' || self.type == 'EC-HSM'",
                    "curve applies to EC keys only",
                ),
                cel(
                    "!has(self.size) || self.type == 'RSA' || self.type == 'RSA-HSM'",
                    "size applies to RSA keys only",
                ),
            ]
        }
    )

    type: KeyType = KeyType.RSA
    curve: Curve | None = None
    size: Literal[2048, 3072, 4096] | None = None
    exportable: bool = Field(default=True, description="tls.key is delivered only if exportable")
    reuse_key: bool = False

    @model_validator(mode="after")
    def _shape(self) -> Key:
        is_ec = self.type in (KeyType.EC, KeyType.EC_HSM)
        if is_ec and self.size is not None:
            raise ValueError("size applies to RSA keys only")
        if not is_ec and self.curve is not None:
            raise ValueError("curve applies to EC keys only")
        return self


class LifetimeTrigger(KvModel):
    """When the action fires: a percentage of the lifetime, or days before expiry (one of)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "has(self.lifetimePercentage) != has(self.daysBeforeExpiry)",
                    "exactly one of lifetimePercentage or daysBeforeExpiry must be set",
                )
            ]
        }
    )

    lifetime_percentage: int | None = Field(default=None, ge=1, le=99)
    days_before_expiry: int | None = Field(
        default=None,
        ge=1,
        le=DAYS_PER_VALIDITY_MONTH * MAX_VALIDITY_MONTHS,
        description="at most 27 x the policy's validityMonths",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> LifetimeTrigger:
        if (self.lifetime_percentage is None) == (self.days_before_expiry is None):
            raise ValueError("exactly one of lifetimePercentage or daysBeforeExpiry must be set")
        return self


class LifetimeAction(KvModel):
    """What Key Vault does as the certificate ages (renew it, or e-mail the contacts)."""

    trigger: LifetimeTrigger
    action: LifetimeActionType


class Policy(KvModel):
    """The Key Vault certificate policy used on create."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "has(self.subject) || has(self.dnsNames) || has(self.emails) || has(self.upns)",
                    "a subject or at least one of dnsNames, emails, upns is required",
                ),
                cel(DAYS_BEFORE_EXPIRY_RULE, DAYS_BEFORE_EXPIRY_MESSAGE),
            ]
        }
    )

    issuer: Issuer
    subject: str | None = Field(
        default=None,
        min_length=1,
        max_length=SUBJECT_MAX_LENGTH,
        description='X.500 name as Key Vault writes it: CN=web.example.com, O="Example, Inc."',
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(f"self.matches(r'{SUBJECT_PATTERN}')", SUBJECT_MESSAGE)
            ]
        },
    )
    dns_names: list[Annotated[str, Field(max_length=253, pattern=DNS_NAME_PATTERN)]] | None = Field(
        default=None, max_length=MAX_NAMES
    )
    emails: (
        list[Annotated[str, Field(max_length=EMAIL_MAX_LENGTH, pattern=EMAIL_PATTERN)]] | None
    ) = Field(default=None, max_length=MAX_NAMES, description="e-mail addresses (ASCII)")
    upns: list[Annotated[str, Field(max_length=UPN_MAX_LENGTH, pattern=UPN_PATTERN)]] | None = (
        Field(default=None, max_length=MAX_NAMES, description="user principal names, user@suffix")
    )
    validity_months: int | None = Field(default=None, ge=1, le=MAX_VALIDITY_MONTHS)
    key: Key = Field(default_factory=Key)
    content_type: ContentType = ContentType.PKCS12
    key_usage: list[KeyUsage] | None = None
    ekus: list[Annotated[str, Field(pattern=OID_PATTERN)]] | None = Field(
        default=None, description="extended key usage OIDs, e.g. 1.3.6.1.5.5.7.3.1"
    )
    lifetime_actions: list[LifetimeAction] | None = Field(
        default=None, max_length=1, description="at most one action (Key Vault's rule)"
    )

    @model_validator(mode="after")
    def _names(self) -> Policy:
        if not (self.subject or self.dns_names or self.emails or self.upns):
            raise ValueError("a subject or at least one of dnsNames, emails, upns is required")
        if self.subject is not None and not _SUBJECT_RE.fullmatch(self.subject):
            raise ValueError(SUBJECT_MESSAGE)
        most = DAYS_PER_VALIDITY_MONTH * (self.validity_months or DEFAULT_VALIDITY_MONTHS)
        for action in self.lifetime_actions or ():
            days = action.trigger.days_before_expiry
            if days is not None and days > most:
                raise ValueError(DAYS_BEFORE_EXPIRY_MESSAGE)
        return self
