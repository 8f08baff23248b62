"""Helpers for the operator's integration tests: apply resources, wait on conditions."""

from __future__ import annotations

import base64
import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from kvcert.devcluster import binaries
from kvcert.devcluster.controlplane import ControlPlane

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


def own_control_plane(
    stack: contextlib.ExitStack, directory: Path
) -> tuple[ControlPlane, client.ApiClient]:
    """A control plane of a test module's own (under `directory`), with the CRDs installed and
    an admin client; both stopped or closed when `stack` closes."""
    plane = stack.enter_context(ControlPlane(binaries=binaries.ensure(), directory=directory))
    api = config.new_client_from_config(config_file=str(plane.kubeconfig))
    stack.callback(api.close)
    install_crds(api)
    return plane, api


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

    def event_reasons(self, name: str) -> list[str]:
        """Reasons of the Certificate's events, oldest first."""
        found = sorted(self.events(name), key=lambda e: e.metadata.creation_timestamp)
        return [str(item.reason) for item in found]

    def wait_event(self, name: str, reason: str, timeout: float = 30.0) -> None:
        wait_for(lambda: reason in self.event_reasons(name), timeout, f"event {reason} on {name}")

    def replace_certificate_status(self, name: str, status: dict[str, Any]) -> None:
        """Overwrite status (as a restore from a backup without status would)."""
        body = self.certificate(name)
        assert body is not None
        body["status"] = status
        self.custom.replace_namespaced_custom_object_status(
            GROUP, VERSION, self.namespace, "certificates", name, body
        )

    def delete_all_certificates(self, timeout: float = 30.0) -> list[str]:
        """Delete every Certificate of the namespace and wait until they are gone; returns
        their Key Vault names (spec.certificateName, else metadata.name)."""
        listed = self.custom.list_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "certificates"
        )
        names = []
        for item in listed.get("items", []):
            self.delete_certificate(item["metadata"]["name"])
            spec = item.get("spec") or {}
            names.append(spec.get("certificateName") or item["metadata"]["name"])

        def gone() -> bool:
            left = self.custom.list_namespaced_custom_object(
                GROUP, VERSION, self.namespace, "certificates"
            )
            return not left.get("items")

        wait_for(gone, timeout, "every Certificate deleted")
        return names

    def wait_operation(
        self, name: str, predicate: Callable[[dict[str, Any]], object], timeout: float = 30.0
    ) -> dict[str, Any]:
        """Wait until status.operation satisfies `predicate`; return the whole object."""

        def matched() -> dict[str, Any] | None:
            body = self.certificate(name)
            op = ((body or {}).get("status") or {}).get("operation") or {}
            return body if op and predicate(op) else None

        try:
            return wait_for(matched, timeout, f"{name} status.operation")
        except pytest.fail.Exception:
            body = self.certificate(name) or {}
            pytest.fail(f"{name}: status.operation never matched; status is {body.get('status')}")

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


def certificate_spec(
    vault: str, secret: str, issuer: str = "Self", cn: str = "app.example.com", **extra: Any
) -> dict[str, Any]:
    """A Certificate spec: EC P-256, exportable, PEM content, plus `extra` top-level fields."""
    return {
        "vaultRef": {"name": vault},
        "secretName": secret,
        "policy": {
            "issuer": {"name": issuer},
            "subject": f"CN={cn}",
            "dnsNames": [cn],
            "validityMonths": 12,
            "key": {"type": "EC", "curve": "P-256", "exportable": True},
            "contentType": "application/x-pem-file",
        },
        **extra,
    }


def operation_of(body: dict[str, Any] | None) -> dict[str, Any]:
    return dict(((body or {}).get("status") or {}).get("operation") or {})


class VaultOps:
    """The test's own view of the local vault: Key Vault calls and its management API."""

    API_VERSION = "7.5"

    def __init__(self, vault: Any) -> None:
        self.vault = vault
        self.http: httpx.Client = vault.client()

    def call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        params = {} if path.startswith("/_kvcert/") else {"api-version": self.API_VERSION}
        return self.http.request(method, path, params=params, json=body)

    def purge(self, names: list[str]) -> None:
        """Remove these certificates from the vault altogether (pending operation, certificate,
        deleted certificate), whatever state they are in: a test leaves the shared session
        vault without its names, which a later test's Certificate could not create into
        (kvcert refuses a name another Certificate owns: NotOwned)."""
        for name in names:
            self.call("DELETE", f"/certificates/{name}/pending")
            self.call("DELETE", f"/certificates/{name}")
            self.call("DELETE", f"/deletedcertificates/{name}")

    def ok(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        response = self.call(method, path, body)
        assert response.is_success, f"{method} {path}: {response.status_code} {response.text}"
        found: dict[str, Any] = response.json() if response.content else {}
        return found

    def set_issuer(self, name: str, provider: str = "DigiCert") -> None:
        self.ok("PUT", f"/certificates/issuers/{name}", {"provider": provider})

    def create(self, name: str, issuer: str = "Unknown") -> dict[str, Any]:
        """A create made by someone other than the operator (no kvcert tags)."""
        policy = {"x509_props": {"subject": f"CN={name}"}, "issuer": {"name": issuer}}
        return self.ok("POST", f"/certificates/{name}/create", {"policy": policy})

    def pending(self, name: str) -> dict[str, Any] | None:
        response = self.call("GET", f"/certificates/{name}/pending")
        if response.status_code == 404:
            return None
        assert response.is_success, response.text
        found: dict[str, Any] = response.json()
        return found

    def certificate(self, name: str) -> dict[str, Any] | None:
        response = self.call("GET", f"/certificates/{name}/")
        if response.status_code == 404:
            return None
        assert response.is_success, response.text
        found: dict[str, Any] = response.json()
        return found

    def deleted(self, name: str) -> dict[str, Any] | None:
        response = self.call("GET", f"/deletedcertificates/{name}")
        if response.status_code == 404:
            return None
        assert response.is_success, response.text
        found: dict[str, Any] = response.json()
        return found

    def delete_pending(self, name: str) -> None:
        self.ok("DELETE", f"/certificates/{name}/pending")

    def complete(self, name: str) -> dict[str, Any]:
        return self.ok("POST", f"/_kvcert/certificates/{name}/pending/complete")

    def fail(self, name: str, code: str, message: str) -> dict[str, Any]:
        body = {"code": code, "message": message}
        return self.ok("POST", f"/_kvcert/certificates/{name}/pending/fail", body)

    def stats(self) -> dict[str, int]:
        found: dict[str, int] = self.ok("GET", "/_kvcert/stats")["requests"]
        return found

    def count(self, route: str) -> int:
        """Requests so far to one route template, e.g. "POST /certificates/{name}/create"."""
        return self.stats().get(route, 0)

    def total(self) -> int:
        total: int = self.ok("GET", "/_kvcert/stats")["total"]
        return total

    def ca_pem(self) -> str:
        response = self.call("GET", "/_kvcert/ca")
        assert response.is_success, response.text
        return response.text

    def close(self) -> None:
        self.http.close()


CREATES = "POST /certificates/{name}/create"
PENDING_READS = "GET /certificates/{name}/pending"
CANCELS = "PATCH /certificates/{name}/pending"
MERGES = "POST /certificates/{name}/pending/merge"
