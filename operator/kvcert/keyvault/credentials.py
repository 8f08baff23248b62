"""Where the client's bearer tokens come from, and which audience they are for.

Key Vault says which token it wants: the first request goes out without one, and the 401
carries `WWW-Authenticate: Bearer authorization="...", resource="..."`. The scope is
`resource + "/.default"` (sovereign clouds and the local vault differ from
`https://vault.azure.net`). Like Microsoft's SDK, the client checks that the vault's host lies
under the resource's domain before it asks for a token, so a vault URL written in a namespaced
resource cannot phish a token meant for another audience.

Nothing here reads Kubernetes: the caller hands in plain values (a token string, a tenant id,
a token file path).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit

from azure.core.credentials_async import AsyncTokenCredential
from azure.identity.aio import (
    ClientSecretCredential,
    ManagedIdentityCredential,
    WorkloadIdentityCredential,
)

DEFAULT_SCOPE = "https://vault.azure.net/.default"


@runtime_checkable
class VaultCredential(Protocol):
    """Gives a bearer token for a scope. Implementations cache and refresh as they see fit."""

    async def get_token(self, scope: str) -> str: ...

    async def close(self) -> None: ...


class StaticToken:
    """A fixed token, for the local vault (read from a Kubernetes Secret by the caller)."""

    def __init__(self, token: str) -> None:
        if not token.strip():
            raise ValueError("the token is empty")
        self._token = token.strip()

    async def get_token(self, scope: str) -> str:
        return self._token

    async def close(self) -> None:
        return None

    def __repr__(self) -> str:
        return "StaticToken(<redacted>)"


class AzureIdentityCredential:
    """Adapts an azure.identity.aio credential (which caches tokens itself) to VaultCredential."""

    def __init__(self, credential: AsyncTokenCredential) -> None:
        self._credential = credential

    async def get_token(self, scope: str) -> str:
        return (await self._credential.get_token(scope)).token

    async def close(self) -> None:
        await self._credential.close()

    def __repr__(self) -> str:
        return f"AzureIdentityCredential({type(self._credential).__name__})"


def workload_identity(
    *, tenant_id: str, client_id: str, token_file_path: str
) -> AzureIdentityCredential:
    """AKS workload identity: a projected service account token exchanged for an Entra token."""
    return AzureIdentityCredential(
        WorkloadIdentityCredential(
            tenant_id=tenant_id, client_id=client_id, token_file_path=token_file_path
        )
    )


def managed_identity(*, client_id: str | None = None) -> AzureIdentityCredential:
    """The node's or pod's managed identity; `client_id` picks a user-assigned one."""
    return AzureIdentityCredential(ManagedIdentityCredential(client_id=client_id))


def client_secret(*, tenant_id: str, client_id: str, secret: str) -> AzureIdentityCredential:
    """A service principal with a client secret."""
    return AzureIdentityCredential(ClientSecretCredential(tenant_id, client_id, secret))


@dataclass(frozen=True)
class Challenge:
    """A parsed `WWW-Authenticate: Bearer ...` challenge."""

    resource: str
    scope: str
    authorization: str | None = None


_PARAM = re.compile(r'(\w+)\s*=\s*(?:"([^"]*)"|([^\s,]+))')


def parse_challenge(header: str | None) -> Challenge | None:
    """Read a Key Vault bearer challenge; None when the header is absent or not one."""
    if not header or not header.strip().lower().startswith("bearer"):
        return None
    params = {m.group(1).lower(): m.group(2) or m.group(3) or "" for m in _PARAM.finditer(header)}
    resource = params.get("resource", "").rstrip("/")
    scope = params.get("scope", "")
    if not scope and not resource:
        return None
    if not scope:
        scope = f"{resource}/.default"
    if not resource:
        resource = scope.removesuffix("/.default").rstrip("/")
    authorization = params.get("authorization") or params.get("authorization_uri")
    return Challenge(resource=resource, scope=scope, authorization=authorization)


def _netloc(url: str) -> str:
    split = urlsplit(url if "//" in url else f"//{url}")
    host = (split.hostname or "").lower()
    port = split.port
    return host if port in (None, 443) else f"{host}:{port}"


def challenge_matches_vault(vault_url: str, challenge: Challenge) -> bool:
    """The SDK's `verify_challenge_resource`: the vault host must end with "." + the
    resource's host (port included unless 443)."""
    return _netloc(vault_url).endswith("." + _netloc(challenge.resource))
