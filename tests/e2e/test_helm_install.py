"""`helm install` of the operator's own image onto a real kubelet, and what platform teams do next.

One cluster for the module (tests/e2e/conftest.py), steps in order, each its own test:
1. `helm install --wait`: the pod is Ready, runs as 65532 with a read-only root and no
   capabilities under the `restricted` Pod Security Standard.
2. Certificates of every kind issue under the chart's RBAC alone (scenarios below), against the
   local vault (`kvcert vault serve` inside the cluster's network namespace, over HTTPS).
3. `helm upgrade` with a changed value rolls the pod; certificates stay Ready, no new create.
4. The API server's audit log proves the chart's RBAC: the operator was never denied, and every
   rule the chart grants was used by some scenario (the table is printed).
5. `helm uninstall` removes the operator's objects and keeps CRDs, Certificates and Secrets.
6. `kubectl apply -f deploy/kvcert.yaml` installs an equivalent operator in kvcert-system.
7. A release with `watchNamespaces` serves only those namespaces under its namespaced RBAC.
"""

from __future__ import annotations

import json
import secrets
import ssl
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kubernetes import client, config

from tests.e2e.cluster import NodeCluster
from tests.e2e.forward import Forwarder
from tests.e2e.issuers import issuers_scenario
from tests.integration.operator.harness import (
    CREATES,
    GROUP,
    VERSION,
    Kube,
    VaultOps,
    certificate_spec,
    never,
    secret_text,
    wait_for,
)
from tests.integration.operator.testca import TestCA, key_pair, key_pem, pem_certs

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "kvcert-operator"
MANIFEST = REPO / "deploy" / "kvcert.yaml"
FIGURES = REPO / ".bench" / "e2e.json"
"""Measured figures of the last run (seconds, bytes), for the README."""
RELEASE = "kvcert"
HELM_NS = "kvcert-helm"
APPLY_NS = "kvcert-system"
VAULT_PORT = 8443
RESTRICTED = {"pod-security.kubernetes.io/enforce": "restricted"}
SCENARIOS = {
    "watch": "kopf's watches, the source Secret watch and the readiness check, at start-up",
    "self": "Self certificate issued, re-specified (new version replaces the Secret), its"
    " Secret deleted and rebuilt",
    "manual": "manual (Unknown) certificate merged from a Secret, then re-specified (new CSR)",
    "pending": "DeletePending certificate deleted while its operation is pending",
    "early": "Certificate applied before its KeyVault",
    "import": "certificate imported from a PEM Secret",
    "shared": "ClusterKeyVault (applied after its Certificate), deletionPolicy Delete",
    "issuers": "CertificateIssuer and ClusterCertificateIssuer applied before their password"
    " Secrets, written to Key Vault, deleted there with deletionPolicy Delete",
}


@dataclass(frozen=True)
class Vault:
    """The local vault inside the cluster's namespace: `url` for pods, `client()` for tests."""

    url: str
    local_url: str
    token: str
    ca_path: Path

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.local_url,
            headers={"Authorization": f"Bearer {self.token}"},
            verify=ssl.create_default_context(cafile=str(self.ca_path)),
            timeout=30,
        )


@dataclass
class E2E:
    cluster: NodeCluster
    api: client.ApiClient
    vault: Vault
    ops: VaultOps
    image: str
    figures: dict[str, float]

    def kube(self, namespace: str) -> Kube:
        return Kube(self.api, namespace)

    def namespace(self, name: str, labels: dict[str, str] | None = None) -> Kube:
        core = client.CoreV1Api(self.api)
        core.create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels))
        )
        return self.kube(name)

    def keyvault(self, namespace: str, name: str = "main") -> None:
        kube = self.kube(namespace)
        kube.put_secret("vault-token", {"token": self.vault.token.encode()})
        kube.keyvault(name, self.vault.url, "vault-token", self.vault.ca_path.read_text())

    def operator_pods(self, namespace: str) -> list[dict[str, Any]]:
        listed = self.cluster.kubectl_json(
            "get", "pods", "-n", namespace, "-l", "app.kubernetes.io/name=kvcert-operator"
        )
        return list(listed["items"])

    def helm_values(self) -> list[str]:
        repository, _, tag = self.image.rpartition(":")
        return [
            "--set",
            f"image.repository={repository}",
            "--set",
            f"image.tag={tag}",
            "--set",
            "image.pullPolicy=Never",
        ]


