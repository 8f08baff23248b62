"""High availability on the real kubelet: two replicas, one leader, failover when it dies.

As cheap as it can be: one `helm install` with replicaCount 2 (leader election is on by
default), both pods Ready (the standby says "standby"), a Certificate whose DigiCert-provider
operation stays in progress, the leader pod deleted (as a rollout or a drain does: SIGTERM),
another pod (the standby, or now and then the Deployment's replacement pod, which may ask
for the released Lease first) holding the Lease within TAKEOVER s, far less than
leaseDuration (the figure is printed and kept in .bench/e2e-failover.json), the operation
completed and delivered with
exactly one Key Vault create.

The leader releases the Lease when it stops (kvcert.runtime.leader: kopf stops, then the Lease
is written with no holder, as client-go's ReleaseOnCancel), so the standby takes it at its next
attempt (retryPeriod, 2 s). This test once timed out in CI at leaseDuration + 5 = 20 s, when the
leader pod was deleted with `--grace-period=0 --force` and nothing released the Lease: the dying
leader went on renewing through the kubelet's minimum grace period (2 s), the standby counts
leaseDuration from the last renewal it *observed* (its reads are a retry period apart), and
acquires at its next attempt after that: 15 + 2 + 2 + 2 s in the worst case, over 20 s. A crash
without release (SIGKILL) is tested with short timings in
tests/integration/operator/test_leader.py. The audit log tells the
pods apart (ServiceAccount tokens bound to a pod carry its name in user.extra): before the kill
the standby wrote nothing but the Lease, and only the leader patched Certificate status; the
container logs agree (only the leader's mentions the Certificate).

Its own local vault (port 8444) and release (`kvcert-ha`), removed afterwards, so that
test_helm_install's figures and RBAC audit are not disturbed.
"""

from __future__ import annotations

import json
import secrets
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from tests.e2e.cluster import NodeCluster
from tests.e2e.forward import Forwarder
from tests.e2e.host import ClusterError
from tests.e2e.test_helm_install import CHART, RESTRICTED, Vault, _answers
from tests.integration.operator.harness import CREATES, Kube, VaultOps, certificate_spec

REPO = Path(__file__).resolve().parents[2]
FIGURES = REPO / ".bench" / "e2e-failover.json"
RELEASE, NAMESPACE, TENANT = "kvcert-ha", "kvcert-ha", "failover"
LEASE = f"{RELEASE}-kvcert-operator"
LEASE_DURATION = 15
TAKEOVER = 10
"""Seconds from the leader pod's deletion to the standby holding the Lease: the kubelet's
SIGTERM, the leader's stop and release (well under a second here) and one retry period (2 s),
with room for a loaded machine; a standby waits LEASE_DURATION after a crash."""
VAULT_PORT = 8444
ISSUER = "digicert"
POD_NAME_KEY = "authentication.kubernetes.io/pod-name"
WRITES = ("create", "update", "patch", "delete", "deletecollection")


