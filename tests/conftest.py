"""Session-wide fixtures: one real Kubernetes control plane for every integration test.

With KUBECONFIG set (a kind cluster, say) the tests use that cluster instead; otherwise they
start etcd + kube-apiserver built by hack/control-plane.sh on free loopback ports.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client, config

from kvcert.devcluster import binaries
from kvcert.devcluster.controlplane import ControlPlane


@dataclass(frozen=True)
class Cluster:
    """The cluster under test and how to reach it."""

    kubeconfig: Path
    local: ControlPlane | None

    def api_client(self) -> client.ApiClient:
        return config.new_client_from_config(config_file=str(self.kubeconfig))


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist turns groups into node-id suffixes
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = str(item.path)
        if "tests/integration" in path:
            item.add_marker(pytest.mark.integration)
        # Under pytest-xdist (`--dist loadgroup`, make test): a module with a lab of its own (a
        # control plane, vaults and an operator: the lifecycle tests) stays on one worker.
        if item.path.name.startswith("test_lifecycle_"):
            item.add_marker(pytest.mark.xdist_group(item.path.stem))


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    external = os.environ.get("KUBECONFIG")
    if external:
        yield Cluster(kubeconfig=Path(external), local=None)
        return
    directory = tmp_path_factory.mktemp("control-plane")
    with ControlPlane(binaries=binaries.ensure(), directory=directory) as plane:
        yield Cluster(kubeconfig=plane.kubeconfig, local=plane)


@pytest.fixture(scope="session")
def api_client(cluster: Cluster) -> Iterator[client.ApiClient]:
    with cluster.api_client() as api:
        yield api


@pytest.fixture
def namespace(api_client: client.ApiClient) -> Iterator[str]:
    """A namespace of the test's own; deleted afterwards (its objects go with it)."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    core = client.CoreV1Api(api_client)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)