@pytest.fixture(scope="module")
def e2e(node_cluster: NodeCluster, operator_image: str, tmp_path_factory) -> Iterator[E2E]:
    cluster = node_cluster
    work = tmp_path_factory.mktemp("e2e-vault")
    token = secrets.token_hex(16)
    token_file = work / "token"  # not --token: a token in argv is visible to every `ps`
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    cluster.spawn(
        "vault",
        [
            sys.executable,
            "-m",
            "kvcert.vault",
            "serve",
            "--host",
            "0.0.0.0",
            "--port",
            str(VAULT_PORT),
            "--data-dir",
            str(work),
            "--token-file",
            str(token_file),
            "--hostname",
            cluster.node_ip,
            "--ca-delay",
            "600",
        ],
    )
    targets = [f"{cluster.node_ip}:6443", f"{cluster.node_ip}:{VAULT_PORT}"]
    with Forwarder(cluster.netns, targets, work / "forward.log") as forward:
        api_port, vault_port = forward.ports
        vault = Vault(
            url=f"https://{cluster.node_ip}:{VAULT_PORT}",
            local_url=f"https://127.0.0.1:{vault_port}",
            token=token,
            ca_path=work / "tls" / "ca.crt",
        )
        cluster.wait_for(
            lambda: vault.ca_path.exists() and _answers(vault), 60, "the local vault to answer"
        )
        kubeconfig = yaml.safe_load(cluster.kubeconfig.read_text())
        kubeconfig["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{api_port}"
        local = work / "local.kubeconfig"
        local.write_text(yaml.safe_dump(kubeconfig))
        with config.new_client_from_config(config_file=str(local)) as api:
            ops = VaultOps(vault)
            try:
                run = E2E(cluster, api, vault, ops, operator_image, figures={})
                yield run
            finally:
                ops.close()
    figures = {**{f"cluster {k}": v for k, v in cluster.timings.items()}, **run.figures}
    FIGURES.parent.mkdir(exist_ok=True)
    FIGURES.write_text(json.dumps(figures, indent=1) + "\n")


def _answers(vault: Vault) -> bool:
    try:
        with vault.client() as http:
            return http.get("/_kvcert/health").status_code == 200
    except httpx.HTTPError:
        return False


def _exec_python(cluster: NodeCluster, namespace: str, pod: str, code: str) -> str:
    return cluster.kubectl("exec", "-n", namespace, pod, "--", "python3", "-c", code).stdout


SELF_CHECK = """
import os
print("uid", os.getuid(), os.getgid())
try:
    open("/written-by-the-operator", "w")
    print("root rw")
except OSError:
    print("root ro")
open("/tmp/probe", "w").write("x")
print("tmp rw")
lines = open("/proc/self/status").read().splitlines()
caps = dict(line.split(":\\t") for line in lines if ":\\t" in line)
print("CapEff", caps["CapEff"].strip(), "CapBnd", caps["CapBnd"].strip())
print("NoNewPrivs", caps["NoNewPrivs"].strip(), "Seccomp", caps["Seccomp"].strip())
"""


def test_1_helm_install_runs_the_operator_as_a_restricted_pod(e2e: E2E):
    e2e.namespace(HELM_NS, RESTRICTED)
    started = time.monotonic()
    e2e.cluster.helm(
        "install", RELEASE, str(CHART), "-n", HELM_NS, *e2e.helm_values(),
        "--wait", "--timeout", "180s",
    )  # fmt: skip
    e2e.figures["helm install --wait, s"] = round(time.monotonic() - started, 1)
    pods = e2e.operator_pods(HELM_NS)
    assert len(pods) == 1
    pod = pods[0]
    ready = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
    assert ready["Ready"] == "True"
    assert pod["spec"]["containers"][0]["image"] == e2e.image
    out = _exec_python(e2e.cluster, HELM_NS, pod["metadata"]["name"], SELF_CHECK)
    assert "uid 65532 65532" in out
    assert "root ro" in out
    assert "tmp rw" in out
    assert "CapEff 0000000000000000" in out
    assert "NoNewPrivs 1" in out
    assert "Seccomp 2" in out  # filter mode: RuntimeDefault


def _wait_ready(kube: Kube, name: str, timeout: float = 90) -> dict[str, Any]:
    return kube.wait_condition(name, "Ready", "True", "Issued", timeout=timeout)


def _vault_ready(e2e: E2E, namespace: str | None, name: str) -> None:
    custom = client.CustomObjectsApi(e2e.api)

    def ready() -> bool:
        if namespace is None:
            body = custom.get_cluster_custom_object(GROUP, VERSION, "clusterkeyvaults", name)
        else:
            body = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "keyvaults", name)
        conditions = (body.get("status") or {}).get("conditions") or []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    wait_for(ready, 60, f"vault {namespace}/{name} Ready")


