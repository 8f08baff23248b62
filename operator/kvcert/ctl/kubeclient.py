"""The CLI's Kubernetes calls: the user's kubeconfig, context and namespace, and one-line
errors (CtlError) instead of ApiException tracebacks.

Synchronous `kubernetes` client; every call is one request with REQUEST_TIMEOUT seconds.
"""

from __future__ import annotations

import os
from typing import Any, cast

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from urllib3.exceptions import HTTPError

from kvcert import __version__
from kvcert.api import GROUP, VERSION
from kvcert.ctl import API_ERROR, NOT_FOUND, USAGE, CtlError

REQUEST_TIMEOUT = 30.0
"""Seconds one call may take."""
USER_AGENT = f"kvcert-ctl/{__version__}"
CERTIFICATES = "certificates"
MERGE_PATCH = "application/merge-patch+json"
SOURCE_LABEL = "kvcert.io/source"
"""kvcert.runtime.kube's: the label that has the operator watch a mergeFrom Secret (importing
that module would load kubernetes_asyncio, a third of a second, for three strings)."""


def _namespace_of_context(kubeconfig: str | None, context: str | None) -> str | None:
    try:
        contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    except (ConfigException, OSError):
        return None
    chosen = next((c for c in contexts if c.get("name") == context), None) if context else active
    found = ((chosen or {}).get("context") or {}).get("namespace")
    return str(found) if found else None


class Cluster:
    """One namespace of the cluster the kubeconfig names. Raises CtlError(API_ERROR) when the
    kubeconfig cannot be loaded."""

    def __init__(self, kubeconfig: str | None, context: str | None, namespace: str | None) -> None:
        path = kubeconfig or os.environ.get("KUBECONFIG") or None
        try:
            self.api = cast(
                client.ApiClient,
                config.new_client_from_config(config_file=path, context=context),  # type: ignore[no-untyped-call]
            )
        except (ConfigException, OSError) as error:
            raise CtlError(
                f"cannot load kubeconfig ({error}): check --kubeconfig, KUBECONFIG and --context",
                USAGE,
            ) from None
        self.api.user_agent = USER_AGENT
        self.namespace = namespace or _namespace_of_context(path, context) or "default"
        self.core = client.CoreV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)

    def close(self) -> None:
        self.api.close()  # type: ignore[no-untyped-call]

    def _call(self, what: str, fix: str, call: Any, *args: Any, **kwargs: Any) -> Any:
        """call(*args, **kwargs); 404 -> CtlError(NOT_FOUND, "<what> not found ...: <fix>")."""
        try:
            return call(*args, _request_timeout=REQUEST_TIMEOUT, **kwargs)
        except ApiException as error:
            if error.status == 404:
                message = f"{what} not found in namespace {self.namespace}: {fix}"
                raise CtlError(message, NOT_FOUND) from None
            reason = f"{error.status} {error.reason}"
            raise CtlError(
                f"{what}: the API server answered {reason}: check your access (RBAC) and --context",
                API_ERROR,
            ) from None
        except (HTTPError, OSError) as error:
            raise CtlError(
                f"cannot reach the API server ({type(error).__name__}): check --kubeconfig "
                "and --context",
                API_ERROR,
            ) from None

    def certificate(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self._call(
            f"Certificate {name}",
            "check the name and -n",
            self.custom.get_namespaced_custom_object,
            GROUP,
            VERSION,
            self.namespace,
            CERTIFICATES,
            name,
        )
        return found

    def patch_certificate(self, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        """A JSON merge patch of the Certificate (spec or metadata, never status)."""
        found: dict[str, Any] = self._call(
            f"Certificate {name}",
            "check the name and -n",
            self.custom.patch_namespaced_custom_object,
            GROUP,
            VERSION,
            self.namespace,
            CERTIFICATES,
            name,
            patch,
            _content_type=MERGE_PATCH,
        )
        return found

    def secret(self, name: str, fix: str) -> client.V1Secret:
        found: client.V1Secret = self._call(
            f"Secret {name}", fix, self.core.read_namespaced_secret, name, self.namespace
        )
        return found

    def secret_or_none(self, name: str) -> client.V1Secret | None:
        try:
            return self.secret(name, "")
        except CtlError as error:
            if error.code == NOT_FOUND:
                return None
            raise

    def config_map(self, name: str, fix: str) -> client.V1ConfigMap:
        found: client.V1ConfigMap = self._call(
            f"ConfigMap {name}", fix, self.core.read_namespaced_config_map, name, self.namespace
        )
        return found

    def events(self, name: str) -> list[client.CoreV1Event]:
        """The Certificate's Events, oldest first."""
        listed = self._call(
            f"Events of {name}",
            "",
            self.core.list_namespaced_event,
            self.namespace,
            field_selector=f"involvedObject.name={name},involvedObject.kind=Certificate",
        )
        items: list[client.CoreV1Event] = list(listed.items)
        return sorted(items, key=event_time)

    def put_source_secret(self, name: str, data: dict[str, str]) -> str:
        """Create the Secret `name` (Opaque, `data` base64, labelled SOURCE_LABEL=true so the
        operator watches it), or update its data and label. Returns "created" or "updated"."""
        labels = {SOURCE_LABEL: "true"}
        body = client.V1Secret(
            metadata=client.V1ObjectMeta(name=name, labels=labels), type="Opaque", data=data
        )
        try:
            self.core.create_namespaced_secret(
                self.namespace, body, _request_timeout=REQUEST_TIMEOUT
            )
            return "created"
        except ApiException as error:
            if error.status != 409:
                self._raise(f"Secret {name}", error)
        patch = {"metadata": {"labels": labels}, "data": data}
        self._call(
            f"Secret {name}",
            "",
            self.core.patch_namespaced_secret,
            name,
            self.namespace,
            patch,
            _content_type=MERGE_PATCH,
        )
        return "updated"

    def _raise(self, what: str, error: ApiException) -> None:
        raise CtlError(
            f"{what}: the API server answered {error.status} {error.reason}: check your access "
            "(RBAC) and --context",
            API_ERROR,
        ) from None


def event_time(event: client.CoreV1Event) -> Any:
    """When an Event last happened: lastTimestamp, else eventTime, else its creation."""
    return event.last_timestamp or event.event_time or event.metadata.creation_timestamp
