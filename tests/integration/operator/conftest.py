"""Fixtures: the real API server (tests/conftest.py), the real local vault over HTTPS in each
profile, the CRDs from crds/, and the operator running as a subprocess."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from kubernetes import client

from tests.conftest import Cluster
from tests.integration.operator.harness import Kube, install_crds
from tests.support.operator_process import OperatorProcess
from tests.support.vault import LocalVault

PROFILES = ("documented", "service")


@pytest.fixture(scope="session")
def crds(api_client: client.ApiClient) -> None:
    install_crds(api_client)


@pytest.fixture(scope="session", params=PROFILES)
def vault(request: pytest.FixtureRequest) -> Iterator[LocalVault]:
    """One local vault per profile; simulated-CA outcomes are driven by the management API."""
    local = LocalVault.start(profile=request.param, ca_delay=600.0)
    try:
        yield local
    finally:
        local.close()


@pytest.fixture(scope="session")
def operator(cluster: Cluster, crds: None) -> Iterator[OperatorProcess]:
    with OperatorProcess(cluster.kubeconfig) as process:
        yield process
        if not process.alive():
            pytest.fail(f"the operator died:\n{process.log()}")


@pytest.fixture
def kube(api_client: client.ApiClient, namespace: str, crds: None) -> Kube:
    return Kube(api_client, namespace)


@pytest.fixture
def keyvault(kube: Kube, vault: LocalVault, operator: OperatorProcess) -> Iterator[str]:
    """A KeyVault named `main` in the test's namespace, pointing at the local vault."""
    kube.put_secret("vault-token", {"token": vault.token.encode()})
    kube.keyvault("main", vault.url, "vault-token", vault.ca_path.read_text())
    yield "main"
    if not operator.alive():
        pytest.fail(f"the operator died:\n{operator.log()}")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