def test_2_certificates_of_every_kind_issue_under_the_charts_rbac(e2e: E2E):
    started = time.monotonic()
    kubes = {name: e2e.namespace(name) for name in SCENARIOS if name != "watch"}
    # Applied before its vault exists: the operator GETs the vault it has not seen (404).
    kubes["early"].apply_certificate("late", certificate_spec("main", "late-tls"))
    shared = certificate_spec(
        "shared", "shared-tls", deletionPolicy="Delete", cn="shared.example.com"
    )
    shared["vaultRef"]["kind"] = "ClusterKeyVault"
    kubes["shared"].apply_certificate("shared", shared)
    for name in ("self", "manual", "pending", "import", "issuers"):
        e2e.keyvault(name)
    kubes["self"].apply_certificate("web", certificate_spec("main", "web-tls"))
    manual = {"mergeFrom": {"secretName": "api-signed"}}
    kubes["manual"].apply_certificate(
        "api", certificate_spec("main", "api-tls", "Unknown", **manual)
    )
    kubes["pending"].apply_certificate(
        "gone", certificate_spec("main", "gone-tls", "Unknown", deletionPolicy="DeletePending")
    )
    ca = TestCA.make()
    key = key_pair()
    imported = ca.sign(key.public_key(), "imported.example.com")
    kubes["import"].put_secret(
        "source", {"tls.crt": ca.chain_pem(imported), "tls.key": key_pem(key)}, "kubernetes.io/tls"
    )
    kubes["import"].apply_certificate(
        "imported", {"vaultRef": {"name": "main"}, "secretName": "imported-tls",
                     "importFrom": {"secretName": "source"}},
    )  # fmt: skip

    kubes["early"].wait_condition("late", "Ready", "False", "VaultNotReady")
    kubes["shared"].wait_condition("shared", "Ready", "False", "VaultNotReady")
    e2e.keyvault("early")
    _cluster_vault(e2e, "shared", HELM_NS)
    _vault_ready(e2e, None, "shared")
    _vault_ready(e2e, "self", "main")

    # Self: issued and delivered, then a changed policy issues a new version into the Secret.
    web = _wait_ready(kubes["self"], "web")
    first = kubes["self"].secret("web-tls")
    assert first is not None
    assert first.type == "kubernetes.io/tls"
    assert "PRIVATE KEY" in secret_text(first, "tls.key")
    kubes["self"].patch_certificate("web", {"spec": {"policy": {"dnsNames": ["www.example.com"]}}})
    kubes["self"].wait_condition("web", "Ready", "True", "Issued", timeout=90)
    wait_for(
        lambda: (
            (b := kubes["self"].certificate("web"))
            and b["status"]["certificate"]["x5t"] != web["status"]["certificate"]["x5t"]
            and b["status"].get("observedGeneration") == b["metadata"]["generation"]
        ),
        90,
        "a new version of web",
    )
    renewed = kubes["self"].secret("web-tls")
    assert renewed is not None
    assert secret_text(renewed, "tls.crt") != secret_text(first, "tls.crt")
    # A deleted output Secret is rebuilt: its watch wakes the Ready Certificate, whose round
    # reads the object (no body is kept for an idle Certificate).
    kubes["self"].core.delete_namespaced_secret("web-tls", kubes["self"].namespace)
    wait_for(
        lambda: (
            (rebuilt := kubes["self"].secret("web-tls")) is not None
            and secret_text(rebuilt, "tls.crt") == secret_text(renewed, "tls.crt")
        ),
        60,
        "web-tls rebuilt",
    )

    # Manual: the CSR is published, the signed chain merged; a new policy publishes a new CSR.
    body = kubes["manual"].wait_condition("api", "Issuing", "True", "AwaitingMerge")
    csr_map = kubes["manual"].config_map("api-csr")
    assert csr_map is not None
    assert csr_map.data["csr.pem"].strip() == body["status"]["operation"]["csr"].strip()
    leaf = ca.sign_csr(csr_map.data["csr.pem"])
    kubes["manual"].put_secret("api-signed", {"tls.crt": ca.chain_pem(leaf)})
    _wait_ready(kubes["manual"], "api", timeout=120)
    api_tls = kubes["manual"].secret("api-tls")
    assert api_tls is not None
    assert pem_certs(secret_text(api_tls, "tls.crt"))[0] == leaf
    kubes["manual"].patch_certificate("api", {"spec": {"policy": {"subject": "CN=api2.example"}}})
    wait_for(
        lambda: (
            (m := kubes["manual"].config_map("api-csr")) is not None
            and m.data["csr.pem"] != csr_map.data["csr.pem"]
        ),
        90,
        "a new CSR in ConfigMap api-csr",
    )

    # DeletePending: deleting the Certificate deletes its pending operation in Key Vault.
    kubes["pending"].wait_condition("gone", "Issuing", "True", "AwaitingMerge")
    assert e2e.ops.pending("gone") is not None
    kubes["pending"].delete_certificate("gone")
    wait_for(lambda: kubes["pending"].certificate("gone") is None, 60, "gone to be deleted")
    assert e2e.ops.pending("gone") is None

    # Applied before their vaults: issued once the vaults appear.
    _wait_ready(kubes["early"], "late", timeout=120)
    _wait_ready(kubes["shared"], "shared", timeout=120)
    shared_tls = kubes["shared"].secret("shared-tls")
    assert shared_tls is not None
    assert shared_tls.type == "kubernetes.io/tls"

    # Import: the PEM pair is imported and delivered.
    _wait_ready(kubes["import"], "imported")
    imported_tls = kubes["import"].secret("imported-tls")
    assert imported_tls is not None
    assert pem_certs(secret_text(imported_tls, "tls.crt"))[0] == imported

    # Delete: deleting the Certificate soft-deletes the certificate in Key Vault.
    kubes["shared"].delete_certificate("shared")
    wait_for(lambda: kubes["shared"].certificate("shared") is None, 60, "shared to be deleted")
    deleted = e2e.ops.call("GET", "/deletedcertificates/shared")
    assert deleted.status_code == 200, deleted.text
    # Issuers (issue #19 §2): written to Key Vault by the pod, then deleted there.
    issuers_scenario(e2e.api, kubes["issuers"], e2e.ops, "shared", HELM_NS)
    e2e.figures["scenarios, s"] = round(time.monotonic() - started, 1)
    e2e.figures["operator pod memory working set, bytes"] = _pod_memory(e2e, HELM_NS)
    _metrics_scraped_in_the_pod(e2e, kubes["self"].namespace)


