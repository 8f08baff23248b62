"""Kubernetes calls the operator makes, on the event loop, without blocking it.

The reconcile path (`Kube`, and the Events of kvcert.runtime.events) uses kubernetes_asyncio,
the official client's generated API on aiohttp: no thread hop per call and one pool of kept-alive
connections (issue #17: the synchronous client in worker threads cost a thread hand-off per call
and, with a pool smaller than the threads, a new TLS handshake per call beyond it). Its errors
are re-raised as the synchronous client's ApiException (status and reason only), the one class
the rest of the operator catches. The clients are made in kvcert.runtime.kubeconfig; the
synchronous one remains for what runs in threads of its own: the source Secret watch and leader
election.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from kubernetes.client.exceptions import ApiException
from kubernetes_asyncio import client as async_client
from kubernetes_asyncio.client.exceptions import ApiException as AsyncApiException

from kvcert.reconcile.observed import CallError

GROUP = "kvcert.io"
VERSION = "v1alpha1"
CERTIFICATES = "certificates"
KEYVAULTS = "keyvaults"
CLUSTERKEYVAULTS = "clusterkeyvaults"
CERTIFICATEISSUERS = "certificateissuers"
CLUSTERCERTIFICATEISSUERS = "clustercertificateissuers"
FINALIZER = "kvcert.io/cleanup"
MANAGED_BY = "app.kubernetes.io/managed-by"
CERTIFICATE_LABEL = "kvcert.io/certificate"
UID_ANNOTATION = "kvcert.io/certificate-uid"
X5T_ANNOTATION = "kvcert.io/x5t"
VERSION_ANNOTATION = "kvcert.io/version"
OUTPUT_HASH_ANNOTATION = "kvcert.io/output-hash"
DATA_HASH_ANNOTATION = "kvcert.io/data-hash"
"""sha256 (hex, 32 chars) of the output Secret's data as written (kvcert.runtime.sources)."""
SOURCE_LABEL = "kvcert.io/source"
"""Put `"true"` on a mergeFrom/importFrom Secret to have the operator watch it."""
SOURCE_SELECTOR = f"{SOURCE_LABEL}=true"
OUTPUT_SELECTOR = f"{MANAGED_BY}=kvcert,{CERTIFICATE_LABEL}"
"""The server-side label selector of the output Secrets' watch (labels written by WriteSecret)."""


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


def call_error(error: ApiException) -> CallError:
    """Only the status and reason: API error bodies can echo what was sent."""
    return CallError(status=error.status, code=str(error.reason or ""), message="")


@dataclass(frozen=True)
class Owner:
    """The Certificate that owns what the operator writes for it."""

    name: str
    uid: str

    def reference(self) -> async_client.V1OwnerReference:
        return async_client.V1OwnerReference(
            api_version=f"{GROUP}/{VERSION}",
            kind="Certificate",
            name=self.name,
            uid=self.uid,
            controller=True,
            block_owner_deletion=False,
        )


