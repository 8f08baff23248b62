"""What a create or import request may carry, beyond the policy's own rules.

Request fields this vault does not implement are refused, never silently dropped; an imported
certificate's policy is read from the certificate and completed with what the request gives
(the ImportCertificate and CreateCertificate definitions of the 2026-04-01 REST API).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kvcert.vault import bundles, crypto, views
from kvcert.vault import policy as policies
from kvcert.vault.errors import bad_parameter
from kvcert.vault.operation import new_id
from kvcert.vault.store import Doc
from kvcert.vault.views import Ctx
from kvcert.vault.wire import ImportIn, PolicyIn

if TYPE_CHECKING:
    from kvcert.vault.service import VaultService


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


async def import_certificate(service: VaultService, ctx: Ctx, name: str, body: ImportIn) -> Doc:
    """ImportCertificate: a new version from PEM or PKCS#12, issued at once (`200`).

    Every write is one transaction; a refusal stores nothing. Overwrites a pending object
    that is not inProgress, as a create does.
    """
    refuse_unsupported(body.policy)
    preserve = preserve_order(ctx, body.preserve_cert_order)
    given = body.policy.model_dump(exclude_none=True, by_alias=True) if body.policy else {}
    content_type = given.get("secret_props", {}).get("contentType")
    if content_type not in (None, *policies.CONTENT_TYPES):
        raise bad_parameter(bundles.POLICY_INVALID)
    try:
        shape, raw = await service.blocking(bundles.import_shape, body.value)
        bundles.check_import_content_type(shape, content_type)
    except crypto.CryptoInputError as exc:
        raise bad_parameter(str(exc)) from exc
    service.check_writable(name)
    load = bundles.load_pem_bundle if shape == "pem" else bundles.load_pfx
    try:
        bundle = await service.blocking(load, raw, body.pwd)
    except crypto.CryptoInputError as exc:
        raise bad_parameter(str(exc)) from exc
    policy = import_policy(given, bundle)
    existing = service.check_writable(name)
    now = service.clock()
    enabled = body.attributes.enabled if body.attributes else None
    version = new_id()
    doc = bundles.version_doc(
        bundle.leaf_der,
        bundle.chain_der,
        enabled=enabled is not False,
        tags=body.tags,
        content_type=policy["secret_props"]["contentType"],
        now=now,
        preserve_order=preserve,
        leaf_index=bundle.leaf_index,
    )
    cert = service.cert_doc(existing, policy, now)
    with service.store.transaction():
        service.store.put_certificate(name, cert)
        service.store.delete_operation(name)
        service.store.put_version(name, version, doc, bundle.key_pem)
    return views.bundle(ctx, name, cert, version, doc, op=None)