SCRAPE = """
import urllib.request
try:
    print(urllib.request.urlopen("http://127.0.0.1:9402/metrics", timeout=10).read().decode())
except OSError as error:  # a standby serves no metrics yet
    print("unreachable", error)
"""


def _metrics_scraped_in_the_pod(e2e: E2E, namespace: str) -> None:
    """The chart's metrics port answers inside the pod (the leader's, with leader election):
    the Self certificate is Ready in it and the process is the leader."""
    texts = [
        _exec_python(e2e.cluster, HELM_NS, pod["metadata"]["name"], SCRAPE)
        for pod in e2e.operator_pods(HELM_NS)
    ]
    text = next((t for t in texts if "kvcert_leader 1.0" in t), "")
    assert text, "no operator pod reports kvcert_leader 1"
    ready = [
        line
        for line in text.splitlines()
        if line.startswith("kvcert_certificate_ready_status{")
        and 'name="web"' in line
        and f'namespace="{namespace}"' in line
        and 'condition="True"' in line
    ]
    assert ready, "web's Ready series is missing"
    assert ready[0].endswith(" 1.0")


def _pod_memory(e2e: E2E, namespace: str) -> float:
    """The operator pod's memory working set, from the kubelet's summary API (bytes)."""
    summary = json.loads(
        e2e.cluster.kubectl(
            "get", "--raw", f"/api/v1/nodes/{e2e.cluster.node_name}/proxy/stats/summary"
        ).stdout
    )
    for pod in summary["pods"]:
        if pod["podRef"]["namespace"] == namespace:
            return float(pod["memory"]["workingSetBytes"])
    raise AssertionError(f"no pod of {namespace} in the kubelet's summary")


