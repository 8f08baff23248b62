"""KeyVault / ClusterKeyVault readiness: can the operator reach the vault and authenticate?

One cheap read of a certificate name that should not exist: a 404 proves TLS, the URL and the
credential all work. It runs when a vault object is first seen or its spec changes, never on a
timer.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from kvcert.keyvault.errors import (
    CertificateNotFound,
    Forbidden,
    KeyVaultError,
    KeyVaultTransportError,
    Unauthorized,
)
from kvcert.runtime.loop import Context
from kvcert.runtime.vaults import VaultUnavailable

log = logging.getLogger("kvcert.vault")
PROBE_NAME = "kvcert-readiness-probe"


async def _verdict(ctx: Context, body: Mapping[str, Any], cluster: bool) -> tuple[bool, str, str]:
    try:
        client = await ctx.vaults.for_body(body, cluster=cluster)
    except VaultUnavailable as unavailable:
        return False, "InvalidConfiguration", unavailable.message
    try:
        await client.get_certificate(PROBE_NAME)
    except CertificateNotFound:
        return True, "Reachable", f"{client.vault_url} answered and accepted the credential"
    except (Unauthorized, Forbidden) as error:
        await ctx.vaults.forget(client)
        return False, "AccessDenied", f"{client.vault_url}: {error}"
    except KeyVaultTransportError as error:
        return False, "Unreachable", f"{client.vault_url}: {error}"
    except KeyVaultError as error:
        return False, "KeyVaultError", f"{client.vault_url}: {error}"
    return True, "Reachable", f"{client.vault_url} answered"


async def probe_vault(ctx: Context, body: Mapping[str, Any], *, cluster: bool) -> None:
    meta = body.get("metadata", {})
    ready, reason, message = await _verdict(ctx, body, cluster)
    status = "True" if ready else "False"
    previous = next(
        (c for c in (body.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"),
        None,
    )
    changed = previous is None or previous.get("status") != status
    condition = {
        "type": "Ready",
        "status": status,
        "reason": reason,
        "message": message[:1000],
        "observedGeneration": meta.get("generation"),
        "lastTransitionTime": (
            datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            if changed
            else previous.get("lastTransitionTime")
            if previous
            else None
        ),
    }
    patch = {"observedGeneration": meta.get("generation"), "conditions": [condition]}
    namespace = None if cluster else meta.get("namespace")
    await ctx.kube.patch_vault_status(namespace, str(meta.get("name")), patch)
    kind = "ClusterKeyVault" if cluster else "KeyVault"
    await ctx.events.emit(body, "Normal" if ready else "Warning", reason, message, kind)
