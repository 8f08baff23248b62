"""What a create or import request may carry, beyond the policy's own rules.

Request fields this vault does not implement are refused, never silently dropped; an imported
certificate's policy is read from the certificate and completed with what the request gives
(the ImportCertificate and CreateCertificate definitions of the 2026-04-01 REST API).
"""

from __future__ import annotations

from kvcert.vault import bundles
from kvcert.vault import policy as policies
from kvcert.vault.errors import bad_parameter
from kvcert.vault.store import Doc
from kvcert.vault.views import Ctx
from kvcert.vault.wire import PolicyIn


def refuse_unsupported(policy: PolicyIn | None) -> None:
    """Request fields this vault does not implement are refused, never silently dropped:
    `policy.platformManaged` is "intended for internal use only"."""
    if policy is not None and policy.platform_managed is not None:
        raise bad_parameter(
            "Property platformManaged is for internal use only and is not accepted by this vault."
        )


def preserve_order(ctx: Ctx, given: bool | None) -> bool:
    """`preserveCertOrder`: "whether the certificate chain preserves its original order. The
    default value is false, which sets the leaf certificate at index 0." Before 7.6 the field
    does not exist and is ignored like any unknown field."""
    return bool(given) and ctx.knows_preserve_order


def import_policy(given: Doc, bundle: bundles.Bundle) -> Doc:
    """The policy of an imported certificate: read from it, with every field the request gives.

    `key_props.kty`, `key_size` and `crv` describe the key being imported: a value that
    contradicts it is `Property policy has invalid value`; `reuse_key` and every `x509_props`
    field are kept as given (they govern the next version a create makes).
    """
    key = bundles.key_spec_of(bundle.key_pem)
    props = given.get("key_props", {})
    kty = props.get("kty")
    mismatch = (
        (kty is not None and kty.removesuffix("-HSM") != key.kty)
        or (props.get("key_size") is not None and props["key_size"] != key.size)
        or (props.get("crv") is not None and (key.kty != "EC" or props["crv"] != key.curve))
    )
    if mismatch:
        raise bad_parameter(bundles.POLICY_INVALID)
    policy = policies.from_imported(given, bundle.leaf_der, bundle.key_pem)
    if kty is not None:
        policy["key_props"]["kty"] = kty
    if "reuse_key" in props:
        policy["key_props"]["reuse_key"] = props["reuse_key"]
    if "x509_props" in given:
        policy["x509_props"] = {**policy["x509_props"], **given["x509_props"]}
    return policies.normalize(policy)
