"""Helpers for the operator's integration tests: apply resources, wait on conditions."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

GROUP, VERSION = "kvcert.io", "v1alpha1"
CRD_DIR = Path(__file__).resolve().parents[3] / "crds"
T = TypeVar("T")


def wait_for(predicate: Callable[[], T | None], timeout: float = 60.0, what: str = "it") -> T:
    """Poll until predicate() returns something truthy; fail naming `what` after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def never(predicate: Callable[[], object], window: float, what: str) -> None:
    """Fail if predicate() becomes truthy within `window` seconds (a negative wait)."""
    deadline = time.monotonic() + window
    while time.monotonic() < deadline:
        if predicate():
            pytest.fail(f"{what} happened within {window} s")
        time.sleep(0.2)


def install_crds(api: client.ApiClient) -> None:
    extensions = client.ApiextensionsV1Api(api)
    names = []
    for path in sorted(CRD_DIR.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        names.append(crd["metadata"]["name"])
        try:
            extensions.create_custom_resource_definition(crd)
        except ApiException as error:
            if error.status != 409:
                raise
            current = extensions.read_custom_resource_definition(crd["metadata"]["name"])
            crd["metadata"]["resourceVersion"] = current.metadata.resource_version
            extensions.replace_custom_resource_definition(crd["metadata"]["name"], crd)
    for name in names:

        def established(name: str = name) -> bool:
            conditions = extensions.read_custom_resource_definition(name).status.conditions or []
            return any(c.type == "Established" and c.status == "True" for c in conditions)

        wait_for(established, 30, f"CRD {name} Established")


class Kube:
    """Thin typed helpers over the official client for the tests' own reads and writes."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.api = api
        self.namespace = namespace
        self.core = client.CoreV1Api(api)
        self.custom = client.CustomObjectsApi(api)

    def apply_certificate(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Certificate",
            "metadata": {"name": name},
            "spec": spec,
        }
        result: dict[str, Any] = self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "certificates", body
        )
        return result

    def patch_certificate(self, name: str, patch: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "certificates", name, patch
        )

    def delete_certificate(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "certificates", name
        )

    def certificate(self, name: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, "certificates", name
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return found

    def keyvault(self, name: str, url: str, token_secret: str, ca_bundle: str) -> None:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "KeyVault",
            "metadata": {"name": name},
            "spec": {
                "url": url,
                "auth": {"token": {"secretRef": {"name": token_secret, "key": "token"}}},
                "caBundle": ca_bundle,
            },
        }
        self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "keyvaults", body
        )

    def put_secret(self, name: str, data: dict[str, bytes], kind: str = "Opaque") -> None:
        secret = client.V1Secret(
            metadata=client.V1ObjectMeta(name=name),
            type=kind,
            data={k: base64.b64encode(v).decode() for k, v in data.items()},
        )
        try:
            self.core.create_namespaced_secret(self.namespace, secret)
        except ApiException as error:
            if error.status != 409:
                raise
            self.core.replace_namespaced_secret(name, self.namespace, secret)

    def secret(self, name: str) -> client.V1Secret | None:
        try:
            found: client.V1Secret = self.core.read_namespaced_secret(name, self.namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return found

    def config_map(self, name: str) -> client.V1ConfigMap | None:
        try:
            found: client.V1ConfigMap = self.core.read_namespaced_config_map(name, self.namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return found

    def events(self, name: str) -> list[client.CoreV1Event]:
        listed = self.core.list_namespaced_event(
            self.namespace, field_selector=f"involvedObject.name={name}"
        )
        return list(listed.items)

    def condition(self, name: str, kind: str) -> dict[str, Any] | None:
        body = self.certificate(name) or {}
        for item in (body.get("status") or {}).get("conditions") or []:
            if item.get("type") == kind:
                return dict(item)
        return None

    def wait_condition(
        self,
        name: str,
        kind: str,
        status: str,
        reason: str | None = None,
        timeout: float = 60.0,
    ) -> dict[str, Any]:
        """Wait for condition `kind` to have `status` (and `reason`); return the whole object."""

        def matched() -> dict[str, Any] | None:
            found = self.condition(name, kind)
            if found and found.get("status") == status and reason in (None, found.get("reason")):
                return self.certificate(name)
            return None

        try:
            return wait_for(matched, timeout, f"{name} {kind}={status} {reason or ''}")
        except pytest.fail.Exception:
            body = self.certificate(name) or {}
            pytest.fail(
                f"{name}: {kind} never became {status} {reason or ''}; status is "
                f"{yaml.safe_dump(body.get('status'))}"
            )


def secret_text(secret: client.V1Secret, key: str) -> str:
    return base64.b64decode((secret.data or {})[key]).decode()
