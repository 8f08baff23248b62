"""The one place wire objects become the operator's observed values.

Both profiles of the vault (and the live service) spell some things differently: status case,
`canceled`/`cancelled`, a `target` with or without `?api-version=`. Each difference is folded
here, so that equal states always compare equal downstream.
"""

from __future__ import annotations

import base64
import binascii
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from cryptography import x509

from kvcert.keyvault import wire
from kvcert.keyvault.errors import (
    MAX_CODE_CHARS,
    KeyVaultError,
    KeyVaultHTTPError,
    UnexpectedResponse,
    scrub,
)
from kvcert.reconcile.issuer import Administrator, IssuerSettings, ObservedIssuer
from kvcert.reconcile.observed import (
    CallError,
    LifetimeRule,
    ObservedCertificate,
    ObservedOperation,
    OperationError,
    OperationStatus,
)

STATUS_DETAILS_MAX = 1000


@dataclass(frozen=True)
class Issuer:
    """A certificate issuer configured in the vault (its password is never read back)."""

    name: str
    provider: str
    account_id: str | None = None
    enabled: bool = True
    organization_id: str | None = None
    administrators: tuple[Administrator, ...] = ()
    id: str = ""
    created: datetime | None = None
    updated: datetime | None = None

    def observed(self) -> ObservedIssuer:
        """As kvcert.reconcile.issuer compares it with a spec."""
        settings = IssuerSettings(
            provider=self.provider,
            account_id=self.account_id,
            organization_id=self.organization_id,
            administrators=self.administrators,
            enabled=self.enabled,
        )
        return ObservedIssuer(
            id=self.id, settings=settings, created=self.created, updated=self.updated
        )


def operation_from_wire(
    op: wire.CertificateOperation, *, retry_after: float | None = None
) -> ObservedOperation:
    if not op.request_id or not op.status:
        raise UnexpectedResponse("pending operation without request_id or status")
    try:
        status = OperationStatus.parse(op.status)
    except ValueError as exc:
        raise UnexpectedResponse(str(exc)) from None
    error = None
    if op.error is not None and (op.error.code or op.error.message):
        error = OperationError(
            code=scrub(op.error.code or "", MAX_CODE_CHARS), message=scrub(op.error.message or "")
        )
    return ObservedOperation(
        request_id=op.request_id,
        status=status,
        status_details=scrub(op.status_details or "", STATUS_DETAILS_MAX),
        cancellation_requested=bool(op.cancellation_requested),
        issuer_name=op.issuer.name if op.issuer else None,
        csr_pem=csr_to_pem(op.csr) if op.csr else None,
        target=strip_query(op.target) if op.target else None,
        error=error,
        retry_after=retry_after,
    )


def certificate_from_wire(bundle: wire.CertificateBundle) -> ObservedCertificate:
    if not bundle.id:
        raise UnexpectedResponse("certificate bundle without id")
    attributes = bundle.attributes or wire.CertificateAttributes()
    der = _b64decode(bundle.cer, "cer") if bundle.cer else None
    return ObservedCertificate(
        id=strip_query(bundle.id),
        version=version_from_id(bundle.id),
        enabled=bool(attributes.enabled),
        x5t=bundle.x5t,
        serial_number=serial_number(der) if der else None,
        not_before=unix_to_datetime(attributes.nbf),
        not_after=unix_to_datetime(attributes.exp),
        der=der,
        pending_id=bundle.pending.id if bundle.pending else None,
        tags=dict(bundle.tags or {}),
        lifetime_actions=lifetime_rules(bundle.policy),
        exportable=key_exportable(bundle.policy),
    )


def key_exportable(policy: Mapping[str, Any] | None) -> bool | None:
    """The policy's `key_props.exportable` (REST: KeyProperties), read leniently: None when
    absent or not a boolean."""
    key = policy.get("key_props") if isinstance(policy, Mapping) else None
    value = key.get("exportable") if isinstance(key, Mapping) else None
    return value if isinstance(value, bool) else None


def lifetime_rules(policy: Mapping[str, Any] | None) -> tuple[LifetimeRule, ...] | None:
    """The policy's `lifetime_actions`, read leniently: an entry that does not parse is left
    out rather than failing the whole certificate read."""
    if not isinstance(policy, Mapping) or not isinstance(policy.get("lifetime_actions"), list):
        return None
    rules: list[LifetimeRule] = []
    for item in policy["lifetime_actions"]:
        trigger = item.get("trigger") if isinstance(item, Mapping) else None
        action = item.get("action") if isinstance(item, Mapping) else None
        kind = action.get("action_type") if isinstance(action, Mapping) else None
        if not isinstance(trigger, Mapping) or not isinstance(kind, str):
            continue
        pct, days = trigger.get("lifetime_percentage"), trigger.get("days_before_expiry")
        rules.append(
            LifetimeRule(
                action=kind,
                lifetime_percentage=pct if isinstance(pct, int) else None,
                days_before_expiry=days if isinstance(days, int) else None,
            )
        )
    return tuple(rules)