@pytest.fixture(scope="module")
def world(
    node_cluster: NodeCluster, operator_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[NodeCluster, client.ApiClient, VaultOps]]:
    """The vault of this module, reachable by the pods and by the test; stopped afterwards."""
    cluster = node_cluster
    work = tmp_path_factory.mktemp("failover-vault")
    token = secrets.token_hex(16)
    token_file = work / "token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    argv = [
        sys.executable, "-m", "kvcert.vault", "serve", "--host", "0.0.0.0",
        "--port", str(VAULT_PORT), "--data-dir", str(work), "--token-file", str(token_file),
        "--hostname", cluster.node_ip, "--ca-delay", "600",
    ]  # fmt: skip
    proc = cluster.spawn("vault-failover", argv)
    targets = [f"{cluster.node_ip}:6443", f"{cluster.node_ip}:{VAULT_PORT}"]
    try:
        with Forwarder(cluster.netns, targets, work / "forward.log") as forward:
            api_port, vault_port = forward.ports
            vault = Vault(
                url=f"https://{cluster.node_ip}:{VAULT_PORT}",
                local_url=f"https://127.0.0.1:{vault_port}",
                token=token,
                ca_path=work / "tls" / "ca.crt",
            )
            cluster.wait_for(
                lambda: vault.ca_path.exists() and _answers(vault), 60, "the local vault"
            )
            kubeconfig = yaml.safe_load(cluster.kubeconfig.read_text())
            kubeconfig["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{api_port}"
            local = work / "local.kubeconfig"
            local.write_text(yaml.safe_dump(kubeconfig))
            with config.new_client_from_config(config_file=str(local)) as api:
                ops = VaultOps(vault)
                try:
                    yield cluster, api, ops
                finally:
                    ops.close()
                    # Certificates before their namespace, and the namespaces gone before the
                    # next module's cluster-wide operator could see them terminating.
                    cluster.kubectl(
                        "delete", "certificates.kvcert.io", "--all", "-n", TENANT, check=False
                    )
                    cluster.helm("uninstall", RELEASE, "-n", NAMESPACE, "--wait", check=False)
                    cluster.kubectl(
                        "delete", "namespace", TENANT, NAMESPACE, "--timeout=120s", check=False
                    )
    finally:
        proc.stop()


def _pods(cluster: NodeCluster) -> list[dict[str, Any]]:
    listed = cluster.kubectl_json(
        "get", "pods", "-n", NAMESPACE, "-l", f"app.kubernetes.io/instance={RELEASE}"
    )
    return [p for p in listed["items"] if not p["metadata"].get("deletionTimestamp")]


def _ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _holder(api: client.ApiClient) -> str | None:
    try:
        lease = client.CoordinationV1Api(api).read_namespaced_lease(LEASE, NAMESPACE)
    except client.ApiException:
        return None
    return None if lease.spec is None else lease.spec.holder_identity


def _pod_of(holder: str | None) -> str | None:
    """`<pod name>_<pid>` -> the pod name."""
    return None if not holder else holder.rsplit("_", 1)[0]


def _writes_by_pod(events: list[dict[str, Any]], user: str) -> list[tuple[str, str, str, datetime]]:
    """(pod, verb resource[/sub], namespace, time) of every write by `user`."""
    found = []
    for event in events:
        who = event.get("user") or {}
        if who.get("username") != user or event.get("verb") not in WRITES:
            continue
        ref = event.get("objectRef") or {}
        what = f"{event['verb']} {ref.get('resource')}"
        if ref.get("subresource"):
            what += "/" + ref["subresource"]
        pod = ((who.get("extra") or {}).get(POD_NAME_KEY) or ["?"])[0]
        at = datetime.fromisoformat(event["requestReceivedTimestamp"].replace("Z", "+00:00"))
        found.append((pod, what, ref.get("namespace") or "", at))
    return found


def test_the_standby_takes_over_when_the_leader_pod_is_deleted(world, operator_image):
    cluster, api, ops = world
    repository, _, tag = operator_image.rpartition(":")
    core = client.CoreV1Api(api)  # the release's namespace (restricted) and the tenant's
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE, labels=RESTRICTED))
    )
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=TENANT)))
    cluster.helm(
        "install", RELEASE, str(CHART), "-n", NAMESPACE,
        "--set", f"image.repository={repository}", "--set", f"image.tag={tag}",
        "--set", "image.pullPolicy=Never", "--set", "replicaCount=2",
        "--wait", "--timeout", "180s",
    )  # fmt: skip
    pods = cluster.wait_for(
        lambda: (found := _pods(cluster)) and len(found) == 2 and all(map(_ready, found)) and found,
        120,
        "both operator pods Ready",
    )
    holder = cluster.wait_for(lambda: _holder(api), 60, "the Lease held")
    leader = _pod_of(holder)
    names = {p["metadata"]["name"] for p in pods}
    assert leader in names, (holder, names)
    (standby,) = names - {leader}
    body = cluster.kubectl(
        "exec", "-n", NAMESPACE, standby, "--", "python3", "-c",
        "import urllib.request as u; print(u.urlopen('http://127.0.0.1:8081/readyz').read().decode())",
    ).stdout  # fmt: skip
    assert json.loads(body)["role"] == "standby", body

    # A certificate in progress, made by the leader.
    tenant = Kube(api, TENANT)
    ops.set_issuer(ISSUER, "DigiCert")
    tenant.put_secret("vault-token", {"token": ops.vault.token.encode()})
    tenant.keyvault("main", ops.vault.url, "vault-token", ops.vault.ca_path.read_text())
    tenant.apply_certificate("web", certificate_spec("main", "web-tls", ISSUER))
    tenant.wait_operation("web", lambda op: op.get("status") == "inProgress", timeout=90)
    assert ops.count(CREATES) == 1

    def log(pod: str) -> str:
        return cluster.kubectl("logs", "-n", NAMESPACE, pod, check=False).stdout

    assert "acquired the lease" in log(leader)
    assert "standing by for the lease" in log(standby)
    assert f"{TENANT}/web" not in log(standby)

    # The leader pod is deleted: it stops and releases the Lease; another pod takes over at
    # once, far sooner than the lease duration. Usually the standby; sometimes the Deployment's
    # replacement pod, started meanwhile, acquires the released Lease first: both are a
    # takeover (the released Lease is free to whoever asks first).
    killed_at = datetime.now(UTC)
    killed = time.monotonic()
    cluster.kubectl("delete", "pod", "-n", NAMESPACE, leader, "--wait=false")

    def taken_over() -> str | None:
        pod = _pod_of(_holder(api))
        return pod if pod and pod != leader else None

    try:
        successor = cluster.wait_for(taken_over, TAKEOVER, "another pod leading")
    except ClusterError:
        # Say where the time went: the leader's last lines (its stop and release) and the
        # standby's, and who holds the Lease now.
        tails = {pod: log(pod).splitlines()[-15:] for pod in (leader, standby)}
        pytest.fail(f"no takeover in {TAKEOVER} s; Lease holder {_holder(api)!r}; logs {tails}")
    failover = round(time.monotonic() - killed, 1)
    print(f"\nfailover on the kubelet: {failover} s from the leader pod's deletion")

    ops.complete("web")
    tenant.wait_condition("web", "Ready", "True", "Issued", timeout=90)
    assert tenant.secret("web-tls") is not None
    assert ops.count(CREATES) == 1
    assert "acquired the lease" in log(successor)

    # The audit log: before the kill, the standby wrote nothing but the Lease, and only the
    # leader patched the Certificate's status.
    account = cluster.kubectl_json("get", "pod", "-n", NAMESPACE, standby)["spec"]
    user = f"system:serviceaccount:{NAMESPACE}:{account['serviceAccountName']}"
    writes = _writes_by_pod(cluster.audit_events(), user)
    before = [w for w in writes if w[3] < killed_at]
    assert {w[0] for w in writes} - {"?"}, "the audit log does not name the pods"
    standby_before = {w[1] for w in before if w[0] == standby}
    assert standby_before <= {"create leases", "update leases"}, standby_before
    status_patches = {w[0] for w in writes if w[1] == "patch certificates/status"}
    assert status_patches <= {leader, standby, successor}, status_patches
    assert leader in {w[0] for w in before if w[1] == "patch certificates/status"}
    FIGURES.parent.mkdir(exist_ok=True)
    FIGURES.write_text(json.dumps({"failover after pod deletion, s": failover}, indent=1) + "\n")
