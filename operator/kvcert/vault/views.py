"""Response bodies: stored records to Key Vault's wire shapes (DESIGN §3.1, §3.3).

`base` is `https://{host}[:port]` as the client addressed the vault, so ids are valid URLs for
the SDK whatever name or port it used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kvcert.vault.operation import CANCELLED, COMPLETED, IN_PROGRESS, Operation
from kvcert.vault.profiles import Profile
from kvcert.vault.store import Doc

RECOVERY_LEVEL = "Recoverable+Purgeable"
#: api-versions that know `preserveCertOrder` (7.6 on): in requests, bundles and operations.
PRESERVE_ORDER_VERSIONS = frozenset(("7.6", "2025-07-01", "2026-04-01"))
RECOVERABLE_DAYS = 90


@dataclass(frozen=True)
class Ctx:
    """What every rendering needs: where the client reached us, which API version, which profile."""

    base: str
    api_version: str
    profile: Profile

    def cert_url(self, name: str, version: str | None = None) -> str:
        url = f"{self.base}/certificates/{name}"
        return f"{url}/{version}" if version else url

    @property
    def knows_preserve_order(self) -> bool:
        return self.api_version in PRESERVE_ORDER_VERSIONS


def _attributes(version: Doc) -> dict[str, Any]:
    return {
        "enabled": version["enabled"],
        "nbf": version["nbf"],
        "exp": version["exp"],
        "created": int(version["created"]),
        "updated": int(version["updated"]),
        "recoveryLevel": RECOVERY_LEVEL,
        "recoverableDays": RECOVERABLE_DAYS,
    }


def policy(ctx: Ctx, name: str, cert: Doc) -> dict[str, Any]:
    body = dict(cert["policy"])
    body["attributes"] = {
        "enabled": body.get("attributes", {}).get("enabled", True),
        "created": int(cert["created"]),
        "updated": int(cert["policy_updated"]),
    }
    return {"id": f"{ctx.cert_url(name)}/policy", **body}


def bundle(
    ctx: Ctx, name: str, cert: Doc, version: str, doc: Doc, *, op: Operation | None
) -> dict[str, Any]:
    """A certificate version, with its policy and, while an operation exists, `pending`."""
    body: dict[str, Any] = {
        "id": ctx.cert_url(name, version),
        "kid": f"{ctx.base}/keys/{name}/{version}",
        "sid": f"{ctx.base}/secrets/{name}/{version}",
        "x5t": doc["x5t"],
        "cer": doc["cer"],
        "contentType": doc["content_type"],
        "attributes": _attributes(doc),
        "policy": policy(ctx, name, cert),
        "tags": doc.get("tags") or {},
    }
    if ctx.knows_preserve_order:
        body["preserveCertOrder"] = bool(doc.get("preserve_order", False))
    if op is not None:
        body["pending"] = {"id": f"{ctx.cert_url(name)}/pending"}
    return body


def pending_only(ctx: Ctx, name: str, cert: Doc, op: Operation) -> dict[str, Any]:
    """A certificate that has only its pending version: disabled, no key, no x5t, no cer."""
    body: dict[str, Any] = {
        "id": ctx.cert_url(name, op.version),
        "attributes": {
            "enabled": False,
            "created": int(op.created),
            "updated": int(op.created),
            "recoveryLevel": RECOVERY_LEVEL,
            "recoverableDays": RECOVERABLE_DAYS,
        },
        "policy": policy(ctx, name, cert),
        "pending": {"id": f"{ctx.cert_url(name)}/pending"},
        "tags": op.tags or {},
    }
    if ctx.knows_preserve_order:
        body["preserveCertOrder"] = op.preserve_order
    return body


def item(ctx: Ctx, name: str, version: str | None, doc: Doc | None, op: Operation | None) -> Doc:
    """A list entry: a certificate (version=None) or one of its versions."""
    if doc is None:
        assert op is not None
        return {
            "id": ctx.cert_url(name, version),
            "attributes": {
                "enabled": False,
                "created": int(op.created),
                "updated": int(op.created),
                "recoveryLevel": RECOVERY_LEVEL,
            },
            "tags": op.tags or {},
        }
    return {
        "id": ctx.cert_url(name, version),
        "x5t": doc["x5t"],
        "attributes": _attributes(doc),
        "tags": doc.get("tags") or {},
    }


def bare_item(ctx: Ctx, name: str, cert: Doc) -> Doc:
    """A list entry for a certificate object that has no issued version and no operation left
    (deleted while pending): disabled, no x5t."""
    return {
        "id": ctx.cert_url(name),
        "attributes": {
            "enabled": False,
            "created": int(cert["created"]),
            "updated": int(cert["updated"]),
            "recoveryLevel": RECOVERY_LEVEL,
        },
        "tags": {},
    }


def deleted(ctx: Ctx, name: str, cert: Doc, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "recoveryId": f"{ctx.base}/deletedcertificates/{name}",
        "deletedDate": int(cert["deleted_date"]),
        "scheduledPurgeDate": int(cert["scheduled_purge_date"]),
        **body,
    }


def operation(ctx: Ctx, op: Operation, *, created: bool = False) -> dict[str, Any]:
    """The pending operation as the profile spells it (§3.2)."""
    status = op.status
    if status == CANCELLED:
        status = ctx.profile.cancelled_status
    elif created and status == IN_PROGRESS and op.kind == "ca":
        status = ctx.profile.issuer_create_status
    body: dict[str, Any] = {
        "id": f"{ctx.cert_url(op.name)}/pending",
        "issuer": {"name": op.issuer_name},
        "csr": op.csr,
        "cancellation_requested": op.cancellation_requested,
        "status": status,
        "status_details": op.status_details,
        "request_id": op.request_id,
    }
    if ctx.knows_preserve_order:
        body["preserveCertOrder"] = op.preserve_order
    if op.status == COMPLETED:
        body["target"] = ctx.profile.target(ctx.cert_url(op.name), ctx.api_version)
        if not ctx.profile.completed_has_status_details:
            del body["status_details"]
    if op.error is not None:
        body["error"] = dict(op.error)
    return body


def issuer(ctx: Ctx, name: str, doc: Doc) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": f"{ctx.base}/certificates/issuers/{name}",
        "provider": doc["provider"],
    }
    credentials = doc.get("credentials")
    if credentials and credentials.get("account_id"):
        body["credentials"] = {"account_id": credentials["account_id"]}
    if doc.get("org_details"):
        body["org_details"] = doc["org_details"]
    body["attributes"] = {
        "enabled": doc.get("enabled", True),
        "created": int(doc["created"]),
        "updated": int(doc["updated"]),
    }
    return body


def contacts(ctx: Ctx, doc: Doc) -> dict[str, Any]:
    return {"id": f"{ctx.base}/certificates/contacts", "contacts": doc["contacts"]}


def secret(ctx: Ctx, name: str, version: str, doc: Doc, value: str) -> dict[str, Any]:
    return {
        "value": value,
        "contentType": doc["content_type"],
        "id": f"{ctx.base}/secrets/{name}/{version}",
        "kid": f"{ctx.base}/keys/{name}/{version}",
        "managed": True,
        "attributes": _attributes(doc),
        "tags": doc.get("tags") or {},
    }
