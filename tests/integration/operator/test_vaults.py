"""KeyVault and ClusterKeyVault: readiness in status, and Certificates that use them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.integration.operator.harness import GROUP, VERSION, Kube, wait_for
from tests.support.operator_process import OperatorProcess
from tests.support.vault import LocalVault

OPERATOR_NAMESPACE = "kvcert-system"  # where a ClusterKeyVault's credential Secrets live


def _vault_ready(kube: Kube, plural: str, name: str, namespaced: bool = True) -> dict[str, Any]:
    def read() -> dict[str, Any]:
        if namespaced:
            found: dict[str, Any] = kube.custom.get_namespaced_custom_object(
                GROUP, VERSION, kube.namespace, plural, name
            )
        else:
            found = kube.custom.get_cluster_custom_object(GROUP, VERSION, plural, name)
        return found

    def condition() -> dict[str, Any] | None:
        for item in (read().get("status") or {}).get("conditions") or []:
            if item.get("type") == "Ready":
                return dict(item)
        return None

    return wait_for(condition, 30, f"{plural}/{name} to report Ready")


def _self_spec(vault_name: str, kind: str = "KeyVault") -> dict[str, Any]:
    return {
        "vaultRef": {"name": vault_name, "kind": kind},
        "secretName": "web-tls",
        "policy": {"issuer": {"name": "Self"}, "subject": "CN=web", "dnsNames": ["web"]},
    }


@pytest.mark.one_profile("service")
def test_a_reachable_keyvault_reports_ready(kube: Kube, keyvault: str):
    ready = _vault_ready(kube, "keyvaults", keyvault)
    assert (ready["status"], ready["reason"]) == ("True", "Reachable")
    assert ready["observedGeneration"] == 1


@pytest.mark.one_profile("service")
def test_a_keyvault_with_a_wrong_token_reports_access_denied_and_blocks_nothing_else(
    kube: Kube, vault: LocalVault, operator: OperatorProcess
):
    kube.put_secret("wrong-token", {"token": b"not-the-token"})
    kube.keyvault("wrong", vault.url, "wrong-token", vault.ca_path.read_text())
    ready = _vault_ready(kube, "keyvaults", "wrong")
    assert (ready["status"], ready["reason"]) == ("False", "AccessDenied")
    assert "not-the-token" not in ready["message"]
    kube.apply_certificate("web", _self_spec("wrong"))
    stuck = kube.wait_condition("web", "Ready", "False", "AccessDenied", timeout=60)
    assert "not-the-token" not in str(stuck["status"])


@pytest.mark.one_profile("service")
def test_a_certificate_naming_a_missing_vault_waits_for_it(
    kube: Kube, vault: LocalVault, operator: OperatorProcess
):
    kube.apply_certificate("late-vault", _self_spec("nowhere"))
    body = kube.wait_condition("late-vault", "Ready", "False", "VaultNotReady")
    ready = next(c for c in body["status"]["conditions"] if c["type"] == "Ready")
    assert "nowhere" in ready["message"]

    # Each round waiting for the vault counts as failed and backs off exponentially (2, 4, 8 s
    # ±20 %): three rounds take at least 2 * 0.8 + 4 * 0.8 s after the first (issue #18 §3).
    def attempts() -> dict[str, Any] | None:
        status = (kube.certificate("late-vault") or {}).get("status") or {}
        return status if (status.get("failedAttempts") or 0) >= 3 else None

    first = kube.certificate("late-vault") or {}
    assert first["status"]["failedAttempts"] >= 1
    counted = wait_for(attempts, 60, "three failed attempts in status")
    assert counted["lastFailureTime"]
    assert counted["failedAttempts"] <= 6  # not a storm: 2 s doubling, not a retry per second

    # The vault appears: the Certificate is issued and the count is dropped.
    kube.put_secret("vault-token", {"token": vault.token.encode()})
    kube.keyvault("nowhere", vault.url, "vault-token", vault.ca_path.read_text())
    done = kube.wait_condition("late-vault", "Ready", "True", "Issued", timeout=90)
    assert "failedAttempts" not in done["status"]
    assert done["status"]["lastFailureTime"] >= counted["lastFailureTime"]  # kept, RFC 3339


@pytest.fixture
def cluster_vault(
    api_client: client.ApiClient, vault: LocalVault, operator: OperatorProcess
) -> Iterator[str]:
    core, custom = client.CoreV1Api(api_client), client.CustomObjectsApi(api_client)
    name = f"shared-{vault.profile}"
    try:
        core.create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=OPERATOR_NAMESPACE))
        )
    except ApiException as error:
        if error.status != 409:
            raise
    secret = client.V1Secret(
        metadata=client.V1ObjectMeta(name=f"{name}-token"), string_data={"token": vault.token}
    )
    core.create_namespaced_secret(OPERATOR_NAMESPACE, secret)
    custom.create_cluster_custom_object(
        GROUP,
        VERSION,
        "clusterkeyvaults",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ClusterKeyVault",
            "metadata": {"name": name},
            "spec": {
                "url": vault.url,
                "auth": {"token": {"secretRef": {"name": f"{name}-token", "key": "token"}}},
                "caBundle": vault.ca_path.read_text(),
            },
        },
    )
    yield name
    custom.delete_cluster_custom_object(GROUP, VERSION, "clusterkeyvaults", name)
    core.delete_namespaced_secret(f"{name}-token", OPERATOR_NAMESPACE)


@pytest.mark.one_profile("documented")
def test_a_certificate_issued_through_a_clusterkeyvault(kube: Kube, cluster_vault: str):
    ready = _vault_ready(kube, "clusterkeyvaults", cluster_vault, namespaced=False)
    assert ready["status"] == "True"
    kube.apply_certificate("via-cluster", _self_spec(cluster_vault, kind="ClusterKeyVault"))
    kube.wait_condition("via-cluster", "Ready", "True", "Issued")
    secret = kube.secret("web-tls")
    assert secret is not None
    assert secret.type == "kubernetes.io/tls"


@pytest.mark.one_profile("documented")
def test_a_clusterkeyvault_reads_its_secret_from_the_namespace_its_ref_names(
    kube: Kube, vault: LocalVault, operator: OperatorProcess
):
    """secretRef.namespace (ClusterKeyVault only) overrides the operator's namespace."""
    kube.put_secret("elsewhere-token", {"token": vault.token.encode()})
    name = f"elsewhere-{kube.namespace}"
    ref = {"name": "elsewhere-token", "key": "token", "namespace": kube.namespace}
    kube.custom.create_cluster_custom_object(
        GROUP,
        VERSION,
        "clusterkeyvaults",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ClusterKeyVault",
            "metadata": {"name": name},
            "spec": {
                "url": vault.url,
                "auth": {"token": {"secretRef": ref}},
                "caBundle": vault.ca_path.read_text(),
            },
        },
    )
    try:
        ready = _vault_ready(kube, "clusterkeyvaults", name, namespaced=False)
        assert (ready["status"], ready["reason"]) == ("True", "Reachable"), ready
    finally:
        kube.custom.delete_cluster_custom_object(GROUP, VERSION, "clusterkeyvaults", name)


@pytest.mark.one_profile("documented")
def test_a_keyvault_never_reads_a_secret_from_another_namespace(
    kube: Kube, vault: LocalVault, operator: OperatorProcess
):
    """A namespaced KeyVault's secretRef.namespace is ignored: no cross-namespace reads."""
    elsewhere = f"{kube.namespace}-x"
    kube.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=elsewhere)))
    try:
        Kube(kube.api, elsewhere).put_secret("vault-token", {"token": vault.token.encode()})
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "KeyVault",
            "metadata": {"name": "main"},
            "spec": {
                "url": vault.url,
                "auth": {
                    "token": {
                        "secretRef": {"name": "vault-token", "key": "token", "namespace": elsewhere}
                    }
                },
                "caBundle": vault.ca_path.read_text(),
            },
        }
        kube.custom.create_namespaced_custom_object(
            GROUP, VERSION, kube.namespace, "keyvaults", body
        )
        ready = _vault_ready(kube, "keyvaults", "main")
        assert (ready["status"], ready["reason"]) == ("False", "InvalidConfiguration"), ready
        assert f"{kube.namespace}/vault-token does not exist" in ready["message"]
    finally:
        kube.core.delete_namespace(elsewhere)