def _all_ready(e2e: E2E) -> list[tuple[str, str]]:
    custom = client.CustomObjectsApi(e2e.api)
    items = custom.list_cluster_custom_object(GROUP, VERSION, "certificates")["items"]
    not_ready = []
    for item in items:
        conditions = {c["type"]: c["status"] for c in item.get("status", {}).get("conditions", [])}
        if conditions.get("Ready") != "True":
            not_ready.append((item["metadata"]["namespace"], item["metadata"]["name"]))
    return not_ready


READY_AFTER_STEP_2 = {("self", "web"), ("early", "late"), ("import", "imported")}


def test_3_helm_upgrade_rolls_the_pod_and_certificates_stay_ready(e2e: E2E):
    before = {p["metadata"]["name"] for p in e2e.operator_pods(HELM_NS)}
    creates = e2e.ops.count(CREATES)
    reads = e2e.ops.total()
    e2e.cluster.helm(
        "upgrade", RELEASE, str(CHART), "-n", HELM_NS, "--reuse-values",
        "--set", "logLevel=debug", "--wait", "--timeout", "180s",
    )  # fmt: skip
    e2e.cluster.kubectl(
        "rollout", "status", "-n", HELM_NS, "deployment", "-l",
        f"app.kubernetes.io/instance={RELEASE}", "--timeout", "120s",
    )  # fmt: skip
    after = e2e.cluster.wait_for(
        lambda: (
            (names := {p["metadata"]["name"] for p in e2e.operator_pods(HELM_NS)})
            and not names & before
            and names
        ),
        120,
        "the old operator pod replaced",
    )
    assert len(after) == 1
    args = e2e.operator_pods(HELM_NS)[0]["spec"]["containers"][0]["args"]
    assert "debug" in args
    # The new operator re-derives every Certificate from Key Vault at start (reads) ...
    wait_for(lambda: e2e.ops.total() > reads, 60, "the new operator to read the vault")
    # ... and creates nothing: every Certificate stays Ready.
    never(lambda: e2e.ops.count(CREATES) != creates, 10, "a new Key Vault create")
    assert not {c for c in _all_ready(e2e) if c in READY_AFTER_STEP_2}


def _service_account_user(e2e: E2E, namespace: str) -> str:
    pod = e2e.operator_pods(namespace)[0]
    return f"system:serviceaccount:{namespace}:{pod['spec']['serviceAccountName']}"


def _granted(e2e: E2E) -> set[tuple[str, str, str]]:
    """(apiGroup, resource[/subresource], verb) of every rule the release's RBAC grants."""
    selector = f"app.kubernetes.io/instance={RELEASE}"
    granted = set()
    for kind in ("clusterroles", "roles"):
        listed = e2e.cluster.kubectl_json("get", kind, "-A", "-l", selector)
        for role in listed["items"]:
            for rule in role.get("rules", []):
                for group in rule.get("apiGroups", [""]):
                    for resource in rule.get("resources", []):
                        for verb in rule.get("verbs", []):
                            granted.add((group, resource, verb))
    return granted


def _used(events: list[dict[str, Any]], user: str) -> dict[tuple[str, str, str], str]:
    """What the operator's ServiceAccount did -> the scenario (namespace) that first did it."""
    used: dict[tuple[str, str, str], str] = {}
    for event in events:
        if event.get("user", {}).get("username") != user or "objectRef" not in event:
            continue
        ref = event["objectRef"]
        resource = ref.get("resource", "")
        if ref.get("subresource"):
            resource += "/" + ref["subresource"]
        key = (ref.get("apiGroup", ""), resource, event["verb"])
        namespace = ref.get("namespace") or ""
        if namespace in SCENARIOS:
            where = namespace
        elif ref.get("resource") == "clusterkeyvaults" and ref.get("name") == "shared":
            where = "shared"
        elif ref.get("resource") == "clustercertificateissuers":
            where = "issuers"
        elif event["verb"] in ("list", "watch"):
            where = "watch"
        else:
            where = namespace or "cluster-wide"
        used.setdefault(key, where)
    return used


