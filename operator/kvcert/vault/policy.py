"""Certificate policies: validate a request's policy, fill Key Vault's defaults, merge updates.

A policy is stored as the wire dict Key Vault returns (without `id`), so reading it back is a
copy. Every check raises `BadParameter` before anything is stored.
"""

from __future__ import annotations

import copy
import ipaddress
import re
from typing import Any

from kvcert.vault import bundles, crypto, issuers, names
from kvcert.vault.errors import bad_parameter
from kvcert.vault.wire import PolicyIn

PKCS12 = "application/x-pkcs12"
PEM = "application/x-pem-file"
CONTENT_TYPES = (PKCS12, PEM)
RSA_SIZES = (2048, 3072, 4096)
KTYS = ("RSA", "RSA-HSM", "EC", "EC-HSM")
ACTIONS = ("EmailContacts", "AutoRenew")
VALIDITY_MIN, VALIDITY_MAX, VALIDITY_DEFAULT = 1, 1200, 12
DAYS_PER_MONTH = 27  # days_before_expiry is at most 27 x validity_months (the Trigger definition)

Policy = dict[str, Any]


def merge(base: Policy | None, update: PolicyIn) -> Policy:
    """Apply the fields `update` sets onto `base` (a PATCH), then validate and fill defaults."""
    out: Policy = copy.deepcopy(base) if base else {}
    given = update.model_dump(exclude_none=True, by_alias=True)
    for section in ("key_props", "secret_props", "x509_props", "issuer", "attributes"):
        if section in given:
            merged = dict(out.get(section) or {})
            merged.update(given[section])
            out[section] = merged
    if "lifetime_actions" in given:
        out["lifetime_actions"] = given["lifetime_actions"]
    return normalize(out)


def normalize(policy: Policy) -> Policy:
    """Validate every field and fill the defaults Key Vault applies."""
    key = dict(policy.get("key_props") or {})
    kty = key.get("kty") or "RSA"
    if kty not in KTYS:
        raise bad_parameter(f"Invalid key type: {kty}. Supported types: {', '.join(KTYS)}.")
    key["kty"] = kty
    key.setdefault("exportable", True)
    key.setdefault("reuse_key", False)
    if kty.startswith("EC"):
        crv = key.get("crv") or "P-256"
        if crv not in crypto.CURVES:
            raise bad_parameter(f"Invalid curve name: {crv}.")
        bits = crypto.CURVE_BITS[crv]
        if key.get("key_size") not in (None, bits):
            raise bad_parameter(f"Key size {key['key_size']} does not match curve {crv}.")
        key["crv"] = crv
        key["key_size"] = bits
    else:
        size = key.get("key_size") or 2048
        if size not in RSA_SIZES:
            raise bad_parameter(f"Invalid RSA key size: {size}. Supported: 2048, 3072, 4096.")
        if key.get("crv"):
            raise bad_parameter("A curve name is only valid for EC keys.")
        key["key_size"] = size
    secret = dict(policy.get("secret_props") or {})
    content_type = secret.get("contentType") or PKCS12
    if content_type not in CONTENT_TYPES:
        raise bad_parameter(f"Invalid content type: {content_type}.")
    secret["contentType"] = content_type
    x509 = _x509(dict(policy.get("x509_props") or {}))
    issuer = dict(policy.get("issuer") or {})
    issuer["name"] = issuer.get("name") or "Unknown"
    if not re.fullmatch(r"[0-9a-zA-Z-]{1,127}", issuer["name"]):
        raise bad_parameter(f"Invalid issuer name: {issuer['name']}.")
    given_actions = policy.get("lifetime_actions") or []
    if len(given_actions) > 1:
        raise bad_parameter("At most one action is allowed")
    actions = [_action(a, x509["validity_months"]) for a in given_actions]
    if not actions:
        actions = [default_action(issuer["name"])]
    attributes = dict(policy.get("attributes") or {})
    attributes.setdefault("enabled", True)
    return {
        "key_props": key,
        "secret_props": secret,
        "x509_props": x509,
        "lifetime_actions": actions,
        "issuer": issuer,
        "attributes": attributes,
    }


def default_action(issuer_name: str) -> dict[str, Any]:
    """The lifetime action Key Vault gives a policy that has none: at 80 % of the lifetime,
    `AutoRenew` when an issuer signs (Self or a provider), `EmailContacts` for `Unknown`.

    Sources: the live service in Microsoft's SDK recordings (azure-sdk-for-js: a `Self` create
    answers `AutoRenew` at 80; an import without policy, issuer `Unknown`, `EmailContacts` at
    80) and the REST examples (GetCertificate, ImportCertificate, MergeCertificate: `Unknown`
    with `EmailContacts` at 80).
    """
    kind = "EmailContacts" if issuers.classify(issuer_name) == "manual" else "AutoRenew"
    return {"trigger": {"lifetime_percentage": 80}, "action": {"action_type": kind}}