class Kube:
    """The few Kubernetes operations the operator needs, each one request, on the event loop
    (kubernetes_asyncio). Secrets come back as kubernetes_asyncio's V1Secret, which has the
    synchronous client's attributes (both are generated from the same OpenAPI document)."""

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

    async def patch_certificate_status(
        self,
        namespace: str,
        name: str,
        patch: Mapping[str, Any],
        resource_version: str | None = None,
        *,
        want_body: bool = True,
    ) -> dict[str, Any]:
        """Merge-patch status; with `resource_version`, fail with 409 if the object moved on.
        The object as stored afterwards, or {} with `want_body=False` (its JSON not parsed)."""
        body: dict[str, Any] = {"status": dict(patch)}
        if resource_version is not None:
            body["metadata"] = {"resourceVersion": resource_version}
        return await self._call_json(
            "patch",
            f"{CERTIFICATES}/status",
            self._custom.patch_namespaced_custom_object_status,
            GROUP,
            VERSION,
            namespace,
            CERTIFICATES,
            name,
            body,
            _content_type=MERGE_PATCH,
            _parse=want_body,
        )

    async def patch_vault_status(
        self, namespace: str | None, name: str, patch: Mapping[str, Any]
    ) -> None:
        body = {"status": dict(patch)}
        if namespace is None:
            await self._call(
                "patch",
                f"{CLUSTERKEYVAULTS}/status",
                self._custom.patch_cluster_custom_object_status,
                GROUP,
                VERSION,
                CLUSTERKEYVAULTS,
                name,
                body,
                _content_type=MERGE_PATCH,
            )
        else:
            await self._call(
                "patch",
                f"{KEYVAULTS}/status",
                self._custom.patch_namespaced_custom_object_status,
                GROUP,
                VERSION,
                namespace,
                KEYVAULTS,
                name,
                body,
                _content_type=MERGE_PATCH,
            )

    async def set_finalizer(self, namespace: str, name: str, finalizers: list[str]) -> None:
        await self._call(
            "patch",
            CERTIFICATES,
            self._custom.patch_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            CERTIFICATES,
            name,
            {"metadata": {"finalizers": finalizers}},
            _content_type=MERGE_PATCH,
        )

    async def get_custom(
        self, plural: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        """A kvcert.io object (namespace None: a cluster-scoped kind); None when it is gone."""
        call: Callable[..., Awaitable[Any]]
        args: tuple[str, ...]
        if namespace is None:
            call, args = self._custom.get_cluster_custom_object, (GROUP, VERSION, plural, name)
        else:
            call = self._custom.get_namespaced_custom_object
            args = (GROUP, VERSION, namespace, plural, name)
        try:
            return await self._call_json("get", plural, call, *args)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    async def patch_custom(
        self,
        plural: str,
        namespace: str | None,
        name: str,
        body: Mapping[str, Any],
        *,
        status: bool = False,
    ) -> None:
        """Merge-patch a kvcert.io object, or its status subresource with `status`: `body` is
        the whole patch ({"status": ...} or {"metadata": {"finalizers": ...}})."""
        call: Callable[..., Awaitable[Any]]
        if namespace is None:
            call = (
                self._custom.patch_cluster_custom_object_status
                if status
                else self._custom.patch_cluster_custom_object
            )
            args: tuple[Any, ...] = (GROUP, VERSION, plural, name)
        else:
            call = (
                self._custom.patch_namespaced_custom_object_status
                if status
                else self._custom.patch_namespaced_custom_object
            )
            args = (GROUP, VERSION, namespace, plural, name)
        resource = f"{plural}/status" if status else plural
        await self._call_json(
            "patch", resource, call, *args, dict(body), _content_type=MERGE_PATCH, _parse=False
        )

    async def list_one(self, plural: str, namespace: str | None) -> None:
        """List at most one object of a kvcert.io kind, as a watch's first step would; raises
        ApiException when the API server refuses (readiness, kvcert.runtime.readiness)."""
        if namespace is None:
            await self._call(
                "list",
                plural,
                self._custom.list_cluster_custom_object,
                GROUP,
                VERSION,
                plural,
                limit=1,
            )
        else:
            await self._call(
                "list",
                plural,
                self._custom.list_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                plural,
                limit=1,
            )

    async def get_vault(self, namespace: str | None, name: str) -> dict[str, Any] | None:
        try:
            if namespace is None:
                found = await self._call(
                    "get",
                    CLUSTERKEYVAULTS,
                    self._custom.get_cluster_custom_object,
                    GROUP,
                    VERSION,
                    CLUSTERKEYVAULTS,
                    name,
                )
            else:
                found = await self._call(
                    "get",
                    KEYVAULTS,
                    self._custom.get_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    namespace,
                    KEYVAULTS,
                    name,
                )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return cast(dict[str, Any], found)

    async def get_certificate(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            found = await self._call(
                "get",
                CERTIFICATES,
                self._custom.get_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                CERTIFICATES,
                name,
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return cast(dict[str, Any], found)

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
