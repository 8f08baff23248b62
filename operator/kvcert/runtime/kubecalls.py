"""The Kubernetes calls under kvcert.runtime.kube.Kube: one request each, on the event loop
(kubernetes_asyncio), observed for metrics, with errors re-raised as the synchronous client's
ApiException (status and reason only); and the core objects the operator writes, output Secrets
and CSR ConfigMaps. Split from kube.py (custom resources) to keep each module one concern.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from kubernetes.client.exceptions import ApiException
from kubernetes_asyncio import client as async_client
from kubernetes_asyncio.client.exceptions import ApiException as AsyncApiException

KubeObserver = Callable[[str, str, str], None]
"""Told of every request Kube makes: (verb, resource, code), e.g. ("patch",
"certificates/status", "200"); code is the HTTP status, or "error" when there was no answer.
Called on the event loop; must not block or raise (kvcert.runtime.metrics counts them)."""
T = TypeVar("T")
REQUEST_TIMEOUT = 60.0
"""Seconds one Kubernetes call may take in all (kopf's own request timeout, set in
handlers.configure, is the same): a half-open connection never holds a round, its object's
lock or a create slot for ever."""
MERGE_PATCH = "application/merge-patch+json"
"""Every patch is a JSON merge patch: custom resources take no strategic merge patch, which
kubernetes_asyncio would otherwise pick for a dict body."""


class KubeCalls:
    """The client, the observer and the two ways of making a call (a model, or raw JSON)."""

    def __init__(self, api: async_client.ApiClient, observer: KubeObserver | None = None) -> None:
        self._api = api
        self._core = async_client.CoreV1Api(api)
        self._custom = async_client.CustomObjectsApi(api)
        self._observer = observer

    async def _call(
        self,
        verb: str,
        resource: str,
        call: Callable[..., Awaitable[T]],
        *args: Any,
        **kwargs: Any,
    ) -> T:
        """Make one client call and tell the observer how it went. A success is counted with
        the verb's usual code (201 for create, else 200): the client does not return the
        status of a successful call. Raises ApiException (the synchronous client's, status and
        reason only: an error body can echo what was sent)."""
        kwargs.setdefault("_request_timeout", REQUEST_TIMEOUT)
        try:
            result = await call(*args, **kwargs)
        except AsyncApiException as error:
            self._observe(verb, resource, str(error.status or "error"))
            raise ApiException(status=error.status, reason=error.reason) from None
        except ApiException as error:
            self._observe(verb, resource, str(error.status or "error"))
            raise
        except Exception:
            self._observe(verb, resource, "error")
            raise
        self._observe(verb, resource, "201" if verb == "create" else "200")
        return result

    async def _call_json(
        self,
        verb: str,
        resource: str,
        call: Callable[..., Awaitable[Any]],
        *args: Any,
        _parse: bool = True,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """As `_call`, but the answer is the response's JSON as a dict, not a model: no
        deserialization into generated classes (date parsing included) for an answer that is
        only looked up (issue #17); with `_parse=False` not even that ({}). Observed with the
        answer's own status code."""
        kwargs.setdefault("_request_timeout", REQUEST_TIMEOUT)
        try:
            response = await call(*args, _preload_content=False, **kwargs)
            async with response:
                content = await response.read()
        except Exception:
            self._observe(verb, resource, "error")
            raise
        self._observe(verb, resource, str(response.status))
        if not 200 <= response.status <= 299:
            raise ApiException(status=response.status, reason=response.reason)
        return cast(dict[str, Any], json.loads(content)) if content and _parse else {}

    def _observe(self, verb: str, resource: str, code: str) -> None:
        if self._observer is not None:
            self._observer(verb, resource, code)


class CoreObjects(KubeCalls):
    """Secrets (read, created, replaced, recreated on a type change) and ConfigMaps."""

    async def get_secret(self, namespace: str, name: str) -> async_client.V1Secret | None:
        try:
            secret: async_client.V1Secret = await self._call(
                "get", "secrets", self._core.read_namespaced_secret, name, namespace
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return secret

    async def put_secret(
        self, namespace: str, secret: async_client.V1Secret, *, exists: bool, recreate: bool = False
    ) -> dict[str, Any]:
        """Create, or replace what is there (the caller checked it is ours); the Secret as
        written, as JSON. `recreate` (with `exists`): `type` changes, which the API server
        refuses in place (immutable: 422), so the Secret is deleted under a precondition on
        `secret.metadata.resource_version` (the state the caller judged ours; cleared for the
        create that follows) and created anew. A Secret that changed since is never deleted:
        ApiException 409, Kubernetes' answer to a failed precondition; one already gone (404)
        is just created. ValueError without a resourceVersion: never an unconditional delete."""
        meta = secret.metadata or async_client.V1ObjectMeta()
        name, core = str(meta.name or ""), self._core
        if exists and recreate:
            if not meta.resource_version:
                raise ValueError("a Secret is recreated only under its resourceVersion")
            condition = async_client.V1Preconditions(resource_version=meta.resource_version)
            options = async_client.V1DeleteOptions(preconditions=condition)
            try:
                delete = core.delete_namespaced_secret
                await self._call_json(
                    "delete", "secrets", delete, name, namespace, body=options, _parse=False
                )
            except ApiException as error:
                if error.status != 404:
                    raise
            meta.resource_version = None  # type: ignore[assignment]  # a create takes none
            exists = False
        if exists:
            return await self._call_json(
                "update", "secrets", core.replace_namespaced_secret, name, namespace, secret
            )
        return await self._call_json(
            "create", "secrets", core.create_namespaced_secret, namespace, secret
        )

    async def put_config_map(
        self, namespace: str, config_map: async_client.V1ConfigMap, *, exists: bool = False
    ) -> None:
        """Create or replace; `exists` says which to try first (one write when it is right)."""
        name = str(config_map.metadata.name if config_map.metadata else "")

        async def create() -> None:
            await self._call(
                "create",
                "configmaps",
                self._core.create_namespaced_config_map,
                namespace,
                config_map,
            )

        async def replace() -> None:
            await self._call(
                "update",
                "configmaps",
                self._core.replace_namespaced_config_map,
                name,
                namespace,
                config_map,
            )

        first, second, missed = (replace, create, 404) if exists else (create, replace, 409)
        try:
            await first()
        except ApiException as error:
            if error.status != missed:
                raise
            await second()
