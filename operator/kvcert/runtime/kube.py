"""Kubernetes calls the operator makes, off the event loop.

The official client is synchronous; every call here runs in a worker thread so that one slow
API request never stalls the watch streams or the other objects' handlers.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

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

USER_AGENT = f"kvcert-operator/{__version__}"
"""What the API server's audit log shows for the operator's own requests (kopf's say kopf/)."""


def load_api_client(kubeconfig: str | None = None) -> client.ApiClient:
    """In-cluster config inside a pod, else KUBECONFIG / ~/.kube/config; user agent USER_AGENT."""
    if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        configuration = client.Configuration()
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        api = client.ApiClient(configuration)
    else:
        # The client reads KUBECONFIG once, when it is imported; read it now instead.
        path = kubeconfig or os.environ.get("KUBECONFIG") or None
        api = cast(client.ApiClient, config.new_client_from_config(config_file=path))  # type: ignore[no-untyped-call]
    api.user_agent = USER_AGENT
    return api


def call_error(error: ApiException) -> CallError:
    """Only the status and reason: API error bodies can echo what was sent."""
    return CallError(status=error.status, code=str(error.reason or ""), message="")


@dataclass(frozen=True)
class Owner:
    """The Certificate that owns what the operator writes for it."""

    name: str
    uid: str

    def reference(self) -> client.V1OwnerReference:
        return client.V1OwnerReference(
            api_version=f"{GROUP}/{VERSION}",
            kind="Certificate",
            name=self.name,
            uid=self.uid,
            controller=True,
            block_owner_deletion=False,
        )


class Kube:
    """The few Kubernetes operations the operator needs, each one request, each off the loop."""

    def __init__(self, api: client.ApiClient, observer: KubeObserver | None = None) -> None:
        self._api = api
        self._core = client.CoreV1Api(api)
        self._custom = client.CustomObjectsApi(api)
        self._observer = observer

    async def _call(
        self, verb: str, resource: str, call: Callable[..., T], *args: Any, **kwargs: Any
    ) -> T:
        """Run one client call in a worker thread and tell the observer how it went. A
        success is counted with the verb's usual code (201 for create, else 200): the client
        does not return the status of a successful call."""
        try:
            result = await asyncio.to_thread(call, *args, **kwargs)
        except ApiException as error:
            self._observe(verb, resource, str(error.status or "error"))
            raise
        except Exception:
            self._observe(verb, resource, "error")
            raise
        self._observe(verb, resource, "201" if verb == "create" else "200")
        return result

    def _observe(self, verb: str, resource: str, code: str) -> None:
        if self._observer is not None:
            self._observer(verb, resource, code)

    async def patch_certificate_status(
        self,
        namespace: str,
        name: str,
        patch: Mapping[str, Any],
        resource_version: str | None = None,
    ) -> dict[str, Any]:
        """Merge-patch status; with `resource_version`, fail with 409 if the object moved on."""
        body: dict[str, Any] = {"status": dict(patch)}
        if resource_version is not None:
            body["metadata"] = {"resourceVersion": resource_version}
        result = await self._call(
            "patch",
            f"{CERTIFICATES}/status",
            self._custom.patch_namespaced_custom_object_status,
            GROUP,
            VERSION,
            namespace,
            CERTIFICATES,
            name,
            body,
        )
        return cast(dict[str, Any], result)

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

    async def get_secret(self, namespace: str, name: str) -> client.V1Secret | None:
        try:
            secret: client.V1Secret = await self._call(
                "get", "secrets", self._core.read_namespaced_secret, name, namespace
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return secret

    async def put_secret(
        self, namespace: str, secret: client.V1Secret, *, exists: bool
    ) -> client.V1Secret:
        """Create, or replace what is there (the caller checked it is ours)."""
        name = str(secret.metadata.name if secret.metadata else "")
        if exists:
            replaced: client.V1Secret = await self._call(
                "update", "secrets", self._core.replace_namespaced_secret, name, namespace, secret
            )
            return replaced
        created: client.V1Secret = await self._call(
            "create", "secrets", self._core.create_namespaced_secret, namespace, secret
        )
        return created

    async def put_config_map(
        self, namespace: str, config_map: client.V1ConfigMap, *, exists: bool = False
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