def test_4_the_audit_log_justifies_every_rbac_rule_and_shows_no_denial(e2e: E2E):
    user = _service_account_user(e2e, HELM_NS)
    events = e2e.cluster.audit_events()
    mine = [e for e in events if e.get("user", {}).get("username") == user]
    assert mine, f"no audit events for {user}"
    denied = [
        (e["verb"], e.get("requestURI"))
        for e in mine
        if e.get("responseStatus", {}).get("code") == 403
    ]
    assert not denied, f"the operator was denied: {denied}"
    used = _used(events, user)
    granted = _granted(e2e)
    rows = []
    for group, resource, verb in sorted(granted):
        scenario = used.get((group, resource, verb))
        rows.append((group or "core", resource, verb, scenario or "UNUSED"))
    width = max(len(r[1]) for r in rows)
    print("\nRBAC rule (group resource verb) -> first used in scenario:")
    for group, resource, verb, scenario in rows:
        print(f"  {group:10} {resource:{width}} {verb:7} {scenario}: {SCENARIOS.get(scenario, '')}")
    unused = [r for r in rows if r[3] == "UNUSED"]
    assert not unused, f"the chart grants rules no scenario used: {unused}"
    ungranted = set(used) - granted
    assert not ungranted, f"used without a rule (should have been 403): {ungranted}"
    # Secrets are listed and watched only through a server-side label selector: the output
    # Secrets' and the labelled source Secrets', never every Secret (DESIGN §5).
    unselected = [
        e.get("requestURI", "")
        for e in mine
        if e.get("objectRef", {}).get("resource") == "secrets"
        and e["verb"] in ("list", "watch")
        and "labelSelector=" not in e.get("requestURI", "")
    ]
    assert not unselected, f"Secrets listed or watched without a label selector: {unselected}"


def test_5_helm_uninstall_removes_the_operator_and_keeps_crds_certificates_and_secrets(e2e: E2E):
    e2e.cluster.helm("uninstall", RELEASE, "-n", HELM_NS, "--wait", "--timeout", "120s")
    selector = f"app.kubernetes.io/instance={RELEASE}"
    for kind in ("deployments", "serviceaccounts", "roles", "rolebindings"):
        assert e2e.cluster.kubectl_json("get", kind, "-A", "-l", selector)["items"] == []
    for kind in ("clusterroles", "clusterrolebindings"):
        assert e2e.cluster.kubectl_json("get", kind, "-l", selector)["items"] == []
    e2e.cluster.wait_for(lambda: not e2e.operator_pods(HELM_NS), 60, "the operator pod gone")
    crds = e2e.cluster.kubectl_json("get", "crds")["items"]
    assert {c["metadata"]["name"] for c in crds} >= {
        "certificates.kvcert.io",
        "keyvaults.kvcert.io",
        "clusterkeyvaults.kvcert.io",
    }
    assert e2e.kube("self").certificate("web") is not None
    assert e2e.kube("self").secret("web-tls") is not None
    assert e2e.kube("manual").secret("api-tls") is not None


def _manifest_image() -> str:
    for doc in yaml.safe_load_all(MANIFEST.read_text()):
        if doc and doc.get("kind") == "Deployment":
            return str(doc["spec"]["template"]["spec"]["containers"][0]["image"])
    raise AssertionError("deploy/kvcert.yaml has no Deployment")


