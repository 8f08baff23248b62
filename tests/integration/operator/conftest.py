"""Fixtures: the real API server (tests/conftest.py), the real local vault over HTTPS in each
profile, the CRDs from crds/, and the operator running as a subprocess."""

from __future__ import annotations

import base64
import re
import socket
from collections.abc import Iterable, Iterator

import pytest
from kubernetes import client

from tests.conftest import Cluster
from tests.integration.operator.harness import Kube, VaultOps, install_crds
from tests.support.operator_process import OperatorProcess
from tests.support.vault import LocalVault

PROFILES = ("documented", "service")
VAULT_TOKENS: list[str] = []
"""The token of every vault this session started: the session operator's log never holds one."""
PRIVATE_KEY_BLOCK = re.compile(r"-----(?:BEGIN|END) [A-Z0-9 ]*PRIVATE KEY-----")


def log_leaks(text: str, tokens: Iterable[str]) -> list[str]:
    """Where a log shows a private key PEM marker or one of `tokens`: one entry per leak,
    "line N: what" (N from 1), never the secret itself, so the report does not leak it too."""
    tokens = [token for token in tokens if token]
    if not PRIVATE_KEY_BLOCK.search(text) and not any(token in text for token in tokens):
        return []  # the common case: one pass over the text per needle, no line split
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        if PRIVATE_KEY_BLOCK.search(line):
            found.append(f"line {number}: a PRIVATE KEY block")
        if any(token in line for token in tokens):
            found.append(f"line {number}: a vault's token")
    return found


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "one_profile(name): run only under this vault profile (the profiles behave alike here)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the other profile's run of a test marked `one_profile`."""
    dropped = []
    for item in items:
        marker = item.get_closest_marker("one_profile")
        callspec = getattr(item, "callspec", None)
        profile = callspec.params.get("vault") if callspec is not None else None
        if marker is not None and profile is not None and profile != marker.args[0]:
            dropped.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item not in dropped]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """On a failed test, attach the tail of the operator's log to the report."""
    outcome = yield
    report = outcome.get_result()
    process = getattr(item, "funcargs", {}).get("operator")
    if report.failed and isinstance(process, OperatorProcess):
        report.sections.append(("operator log", process.log(12000)))


@pytest.fixture(scope="session")
def crds(api_client: client.ApiClient) -> None:
    install_crds(api_client)


@pytest.fixture(scope="session", params=PROFILES)
def vault(request: pytest.FixtureRequest) -> Iterator[LocalVault]:
    """One local vault per profile; simulated-CA outcomes are driven by the management API."""
    local = LocalVault.start(profile=request.param, ca_delay=600.0)
    VAULT_TOKENS.append(local.token)
    try:
        yield local
    finally:
        local.close()


@pytest.fixture(scope="session")
def metrics_url() -> str:
    """Where the session operator serves its Prometheus metrics (a free loopback port)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/metrics"


@pytest.fixture(scope="session")
def operator(cluster: Cluster, crds: None, metrics_url: str) -> Iterator[OperatorProcess]:
    with OperatorProcess(cluster.kubeconfig, args=("--metrics", metrics_url)) as process:
        yield process
        if not process.alive():
            pytest.fail(f"the operator died:\n{process.log()}")
        full = process.log(tail=50_000_000)
        leaks = log_leaks(full, VAULT_TOKENS)
        if leaks:
            shown = "\n".join(leaks[:20])
            pytest.fail(f"the operator's log shows secrets ({len(leaks)} times):\n{shown}")
        lines = full.splitlines()
        failed = [i for i, line in enumerate(lines) if "reconcile failed" in line]
        if failed or "reconcile did not settle" in full:
            first = failed[0] if failed else 0
            context = "\n".join(lines[first : first + 40])
            pytest.fail(f"the operator's reconciles raised ({len(failed)} times):\n{context}")


@pytest.fixture
def kube(api_client: client.ApiClient, namespace: str, crds: None) -> Kube:
    return Kube(api_client, namespace)


@pytest.fixture
def keyvault(kube: Kube, vault: LocalVault, operator: OperatorProcess) -> Iterator[str]:
    """A KeyVault named `main` in the test's namespace, pointing at the local vault."""
    kube.put_secret("vault-token", {"token": vault.token.encode()})
    kube.keyvault("main", vault.url, "vault-token", vault.ca_path.read_text())
    yield "main"
    if operator.alive():
        # Before the namespace, and no polling left behind; then the test's names leave the
        # shared vault, so that no later test meets them as another Certificate's (NotOwned).
        names = kube.delete_all_certificates()
        ops = VaultOps(vault)
        try:
            ops.purge(names)
        finally:
            ops.close()
    if not operator.alive():
        pytest.fail(f"the operator died:\n{operator.log()}")


@pytest.fixture
def vault_ops(vault: LocalVault) -> Iterator[VaultOps]:
    """Direct Key Vault and management calls to the test's vault."""
    ops = VaultOps(vault)
    try:
        yield ops
    finally:
        ops.close()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