def _x509(x509: dict[str, Any]) -> dict[str, Any]:
    subject = x509.get("subject")
    sans = {k: v for k, v in (x509.get("sans") or {}).items() if v}
    if subject is not None:
        try:
            crypto.parse_subject(subject)
        except crypto.CryptoInputError as exc:
            raise bad_parameter(str(exc)) from exc
    for ip in sans.get("ipAddresses", []):
        try:
            ipaddress.ip_address(ip)
        except ValueError as exc:
            raise bad_parameter(f"Invalid IP address in subject alternative names: {ip}.") from exc
    for dns in sans.get("dns_names", []):
        if not re.fullmatch(r"[A-Za-z0-9*]([A-Za-z0-9.*-]{0,251}[A-Za-z0-9])?", dns):
            raise bad_parameter(f"Invalid DNS name in subject alternative names: {dns}.")
    if sans:
        x509["sans"] = sans
    else:
        x509.pop("sans", None)
    for oid in x509.get("ekus") or []:
        if not names.is_oid(oid):
            raise bad_parameter(f"Invalid extended key usage: {oid}.")
    for usage in x509.get("key_usage") or []:
        if usage not in crypto.KEY_USAGES:
            raise bad_parameter(f"Invalid key usage: {usage}.")
    months = x509.get("validity_months", VALIDITY_DEFAULT)
    if not VALIDITY_MIN <= months <= VALIDITY_MAX:
        raise bad_parameter(f"validity_months must be between {VALIDITY_MIN} and {VALIDITY_MAX}.")
    x509["validity_months"] = months
    return x509


def _action(action: dict[str, Any], validity_months: int) -> dict[str, Any]:
    trigger = action.get("trigger") or {}
    kind = (action.get("action") or {}).get("action_type")
    if kind not in ACTIONS:
        raise bad_parameter(f"Invalid lifetime action type: {kind}.")
    pct, days = trigger.get("lifetime_percentage"), trigger.get("days_before_expiry")
    if (pct is None) == (days is None):
        raise bad_parameter(
            "A lifetime action trigger needs exactly one of lifetime_percentage "
            "or days_before_expiry."
        )
    if pct is not None and not 1 <= pct <= 99:
        raise bad_parameter("lifetime_percentage must be between 1 and 99.")
    most = DAYS_PER_MONTH * validity_months
    if days is not None and not 1 <= days <= most:
        raise bad_parameter(
            f"days_before_expiry must be between 1 and {most} "
            f"({DAYS_PER_MONTH} x validity_months {validity_months})."
        )
    return {"trigger": trigger, "action": {"action_type": kind}}


def require_subject(policy: Policy) -> None:
    """A create needs something to put in the certificate: a subject or SANs."""
    x509 = policy["x509_props"]
    if not x509.get("subject") and not x509.get("sans"):
        raise bad_parameter("The policy must have a subject or subject alternative names.")


def key_spec(policy: Policy) -> crypto.KeySpec:
    key = policy["key_props"]
    return crypto.KeySpec(key["kty"], key["key_size"], key.get("crv") or "P-256")


def cert_spec(policy: Policy) -> crypto.CertSpec:
    x509 = policy["x509_props"]
    sans = x509.get("sans") or {}
    return crypto.CertSpec(
        subject=x509.get("subject") or "CN=" + (sans.get("dns_names") or ["certificate"])[0],
        dns_names=tuple(sans.get("dns_names", ())),
        emails=tuple(sans.get("emails", ())),
        upns=tuple(sans.get("upns", ())),
        ip_addresses=tuple(sans.get("ipAddresses", ())),
        uris=tuple(sans.get("uris", ())),
        ekus=tuple(x509.get("ekus") or ()),
        key_usage=tuple(x509.get("key_usage") or ()),
        validity_months=x509["validity_months"],
    )


def from_imported(given: Policy | None, leaf_der: bytes, key_pem: bytes) -> Policy:
    """The policy of an imported certificate: read from the certificate, given fields win."""
    spec = bundles.public_cert_spec(leaf_der)
    key = bundles.key_spec_of(key_pem)
    base: Policy = {
        "key_props": {"kty": key.kty, "key_size": key.size, "reuse_key": False},
        "x509_props": {
            "subject": spec.subject,
            "ekus": list(spec.ekus),
            "key_usage": [],
            "validity_months": min(spec.validity_months, 1200),
        },
        "issuer": {"name": "Unknown"},
    }
    if spec.dns_names or spec.emails:
        base["x509_props"]["sans"] = {
            k: v
            for k, v in (("dns_names", list(spec.dns_names)), ("emails", list(spec.emails)))
            if v
        }
    if key.kty == "EC":
        base["key_props"]["crv"] = key.curve
    given = given or {}
    for section in ("secret_props", "issuer", "attributes"):
        if section in given:
            base[section] = {**base.get(section, {}), **given[section]}
    if "exportable" in given.get("key_props", {}):
        base["key_props"]["exportable"] = given["key_props"]["exportable"]
    if "lifetime_actions" in given:
        base["lifetime_actions"] = given["lifetime_actions"]
    return normalize(base)