def test_6_kubectl_apply_of_deploy_manifest_installs_an_equivalent_operator(e2e: E2E):
    # The manifest names the published image; the node has the same image under that name.
    e2e.cluster.ctr("images", "tag", e2e.image, _manifest_image())
    creates = e2e.ops.count(CREATES)
    e2e.cluster.kubectl("apply", "-f", str(MANIFEST))
    e2e.cluster.kubectl(
        "rollout", "status", "-n", APPLY_NS, "deployment", "-l",
        "app.kubernetes.io/name=kvcert-operator", "--timeout", "180s",
    )  # fmt: skip
    pods = e2e.operator_pods(APPLY_NS)
    assert len(pods) == 1
    namespace = e2e.cluster.kubectl_json("get", "namespace", APPLY_NS)
    assert namespace["metadata"]["labels"].get("pod-security.kubernetes.io/enforce") == "restricted"
    kube = e2e.namespace("applied")
    e2e.keyvault("applied")
    kube.apply_certificate("fresh", certificate_spec("main", "fresh-tls"))
    _wait_ready(kube, "fresh")
    assert e2e.ops.count(CREATES) == creates + 1
    assert not {c for c in _all_ready(e2e) if c in READY_AFTER_STEP_2}
    assert not _denied(e2e, _service_account_user(e2e, APPLY_NS))


def _denied(e2e: E2E, user: str) -> list[str]:
    """Request URIs the API server refused (403) to `user`, from the audit log."""
    return [
        e["requestURI"]
        for e in e2e.cluster.audit_events()
        if e.get("user", {}).get("username") == user
        and e.get("responseStatus", {}).get("code") == 403
    ]


def _cluster_vault(e2e: E2E, name: str, secret_namespace: str) -> None:
    """A ClusterKeyVault for the local vault, its token Secret in `secret_namespace`."""
    client.CoreV1Api(e2e.api).create_namespaced_secret(
        secret_namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name=f"{name}-token"),
            string_data={"token": e2e.vault.token},
        ),
    )
    client.CustomObjectsApi(e2e.api).create_cluster_custom_object(
        GROUP, VERSION, "clusterkeyvaults",
        {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ClusterKeyVault",
         "metadata": {"name": name},
         "spec": {"url": e2e.vault.url, "caBundle": e2e.vault.ca_path.read_text(),
                  "auth": {"token": {"secretRef": {"name": f"{name}-token", "key": "token"}}}}},
    )  # fmt: skip


def test_7_an_operator_watching_one_namespace_works_with_the_namespaced_rbac(e2e: E2E):
    """watchNamespaces: Roles in the watched namespace and the operator's own, a ClusterRole for
    ClusterKeyVaults only; Certificates elsewhere are left alone."""
    e2e.cluster.kubectl(
        "delete", "deployment", "-n", APPLY_NS, "-l", "app.kubernetes.io/name=kvcert-operator",
        "--wait", "--timeout", "60s",
    )  # fmt: skip
    e2e.cluster.wait_for(lambda: not e2e.operator_pods(APPLY_NS), 60, "the applied operator gone")
    e2e.namespace("scoped-op", RESTRICTED)
    watched, unwatched = e2e.namespace("scoped"), e2e.namespace("unwatched")
    e2e.cluster.helm(
        "install", "scoped", str(CHART), "-n", "scoped-op", *e2e.helm_values(),
        "--set", "watchNamespaces={scoped}", "--wait", "--timeout", "180s",
    )  # fmt: skip
    _cluster_vault(e2e, "scoped-shared", "scoped-op")
    _vault_ready(e2e, None, "scoped-shared")
    e2e.keyvault("scoped")
    watched.apply_certificate("own", certificate_spec("main", "own-tls"))
    # (not "shared": that Key Vault name is soft-deleted by step 2; issue #14 reports that case)
    via_cluster = certificate_spec("scoped-shared", "via-cluster-tls", cn="via.example.com")
    via_cluster["vaultRef"]["kind"] = "ClusterKeyVault"
    watched.apply_certificate("via-cluster", via_cluster)
    e2e.keyvault("unwatched")
    unwatched.apply_certificate("ignored", certificate_spec("main", "ignored-tls"))
    _wait_ready(watched, "own")
    _wait_ready(watched, "via-cluster")
    assert unwatched.certificate("ignored").get("status") is None  # type: ignore[union-attr]
    assert unwatched.secret("ignored-tls") is None
    # A cluster-scoped object's Events live in "default" (the API server's rule).
    events = client.CoreV1Api(e2e.api).list_namespaced_event(
        "default", field_selector="involvedObject.name=scoped-shared"
    )
    assert "Reachable" in {event.reason for event in events.items}
    assert not _denied(e2e, _service_account_user(e2e, "scoped-op"))
