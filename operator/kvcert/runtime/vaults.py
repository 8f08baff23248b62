"""From a Certificate's vaultRef to a ready Key Vault client.

Clients are cached per vault object (its uid: a KeyVault deleted and created again under its
name is another object) and its generation: a changed spec (new URL, new
credentials) gets a new client, and a 401 drops the cached one so that a rotated token Secret is
picked up on the next reconcile. A status write or a label on the KeyVault changes nothing. A
replaced client is closed only after RETIRE_SECONDS, so that calls in flight on it finish
(issue #18 §3: closing it at once failed them with "Connector is closed").
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kvcert.api.base import InvalidResource
from kvcert.api.certificate import VaultKind, VaultRef
from kvcert.api.keyvault import ClusterKeyVault, KeyVault, KeyVaultSpec, SecretKeyRef
from kvcert.keyvault import KeyVaultClient
from kvcert.keyvault.credentials import (
    StaticToken,
    VaultCredential,
    client_secret,
    managed_identity,
    workload_identity,
)
from kvcert.keyvault.observe import RequestObserver
from kvcert.keyvault.retry import VaultRateLimiter
from kvcert.keyvault.session import make_ssl_context
from kvcert.reconcile.facts import VaultFacts
from kvcert.runtime.kube import Kube
from kvcert.runtime.settings import OperatorSettings


class VaultUnavailable(Exception):
    """The vault cannot be used now; the message is fit for a condition (no secrets)."""

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.missing = missing

    def facts(self) -> VaultFacts:
        if self.missing:
            return VaultFacts.absent(self.message)
        return VaultFacts(ready=False, message=self.message)


RETIRE_SECONDS = 120.0
"""How long a replaced client stays open for the calls in flight on it: longer than a call's
timeout with its in-call retries (kvcert.keyvault.retry)."""


@dataclass(frozen=True)
class _Key:
    kind: str
    namespace: str | None
    name: str
    uid: str
    generation: str

    def same_vault(self, other: _Key) -> bool:
        return (self.kind, self.namespace, self.name) == (other.kind, other.namespace, other.name)


class VaultClients:
    """One KeyVaultClient per vault object version, shared by all Certificates using it.
    `observer` is given to every client built (kvcert.runtime.metrics counts requests)."""

    def __init__(
        self, kube: Kube, settings: OperatorSettings, observer: RequestObserver | None = None
    ) -> None:
        self._kube = kube
        self._settings = settings
        self._observer = observer
        self._clients: dict[_Key, KeyVaultClient] = {}
        self._lock = asyncio.Lock()
        self._bodies: dict[tuple[bool, str | None, str], dict[str, Any]] = {}
        self._retiring: dict[KeyVaultClient, asyncio.Task[None]] = {}

    def remember(self, body: Mapping[str, Any], *, cluster: bool, deleted: bool = False) -> None:
        """Keep the vault objects the watch delivers, so Certificates need not GET them."""
        meta = body.get("metadata", {})
        key = (cluster, None if cluster else meta.get("namespace"), str(meta.get("name")))
        if deleted:
            self._bodies.pop(key, None)
            kind = "ClusterKeyVault" if cluster else "KeyVault"
            for gone in [
                k for k in self._clients if (k.kind, k.namespace, k.name) == (kind, *key[1:])
            ]:
                self._retire(self._clients.pop(gone))
        else:
            self._bodies[key] = dict(body)

    async def for_ref(self, namespace: str, ref: VaultRef) -> KeyVaultClient:
        """The client for a Certificate in `namespace`; raises VaultUnavailable."""
        cluster = ref.kind is VaultKind.CLUSTER_KEY_VAULT
        vault_namespace = None if cluster else namespace
        body = self._bodies.get((cluster, vault_namespace, ref.name))
        if body is None:  # not delivered by the watch yet (start-up): read it once
            body = await self._kube.get_vault(vault_namespace, ref.name)
        if body is None:
            kind = "ClusterKeyVault" if cluster else "KeyVault"
            raise VaultUnavailable(f"{kind} {ref.name} does not exist", missing=True)
        return await self.for_body(body, cluster=cluster)

    async def for_body(self, body: Mapping[str, Any], *, cluster: bool) -> KeyVaultClient:
        """The client for a KeyVault or ClusterKeyVault object; raises VaultUnavailable."""
        meta = body.get("metadata", {})
        name = str(meta.get("name", ""))
        key = _Key(
            kind="ClusterKeyVault" if cluster else "KeyVault",
            namespace=None if cluster else meta.get("namespace"),
            name=name,
            uid=str(meta.get("uid", "")),
            generation=str(meta.get("generation", "")),
        )
        # The common case, once per reconcile: this version's client exists. No parse and no
        # lock (a thousand reconciles queueing on one lock cost the event loop, issue #17).
        if (found := self._clients.get(key)) is not None:
            return found
        try:
            spec = (ClusterKeyVault if cluster else KeyVault).from_body(body).spec
        except InvalidResource as error:
            raise VaultUnavailable(f"{name} is invalid: {error.message}") from None
        async with self._lock:
            found = self._clients.get(key)
            if found is not None:
                return found
            # A ClusterKeyVault's secretRef may name a namespace (default: the operator's own);
            # a KeyVault's Secrets are always in its own namespace, whatever the ref says.
            own = self._settings.operator_namespace
            secrets_namespace = own if cluster else str(meta.get("namespace"))
            created = await self._build(spec, secrets_namespace, cluster=cluster)
            stale = [k for k in self._clients if k.same_vault(key)]
            for old in stale:
                self._retire(self._clients.pop(old))
            self._clients[key] = created
            return created

    async def forget(self, client: KeyVaultClient) -> None:
        """Drop a client that was refused (401): the next use reads its credentials anew."""
        async with self._lock:
            for key, cached in list(self._clients.items()):
                if cached is client:
                    del self._clients[key]
                    self._retire(cached)

    def _retire(self, client: KeyVaultClient) -> None:
        """Close `client` once the calls in flight on it are over (RETIRE_SECONDS)."""
        if client not in self._retiring:
            self._retiring[client] = asyncio.create_task(self._close_later(client))

    async def _close_later(self, client: KeyVaultClient) -> None:
        try:
            await asyncio.sleep(RETIRE_SECONDS)
        finally:
            self._retiring.pop(client, None)
            await client.close()

    async def close(self) -> None:
        """Close every client now, retiring ones included (the operator stops)."""
        async with self._lock:
            for cached in self._clients.values():
                await cached.close()
            self._clients.clear()
            retiring = list(self._retiring.values())
            for task in retiring:
                task.cancel()
            await asyncio.gather(*retiring, return_exceptions=True)

    async def _build(
        self, spec: KeyVaultSpec, secrets_namespace: str, *, cluster: bool
    ) -> KeyVaultClient:
        credential, verify_resource = await self._credential(spec, secrets_namespace, cluster)
        try:
            ssl_context = await asyncio.to_thread(make_ssl_context, spec.ca_bundle)
        except (ssl.SSLError, ValueError):
            # OpenSSL's reason names no content; the bundle is public, but say only what it is.
            raise VaultUnavailable(
                "spec.caBundle holds no readable PEM certificate: give the PEM of the CA that"
                " signed the vault's TLS certificate"
            ) from None
        try:
            return KeyVaultClient(
                spec.url,
                credential,
                ssl_context=ssl_context,
                verify_challenge_resource=verify_resource,
                rate_limiter=VaultRateLimiter(creates_per_10s=self._settings.creates_per_10s),
                observer=self._observer,
            )
        except ValueError as error:
            raise VaultUnavailable(f"cannot use {spec.url}: {error}") from None

    async def _credential(
        self, spec: KeyVaultSpec, namespace: str, cluster: bool
    ) -> tuple[VaultCredential, bool]:
        auth = spec.auth
        ref_namespace = self._ref_namespace(namespace, cluster)
        if auth.token is not None:
            # A static token is the local vault's, often on 127.0.0.1 where no challenge
            # resource can match: it is scoped to that one vault, so skip the host check.
            ref = auth.token.secret_ref
            return StaticToken(await self._secret_value(ref_namespace(ref), ref)), False
        if auth.client_secret is not None:
            ref = auth.client_secret.secret_ref
            secret = await self._secret_value(ref_namespace(ref), ref)
            return (
                client_secret(
                    tenant_id=auth.client_secret.tenant_id,
                    client_id=auth.client_secret.client_id,
                    secret=secret,
                ),
                True,
            )
        if auth.workload_identity is not None:
            token_file = self._settings.federated_token_file
            return (
                workload_identity(
                    tenant_id=auth.workload_identity.tenant_id,
                    client_id=auth.workload_identity.client_id,
                    token_file_path=token_file,
                ),
                True,
            )
        if auth.managed_identity is not None:
            return managed_identity(client_id=auth.managed_identity.client_id), True
        raise VaultUnavailable("spec.auth names no credential")

    @staticmethod
    def _ref_namespace(default: str, cluster: bool) -> Callable[[SecretKeyRef], str]:
        return lambda ref: (ref.namespace or default) if cluster else default

    async def _secret_value(self, namespace: str, ref: SecretKeyRef) -> str:
        """The credential in `ref`, stripped of surrounding white space; VaultUnavailable when
        the Secret or its key is missing, empty, or not one line of printable ASCII (what an
        Authorization header or a client secret can carry). Messages name the Secret and the
        key, never the value."""
        secret = await self._kube.get_secret(namespace, ref.name)
        where = f"credential Secret {namespace}/{ref.name}"
        if secret is None:
            raise VaultUnavailable(f"{where} does not exist")
        encoded = (secret.data or {}).get(ref.key)
        if encoded is None:
            raise VaultUnavailable(f"{where} has no key {ref.key}")
        try:
            value = base64.b64decode(encoded).decode("ascii").strip()
        except (binascii.Error, UnicodeDecodeError):
            value = "\n"  # reported below as not printable
        if not value:
            raise VaultUnavailable(f"{where}: key {ref.key} is empty")
        if not value.isprintable():
            raise VaultUnavailable(f"{where}: key {ref.key} is not one line of printable ASCII")
        return value
