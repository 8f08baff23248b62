"""`GET /secrets/{name}[/{version}]`: a certificate version's secret, as Key Vault serves it."""

from __future__ import annotations

from kvcert.vault import bundles, crypto, views
from kvcert.vault.errors import VaultError, secret_disabled, secret_not_found
from kvcert.vault.service import VaultService
from kvcert.vault.store import Doc
from kvcert.vault.views import Ctx


async def read_secret(service: VaultService, ctx: Ctx, name: str, version: str | None) -> Doc:
    """The certificate's secret: PKCS#12 or PEM with the key, for exportable keys only.

    What the version's attributes say is enforced here: a disabled version is `403
    Forbidden` (innererror `SecretDisabled`), as Key Vault answers. `nbf`/`exp` are not:
    Key Vault serves a secret's value outside its validity window too. A name that is
    unknown, soft-deleted or has only a pending version, and an unknown or pending version
    id, are `404 SecretNotFound`: the secret of a version exists once it is issued.
    """
    asked = f"{name}/{version}" if version else name
    found = service.store.get_certificate(name)
    if found is None or found[1]:
        raise secret_not_found(asked)
    cert = found[0]
    stored = service.store.get_version(name, version.lower() if version else None)
    if stored is None:
        raise secret_not_found(asked)
    if not stored[1]["enabled"]:
        raise secret_disabled()
    key = service.store.version_key(name, stored[0])
    if key is None or not cert["policy"]["key_props"].get("exportable", True):
        raise VaultError(403, "Forbidden", f"The key of certificate {name} is not exportable.")
    doc = stored[1]
    bundle = bundles.Bundle(
        key,
        crypto.b64decode_strict(doc["cer"]),
        tuple(crypto.b64decode_strict(c) for c in doc["chain"]),
        doc.get("leaf_index", 0) if doc.get("preserve_order") else 0,
    )
    value = await service.blocking(bundles.export_secret, bundle, doc["content_type"])
    return views.secret(ctx, name, stored[0], doc, value)
