"""The end-to-end cluster is a real node: pods run on it and its admission is a real one's."""

from __future__ import annotations

import ipaddress
import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.cluster import NodeCluster

pytestmark = pytest.mark.e2e

RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "runAsUser": 65535,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def _pod(name: str, image: str, security: dict[str, Any] | None) -> str:
    container: dict[str, Any] = {"name": "pause", "image": image, "imagePullPolicy": "Never"}
    if security is not None:
        container["securityContext"] = security
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [container], "terminationGracePeriodSeconds": 1},
    }
    return json.dumps(pod)


@pytest.fixture
def restricted_namespace(node_cluster: NodeCluster) -> Iterator[str]:
    """A namespace enforcing the restricted Pod Security Standard, with its default SA."""
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    labels = {"pod-security.kubernetes.io/enforce": "restricted"}
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": labels},
    }
    node_cluster.kubectl("create", "-f", "-", input=json.dumps(namespace))
    node_cluster.wait_for(
        lambda: node_cluster.kubectl("-n", name, "get", "sa/default", check=False).returncode == 0,
        60,
        f"the default ServiceAccount in {name}",
    )
    yield name
    node_cluster.kubectl("delete", "namespace", name, "--wait=false")


def test_the_node_is_ready_at_its_own_address(node_cluster: NodeCluster) -> None:
    node = node_cluster.kubectl_json("get", "node", node_cluster.node_name)
    ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
    assert ready[0]["status"] == "True"
    addresses = {a["type"]: a["address"] for a in node["status"]["addresses"]}
    assert addresses["InternalIP"] == node_cluster.node_ip


def test_a_restricted_pod_runs_on_the_pod_network(
    node_cluster: NodeCluster, restricted_namespace: str
) -> None:
    ns = ("-n", restricted_namespace)
    manifest = _pod("p", node_cluster.pause_image, RESTRICTED_CONTAINER)
    node_cluster.kubectl(*ns, "create", "-f", "-", input=manifest)
    node_cluster.kubectl(*ns, "wait", "--for=condition=Ready", "pod/p", "--timeout=120s")
    pod = node_cluster.kubectl_json(*ns, "get", "pod/p")
    assert pod["status"]["phase"] == "Running"
    assert ipaddress.ip_address(pod["status"]["podIP"]) in ipaddress.ip_network("10.244.0.0/24")
    # the ServiceAccount admission plugin mounted a projected token
    volumes = [v["name"] for v in pod["spec"]["volumes"]]
    assert any(name.startswith("kube-api-access-") for name in volumes)


def test_a_pod_violating_restricted_is_refused_with_403(
    node_cluster: NodeCluster, restricted_namespace: str
) -> None:
    bad = _pod("bad", node_cluster.pause_image, None)
    done = node_cluster.kubectl(
        "-n", restricted_namespace, "create", "-f", "-", input=bad, check=False
    )
    assert done.returncode != 0
    assert "(Forbidden)" in done.stderr
    assert "violates PodSecurity" in done.stderr

    def refusal() -> dict[str, Any] | None:
        for event in node_cluster.audit_events():
            ref = event.get("objectRef", {})
            if (
                event["verb"] == "create"
                and ref.get("resource") == "pods"
                and ref.get("namespace") == restricted_namespace
            ):
                return event
        return None

    event = node_cluster.wait_for(refusal, 10, "the refused create in the audit log")
    assert event["responseStatus"]["code"] == 403
    assert event["stage"] == "ResponseComplete"
    assert event["user"]["username"] == "admin"


def test_spawned_processes_live_in_the_clusters_network_namespace(
    node_cluster: NodeCluster,
) -> None:
    proc = node_cluster.spawn("sleeper", ["sleep", "300"])
    netns = os.stat(node_cluster.netns_path).st_ino
    try:
        # nsenter enters the namespace, then execs sleep under the same PID
        node_cluster.wait_for(
            lambda: os.readlink(f"/proc/{proc.pid}/exe").endswith("/sleep"), 10, "the exec"
        )
        assert os.stat(f"/proc/{proc.pid}/ns/net").st_ino == netns
    finally:
        proc.stop()
    assert not proc.alive()
    # a stopped extra process is not a failed cluster
    assert node_cluster.wait_for(lambda: True, 5, "nothing")
