"""Liveness and readiness of `kvcert operator run`, with the operator's own credentials.

Readiness is 200 only once every kind the operator watches can be listed with its credentials
(issue #13): an operator whose ServiceAccount has no RBAC stays unready and says which list
was refused, and becomes ready once the rules are granted.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from kubernetes import client

from kvcert.devcluster.controlplane import free_port
from tests.conftest import Cluster
from tests.integration.operator.harness import wait_for
from tests.support.operator_process import OperatorProcess


def _probes() -> tuple[tuple[str, ...], str, str]:
    live, ready = free_port(), free_port()
    args = (
        "--liveness",
        f"http://127.0.0.1:{live}/healthz",
        "--readiness",
        f"http://127.0.0.1:{ready}/readyz",
    )
    return args, f"http://127.0.0.1:{live}/healthz", f"http://127.0.0.1:{ready}/readyz"


def _get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=2)
    except httpx.TransportError:
        return None


def test_an_operator_with_its_rights_is_live_and_ready(cluster: Cluster, crds: None):
    args, live, ready = _probes()
    with OperatorProcess(cluster.kubeconfig, args=args) as process:
        answer = wait_for(
            lambda: (r := _get(ready)) is not None and r.status_code == 200 and r,
            60,
            f"readiness 200 (log: {process.log(2000)})",
        )
        assert answer.json() == {"ready": True}
        assert (health := _get(live)) is not None
        assert health.status_code == 200


@pytest.fixture
def service_account(
    api_client: client.ApiClient, namespace: str, cluster: Cluster, tmp_path: Path
) -> Iterator[tuple[str, Path]]:
    """A ServiceAccount without any RBAC, and a kubeconfig that uses its token."""
    core = client.CoreV1Api(api_client)
    name = f"op-{uuid.uuid4().hex[:6]}"
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=name))
    )
    token = core.create_namespaced_service_account_token(
        name,
        namespace,
        client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
        ),
    ).status.token
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    config["users"] = [{"name": "admin", "user": {"token": token}}]
    path = tmp_path / "operator.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    yield name, path
    rbac = client.RbacAuthorizationV1Api(api_client)
    for delete in (rbac.delete_cluster_role_binding, rbac.delete_cluster_role):
        try:
            delete(name)
        except client.ApiException as error:
            if error.status != 404:
                raise


def test_an_operator_without_rbac_is_unready_and_names_the_refused_list_until_granted(
    api_client: client.ApiClient, namespace: str, service_account: tuple[str, Path], crds: None
):
    name, kubeconfig = service_account
    args, _, ready = _probes()
    with OperatorProcess(kubeconfig, args=args) as process:

        def refused() -> dict | None:
            answer = _get(ready)
            if answer is None or answer.status_code != 503:
                return None
            body = answer.json()
            return body if any("403" in line for line in body["missing"]) else None

        body = wait_for(refused, 60, f"readiness 503 naming a 403 (log: {process.log(2000)})")
        assert body["ready"] is False
        assert body["final"] is False
        assert "cannot list certificates cluster-wide: 403 Forbidden" in body["missing"]

        rbac = client.RbacAuthorizationV1Api(api_client)
        rbac.create_cluster_role(
            client.V1ClusterRole(
                metadata=client.V1ObjectMeta(name=name),
                rules=[
                    client.V1PolicyRule(
                        api_groups=["kvcert.io"],
                        resources=[
                            "certificates",
                            "keyvaults",
                            "clusterkeyvaults",
                            "certificateissuers",
                            "clustercertificateissuers",
                        ],
                        verbs=["list", "watch"],
                    )
                ],
            )
        )
        rbac.create_cluster_role_binding(
            client.V1ClusterRoleBinding(
                metadata=client.V1ObjectMeta(name=name),
                role_ref=client.V1RoleRef(
                    api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=name
                ),
                subjects=[
                    client.RbacV1Subject(kind="ServiceAccount", name=name, namespace=namespace)
                ],
            )
        )
        wait_for(
            lambda: (r := _get(ready)) is not None and r.status_code == 200,
            90,
            f"readiness 200 once granted (log: {process.log(2000)})",
        )
