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

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from kubernetes.client.exceptions import ApiException
from kubernetes_asyncio import client as async_client

from kvcert.reconcile.observed import CallError
from kvcert.runtime.kubecalls import MERGE_PATCH, CoreObjects

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


class Kube(CoreObjects):
    """The few Kubernetes operations the operator needs, each one request, on the event loop
    (kubernetes_asyncio). Secrets come back as kubernetes_asyncio's V1Secret, which has the
    synchronous client's attributes (both are generated from the same OpenAPI document)."""

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
