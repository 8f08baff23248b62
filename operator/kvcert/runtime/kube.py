"""Kubernetes calls the operator makes, on the event loop, without blocking it.

The reconcile path (`Kube`, and the Events of kvcert.runtime.events) uses kubernetes_asyncio,
the official client's generated API on aiohttp: no thread hop per call and one pool of kept-alive
connections (issue #17: the synchronous client in worker threads cost a thread hand-off per call
and, with a pool smaller than the threads, a new TLS handshake per call beyond it). Its errors
are re-raised as the synchronous client's ApiException (status and reason only), the one class
the rest of the operator catches. The synchronous client (`load_api_client`) remains for what
runs in threads of its own: the source Secret watch and leader election.
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes_asyncio import client as async_client
from kubernetes_asyncio import config as async_config
from kubernetes_asyncio.client.exceptions import ApiException as AsyncApiException

from kvcert import __version__
from kvcert.reconcile.observed import CallError

GROUP = "kvcert.io"
VERSION = "v1alpha1"
CERTIFICATES = "certificates"
KEYVAULTS = "keyvaults"
CLUSTERKEYVAULTS = "clusterkeyvaults"
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

USER_AGENT = f"kvcert-operator/{__version__}"
"""What the API server's audit log shows for the operator's own requests (kopf's say kopf/)."""


POOL_SIZE = 32
"""Kubernetes calls in flight at once: the worker threads (handlers.configure) and the client's
connection pool, sized alike. A pool smaller than the threads (the client's default is 5 per
core) drops a connection after each call beyond it, and the next call pays a TLS handshake."""


def load_api_client(kubeconfig: str | None = None) -> client.ApiClient:
    """In-cluster config inside a pod, else KUBECONFIG / ~/.kube/config; user agent USER_AGENT;
    a connection pool of POOL_SIZE."""
    configuration = client.Configuration()
    configuration.connection_pool_maxsize = POOL_SIZE
    if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        api = client.ApiClient(configuration)
    else:
        # The client reads KUBECONFIG once, when it is imported; read it now instead.
        path = kubeconfig or os.environ.get("KUBECONFIG") or None
        api = cast(
            client.ApiClient,
            config.new_client_from_config(config_file=path, client_configuration=configuration),  # type: ignore[no-untyped-call]
        )
    api.user_agent = USER_AGENT
    return api


async def load_async_api_client(kubeconfig: str | None = None) -> async_client.ApiClient:
    """The reconcile path's client (kubernetes_asyncio), configured as `load_api_client`;
    call on the event loop that will use it, and `await api.close()` when done."""
    configuration = async_client.Configuration()
    configuration.connection_pool_maxsize = POOL_SIZE
    if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        async_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    else:
        path = kubeconfig or os.environ.get("KUBECONFIG") or None
        await async_config.load_kube_config(config_file=path, client_configuration=configuration)
    api = async_client.ApiClient(configuration)
    api.user_agent = USER_AGENT
    ignore_proxy_environment(api)
    return api


def ignore_proxy_environment(api: async_client.ApiClient) -> None:
    """Stop aiohttp reading HTTP(S)_PROXY and ~/.netrc for every request.

    kubernetes_asyncio opens its aiohttp session with `trust_env=True`, and aiohttp then looks
    up the proxy environment and the netrc file in a worker thread on *each* request: in the
    profile of a 1,000-certificate run, that thread hop was the largest single cost of a
    Kubernetes call (issue #17). The API server is reached as the kubeconfig says (its `proxy-url`
    is still honoured by kubernetes_asyncio itself); the environment's proxy is for Key Vault.
    aiohttp has no public setter, hence the attribute (pinned by
    tests/unit/runtime/test_kube_client.py)."""
    session = api.rest_client.pool_manager
    session._trust_env = False


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
        self, namespace: str, secret: async_client.V1Secret, *, exists: bool
    ) -> dict[str, Any]:
        """Create, or replace what is there (the caller checked it is ours); the Secret as
        written, as JSON."""
        name = str(secret.metadata.name if secret.metadata else "")
        if exists:
            return await self._call_json(
                "update", "secrets", self._core.replace_namespaced_secret, name, namespace, secret
            )
        return await self._call_json(
            "create", "secrets", self._core.create_namespaced_secret, namespace, secret
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