def call_error(error: KeyVaultError) -> CallError:
    """Reduce a client error to what decisions branch on: status, code and the inner code
    (a 409 for a soft-deleted name and one for a pending operation differ only there). Status
    None means no HTTP answer (transport), or no usable one (a credential failure or an
    unexpected response): all worth another try later, never a tight loop."""
    if isinstance(error, KeyVaultHTTPError):
        return CallError(
            status=error.status,
            code=error.code or type(error).__name__,
            message=error.message,
            retry_after=error.retry_after,
            inner_code=error.inner_code or "",
        )
    return CallError(status=None, code=type(error).__name__, message=scrub(str(error)))


def issuer_from_wire(name: str, bundle: wire.IssuerBundle) -> Issuer:
    """REST: IssuerBundle. Empty strings are None, so that an echo compares equal to a spec
    that left the field out."""
    org = bundle.org_details
    attributes = bundle.attributes
    return Issuer(
        name=name,
        provider=bundle.provider or "",
        account_id=(bundle.credentials.account_id or None) if bundle.credentials else None,
        enabled=True if attributes is None else attributes.enabled is not False,
        organization_id=(org.id or None) if org else None,
        administrators=tuple(
            Administrator(
                first_name=item.first_name or None,
                last_name=item.last_name or None,
                email=item.email or None,
                phone=item.phone or None,
            )
            for item in (org.admin_details if org and org.admin_details else ())
        ),
        id=bundle.id or "",
        created=unix_to_datetime(attributes.created) if attributes else None,
        updated=unix_to_datetime(attributes.updated) if attributes else None,
    )


def csr_to_pem(csr_b64: str) -> str:
    """Re-wrap the base64 DER Key Vault sends as the PEM users paste into a CA's form."""
    der = _b64decode(csr_b64, "csr")
    text = base64.b64encode(der).decode("ascii")
    # Slices, not textwrap: the same 64-column lines at a tenth of the cost (issue #17).
    body = "\n".join(text[i : i + 64] for i in range(0, len(text), 64))
    return f"-----BEGIN CERTIFICATE REQUEST-----\n{body}\n-----END CERTIFICATE REQUEST-----\n"


def serial_number(der: bytes) -> str | None:
    """Upper-case hex of the serial's DER bytes, as the Azure portal and openssl show it. None
    when `cer` is not a certificate (the API's own examples hold placeholders)."""
    try:
        with warnings.catch_warnings():
            # Old certificates (the API's examples among them) carry negative serials, which
            # cryptography still parses but warns about; the bytes are what people compare.
            warnings.simplefilter("ignore")
            serial = x509.load_der_x509_certificate(der).serial_number
    except ValueError:
        return None
    if serial >= 0:
        text = f"{serial:X}"
        return text.zfill(len(text) + len(text) % 2)
    length = 1
    while True:
        try:
            return serial.to_bytes(length, "big", signed=True).hex().upper()
        except OverflowError:
            length += 1


def version_from_id(object_id: str) -> str:
    """`https://host/certificates/{name}/{version}` -> version; "" when the id has none."""
    parts = [p for p in urlsplit(object_id).path.split("/") if p]
    if len(parts) >= 3 and parts[0] in ("certificates", "deletedcertificates", "secrets"):
        return parts[2]
    return ""


def strip_query(url: str) -> str:
    """The documented profile puts `?api-version=` on `target`, the service does not."""
    split = urlsplit(url.strip())
    return urlunsplit((split.scheme, split.netloc, split.path.rstrip("/"), "", ""))


def unix_to_datetime(seconds: int | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, tz=UTC)


def _b64decode(text: str, field: str) -> bytes:
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise UnexpectedResponse(f"field {field!r} is not base64") from None


# --- certificate contacts ----------------------------------------------------------------------


@dataclass(frozen=True)
class Contact:
    """A certificate contact of the vault (REST 7.5: Contact). An empty `name` or `phone` is
    None, so that what Key Vault echoes compares equal to what was sent."""

    email: str
    name: str | None = None
    phone: str | None = None

    def key(self) -> tuple[str, str, str]:
        """What makes two contacts the same: e-mail without case, name and phone as given."""
        return (self.email.casefold(), self.name or "", self.phone or "")


def contacts_from_wire(bundle: wire.Contacts) -> tuple[Contact, ...]:
    """The vault's contacts in its order; an entry without an e-mail address is left out (it
    could not be sent back, and Key Vault mails no one for it)."""
    return tuple(
        Contact(email=item.email, name=item.name or None, phone=item.phone or None)
        for item in bundle.contacts or ()
        if item.email
    )
