"""The local control plane is a real Kubernetes API server, not a stand-in.

These checks exercise exactly what the operator relies on: CRDs with a status subresource,
`/status` patches, watches, and Secrets.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from kvcert.devcluster.binaries import K8S_VERSION
from tests.conftest import Cluster

GROUP, VERSION, PLURAL = "smoke.kvcert.io", "v1", "widgets"


def _widget_crd() -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": PLURAL, "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {"size": {"type": "integer"}},
                                },
                                "status": {
                                    "type": "object",
                                    "properties": {"phase": {"type": "string"}},
                                },
                            },
                        }
                    },
                }
            ],
        },
    }


def wait_for(predicate: Any, timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll until predicate() is truthy; fail with `what` after timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture(scope="module")
def widget_crd(api_client: client.ApiClient) -> Iterator[None]:
    extensions = client.ApiextensionsV1Api(api_client)
    name = f"{PLURAL}.{GROUP}"
    try:
        extensions.create_custom_resource_definition(_widget_crd())
    except ApiException as error:
        if error.status != 409:
            raise

    def established() -> bool:
        conditions = extensions.read_custom_resource_definition(name).status.conditions or []
        return any(c.type == "Established" and c.status == "True" for c in conditions)

    wait_for(established, what=f"CRD {name} to be Established")
    yield
    extensions.delete_custom_resource_definition(name)


def test_api_server_reports_the_pinned_version(cluster: Cluster, api_client: client.ApiClient):
    if cluster.local is None:
        pytest.skip("an external cluster from KUBECONFIG runs its own version")
    info = client.VersionApi(api_client).get_code()
    assert info.git_version == K8S_VERSION
    assert info.major == "1"


@pytest.mark.usefixtures("widget_crd")
def test_status_subresource_patch_arrives_through_a_watch(
    api_client: client.ApiClient, namespace: str
):
    custom = client.CustomObjectsApi(api_client)
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Widget", "metadata": {"name": "w1"}}
    body["spec"] = {"size": 3}
    body["status"] = {"phase": "ignored on create"}
    created = custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    # A status subresource means status in the main resource's body is dropped.
    assert "status" not in created or created["status"] in ({}, None)

    custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, "w1", {"status": {"phase": "Ready"}}
    )
    seen: list[str] = []
    stream = watch.Watch().stream(
        custom.list_namespaced_custom_object,
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        resource_version=created["metadata"]["resourceVersion"],
        timeout_seconds=30,
    )
    for event in stream:
        seen.append(event["type"])
        if event["object"].get("status", {}).get("phase") == "Ready":
            break
    else:
        pytest.fail(f"no watch event carried the patched status; saw {seen}")
    assert seen[-1] == "MODIFIED"

    # Writing the main resource must not touch status: that is the subresource's contract.
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "w1", {"spec": {"size": 4}, "status": {"phase": "X"}}
    )
    stored = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "w1")
    assert stored["spec"]["size"] == 4
    assert stored["status"]["phase"] == "Ready"


def test_a_tls_secret_reads_back_as_written(api_client: client.ApiClient, namespace: str):
    core = client.CoreV1Api(api_client)
    pem = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    core.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="web-tls"),
            type="kubernetes.io/tls",
            data={
                "tls.crt": base64.b64encode(pem).decode(),
                "tls.key": base64.b64encode(b"not a real key").decode(),
            },
        ),
    )
    read = core.read_namespaced_secret("web-tls", namespace)
    assert read.type == "kubernetes.io/tls"
    assert base64.b64decode(read.data["tls.crt"]) == pem


def test_a_tls_secret_without_its_key_is_rejected(api_client: client.ApiClient, namespace: str):
    core = client.CoreV1Api(api_client)
    with pytest.raises(ApiException) as raised:
        core.create_namespaced_secret(
            namespace,
            client.V1Secret(
                metadata=client.V1ObjectMeta(name="broken"),
                type="kubernetes.io/tls",
                data={"tls.crt": base64.b64encode(b"x").decode()},
            ),
        )
    assert raised.value.status == 422
