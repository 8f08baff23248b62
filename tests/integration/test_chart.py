"""The Helm chart helm/kvcert-operator and deploy/kvcert.yaml, against the real API server.

`helm lint --strict`; `helm template` over a matrix of values, each rendering applied with
`kubectl apply --dry-run=server` (the API server's own validation and admission, RBAC escalation
checks included) and then inspected: least-privilege RBAC in both modes, the restricted Pod
Security fields, workload identity, the image reference. The values schema is proven by real
`helm install`s that must fail, naming the field, and leave nothing behind. deploy/kvcert.yaml
must be what hack/manifests.sh renders now.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from kvcert.devcluster.binaries import K8S_VERSION, default_bin_dir
from tests.conftest import Cluster

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "kvcert-operator"
RELEASE = "kvcert"
DIGEST = "sha256:" + "ab" * 32

# Exactly the calls the operator makes (README, DESIGN §4): (apiGroup, resource, verb).
NAMESPACED_GRANTS = {
    *(("kvcert.io", "certificates", verb) for verb in ("get", "list", "watch", "patch")),
    ("kvcert.io", "certificates/status", "patch"),
    *(("kvcert.io", "keyvaults", verb) for verb in ("get", "list", "watch")),
    ("kvcert.io", "keyvaults/status", "patch"),
    *(("kvcert.io", "certificateissuers", verb) for verb in ("get", "list", "watch", "patch")),
    ("kvcert.io", "certificateissuers/status", "patch"),
    *(("", "secrets", verb) for verb in ("get", "list", "watch", "create", "update")),
    ("", "configmaps", "create"),
    ("", "configmaps", "update"),
    ("", "events", "create"),
}
CLUSTER_GRANTS = {
    *(("kvcert.io", "clusterkeyvaults", verb) for verb in ("get", "list", "watch")),
    ("kvcert.io", "clusterkeyvaults/status", "patch"),
    *(
        ("kvcert.io", "clustercertificateissuers", verb)
        for verb in ("get", "list", "watch", "patch")
    ),
    ("kvcert.io", "clustercertificateissuers/status", "patch"),
}
CREDENTIAL_GRANTS = {("", "secrets", "get")}
CLUSTER_EVENT_GRANTS = {("", "events", "create")}
# Leader election (kvcert.runtime.leader): the release's Lease, in the release namespace.
LEASE_GRANTS = {("coordination.k8s.io", "leases", verb) for verb in ("get", "update", "create")}
LEASE_ROLE = "-leader-election"


@dataclass(frozen=True)
class Tools:
    helm: Path
    kubectl: Path
    kubeconfig: Path
    env: dict[str, str]

    def helm_run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return _run([str(self.helm), *args], env=self.env, check=check)

    def kubectl_run(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        command = [str(self.kubectl), f"--kubeconfig={self.kubeconfig}", *args]
        return _run(command, env=self.env, stdin=stdin, check=check)


def _run(
    command: Sequence[str], *, env: dict[str, str], stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        list(command), input=stdin, capture_output=True, text=True, env=env, timeout=60, check=False
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"{' '.join(command)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"
        )
    return result


@pytest.fixture(scope="module")
def tools(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Tools:
    bin_dir = default_bin_dir()
    helm, kubectl = bin_dir / "helm", bin_dir / "kubectl"
    if not os.access(helm, os.X_OK):
        pytest.fail(f"helm is missing at {helm}: build it with `bash hack/control-plane.sh --node`")
    home = tmp_path_factory.mktemp("helm-home")
    env = {
        **os.environ,
        # Helm's own cache, config and data stay out of the user's home.
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
        "HELM": str(helm),
    }
    found = Tools(helm=helm, kubectl=kubectl, kubeconfig=cluster.kubeconfig, env=env)
    # The CRDs for real (the chart's copy, as `helm install` would): templates never render CRs,
    # but a cluster with the CRDs is the one the chart is for.
    found.kubectl_run("apply", "--server-side", "--force-conflicts", "-f", str(CHART / "crds"))
    return found


@pytest.fixture
def namespaces(api_client: client.ApiClient) -> Iterator[list[str]]:
    """The test's namespaces (made by `_create_namespace`), deleted afterwards."""
    created: list[str] = []
    yield created
    core = client.CoreV1Api(api_client)
    for name in created:
        core.delete_namespace(name)


# Pod Security admission checks a Deployment's pod template only in warn and audit modes (enforce
# applies to pods): every namespace warns at the restricted level, and no warning may appear.
RESTRICTED_WARN = {"pod-security.kubernetes.io/warn": "restricted"}


def _create_namespace(api_client: client.ApiClient, created: list[str], suffix: str) -> str:
    name = f"chart-{uuid.uuid4().hex[:8]}-{suffix}"
    core = client.CoreV1Api(api_client)
    meta = client.V1ObjectMeta(name=name, labels=RESTRICTED_WARN)
    core.create_namespace(client.V1Namespace(metadata=meta))
    created.append(name)
    return name


@dataclass
class Rendering:
    """The objects of one `helm template`, with lookups by kind."""

    text: str
    objects: list[dict[str, Any]] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [obj for obj in self.objects if obj["kind"] == kind]

    def one(self, kind: str) -> dict[str, Any]:
        found = self.of_kind(kind)
        assert len(found) == 1, f"expected one {kind}, got {len(found)}"
        return found[0]

    @property
    def pod(self) -> dict[str, Any]:
        spec: dict[str, Any] = self.one("Deployment")["spec"]["template"]
        return spec

    @property
    def container(self) -> dict[str, Any]:
        containers: list[dict[str, Any]] = self.pod["spec"]["containers"]
        assert len(containers) == 1
        return containers[0]


def render(tools: Tools, namespace: str, *values: str) -> Rendering:
    args = [arg for value in values for arg in ("--set", value)]
    text = tools.helm_run(
        "template",
        RELEASE,
        str(CHART),
        "--namespace",
        namespace,
        "--kube-version",
        K8S_VERSION,
        *args,
    ).stdout
    objects = [obj for obj in yaml.safe_load_all(text) if obj]
    return Rendering(text=text, objects=objects)


def grants(rules: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def accepted_by_api_server(tools: Tools, rendering: Rendering) -> str:
    """Apply with --dry-run=server: every object accepted, no Pod Security warning; the
    warnings (stderr) are returned."""
    result = tools.kubectl_run("apply", "--dry-run=server", "-f", "-", stdin=rendering.text)
    applied = [line for line in result.stdout.splitlines() if "(server dry run)" in line]
    assert len(applied) == len(rendering.objects), result.stdout
    return result.stderr


def restricted(tools: Tools, rendering: Rendering) -> None:
    warnings = accepted_by_api_server(tools, rendering)
    assert "PodSecurity" not in warnings, warnings


def assert_common(rendering: Rendering, namespace: str) -> None:
    """What every rendering keeps: labels, restricted Pod Security, probes, no wildcards."""
    for obj in rendering.objects:
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "kvcert-operator"
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/version"] == "0.1.0"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["helm.sh/chart"] == "kvcert-operator-0.1.0"
        if obj["kind"] in {"Role", "ClusterRole"}:
            for rule in obj["rules"]:
                for key in ("apiGroups", "resources", "verbs"):
                    assert "*" not in rule[key], f"{obj['kind']} {obj['metadata']['name']}: {rule}"
    # Each rule carries a comment saying which operator call needs it.
    lines = [line.strip() for line in rendering.text.splitlines() if line.strip()]
    for index, line in enumerate(lines):
        if line.startswith("- apiGroups:"):
            assert lines[index - 1].startswith("#"), f"RBAC rule without its reason: {line}"

    deployment = rendering.one("Deployment")
    assert deployment["metadata"]["namespace"] == namespace
    # Leader election by default: the new pod stands by until the old leader's Lease expired.
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    pod = rendering.pod["spec"]
    assert pod["automountServiceAccountToken"] is True
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "runAsGroup": 65532,
        "fsGroup": 65532,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    container = rendering.container
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {}} in pod["volumes"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "healthz"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "readyz"}
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"healthz": 8080, "readyz": 8081, "metrics": 9402}
    args = container["args"]
    assert args[:2] == ["operator", "run"]
    for flag, value in (
        ("--liveness", "http://0.0.0.0:8080/healthz"),
        ("--readiness", "http://0.0.0.0:8081/readyz"),
        ("--metrics", "http://0.0.0.0:9402/metrics"),
        ("--log-level", "info"),
    ):
        assert args[args.index(flag) + 1] == value
    assert {
        "name": "POD_NAMESPACE",
        "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}},
    } in container["env"]
    assert_leader_election(rendering, namespace)
    assert container["resources"] == {
        "requests": {"cpu": "50m", "memory": "128Mi"},
        "limits": {"memory": "256Mi"},
    }
    account = rendering.one("ServiceAccount")
    assert account["automountServiceAccountToken"] is False
    assert pod["serviceAccountName"] == account["metadata"]["name"]
    for binding in [*rendering.of_kind("RoleBinding"), *rendering.of_kind("ClusterRoleBinding")]:
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": account["metadata"]["name"], "namespace": namespace}
        ]


def assert_leader_election(rendering: Rendering, namespace: str) -> None:
    """The default leader election: flags, the pod's name, and a Role on the release's Lease."""
    args, lease = rendering.container["args"], f"{RELEASE}-kvcert-operator"
    start = args.index("--leader-elect")
    assert args[start : start + 11] == [
        "--leader-elect",
        *("--leader-election-namespace", namespace, "--lease-name", lease),
        *("--lease-duration", "15", "--renew-deadline", "10", "--retry-period", "2"),
    ]
    assert {
        "name": "POD_NAME",
        "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}},
    } in rendering.container["env"]
    roles = [r for r in rendering.of_kind("Role") if r["metadata"]["name"].endswith(LEASE_ROLE)]
    if not roles:  # rbac.create=false
        return
    (role,) = roles
    assert role["metadata"]["namespace"] == namespace
    assert grants(role["rules"]) == LEASE_GRANTS
    # get and update only on the release's own Lease; create cannot be limited by name.
    by_verbs = {tuple(rule["verbs"]): rule.get("resourceNames") for rule in role["rules"]}
    assert by_verbs == {("get", "update"): [lease], ("create",): None}
    (binding,) = [
        b for b in rendering.of_kind("RoleBinding") if b["metadata"]["name"].endswith(LEASE_ROLE)
    ]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]


def test_helm_lint_strict(tools: Tools) -> None:
    for values in ([], ["--set", "watchNamespaces={a,b}", "--set", "workloadIdentity.clientId=x"]):
        result = tools.helm_run(
            "lint", "--strict", str(CHART), "--kube-version", K8S_VERSION, *values
        )
        assert "0 chart(s) failed" in result.stdout


def test_defaults_cluster_wide(
    tools: Tools, api_client: client.ApiClient, namespaces: list[str]
) -> None:
    namespace = _create_namespace(api_client, namespaces, "rel")
    rendering = render(tools, namespace)
    restricted(tools, rendering)
    assert_common(rendering, namespace)

    kinds = sorted(obj["kind"] for obj in rendering.objects)
    assert kinds == [
        *("ClusterRole", "ClusterRoleBinding", "Deployment", "Role", "RoleBinding"),
        *("Service", "ServiceAccount"),  # Service: metrics; no ServiceMonitor without its API
    ]
    assert grants(rendering.one("ClusterRole")["rules"]) == NAMESPACED_GRANTS | CLUSTER_GRANTS
    assert rendering.one("Deployment")["spec"]["replicas"] == 1
    assert rendering.container["image"] == "ghcr.io/kvcert/kvcert:0.1.0"
    assert rendering.container["imagePullPolicy"] == "IfNotPresent"
    assert "--namespace" not in rendering.container["args"]
    # No workload identity unless asked for.
    assert "annotations" not in rendering.one("ServiceAccount")["metadata"]
    assert "azure.workload.identity/use" not in rendering.pod["metadata"]["labels"]


def test_watch_namespaces(
    tools: Tools, api_client: client.ApiClient, namespaces: list[str]
) -> None:
    namespace = _create_namespace(api_client, namespaces, "rel")
    a = _create_namespace(api_client, namespaces, "a")
    b = _create_namespace(api_client, namespaces, "b")
    rendering = render(tools, namespace, f"watchNamespaces={{{a},{b}}}")
    restricted(tools, rendering)
    assert_common(rendering, namespace)

    args = rendering.container["args"]
    start = args.index("--namespace")
    assert args[start : start + 4] == ["--namespace", a, "--namespace", b]
    assert args.count("--namespace") == 2

    roles = {
        role["metadata"]["namespace"]: role
        for role in rendering.of_kind("Role")
        if not role["metadata"]["name"].endswith(LEASE_ROLE)  # assert_common checked it
    }
    assert set(roles) == {a, b, namespace, "default"}
    assert grants(roles[a]["rules"]) == NAMESPACED_GRANTS
    assert grants(roles[b]["rules"]) == NAMESPACED_GRANTS
    # ClusterKeyVault credentials: read-only, in the operator's own namespace.
    assert grants(roles[namespace]["rules"]) == CREDENTIAL_GRANTS
    # ClusterKeyVault Events: the API server keeps a cluster-scoped object's Events in default.
    assert grants(roles["default"]["rules"]) == CLUSTER_EVENT_GRANTS
    bindings = {
        binding["metadata"]["namespace"]: binding["roleRef"]["name"]
        for binding in rendering.of_kind("RoleBinding")
        if not binding["metadata"]["name"].endswith(LEASE_ROLE)
    }
    assert bindings == {ns: roles[ns]["metadata"]["name"] for ns in (a, b, namespace, "default")}

    # Cluster-wide: only the cluster-scoped ClusterKeyVaults, never Secrets.
    cluster_role = rendering.one("ClusterRole")
    assert grants(cluster_role["rules"]) == CLUSTER_GRANTS
    assert (
        rendering.one("ClusterRoleBinding")["roleRef"]["name"] == (cluster_role["metadata"]["name"])
    )


def test_workload_identity(
    tools: Tools, api_client: client.ApiClient, namespaces: list[str]
) -> None:
    namespace = _create_namespace(api_client, namespaces, "rel")
    client_id, tenant_id = str(uuid.uuid4()), str(uuid.uuid4())
    rendering = render(
        tools,
        namespace,
        f"workloadIdentity.clientId={client_id}",
        f"workloadIdentity.tenantId={tenant_id}",
        "serviceAccount.annotations.team=platform",
    )
    restricted(tools, rendering)
    assert_common(rendering, namespace)

    assert rendering.one("ServiceAccount")["metadata"]["annotations"] == {
        "azure.workload.identity/client-id": client_id,
        "azure.workload.identity/tenant-id": tenant_id,
        "team": "platform",
    }
    assert rendering.pod["metadata"]["labels"]["azure.workload.identity/use"] == "true"


def test_replicas_and_pod_settings(
    tools: Tools, api_client: client.ApiClient, namespaces: list[str]
) -> None:
    namespace = _create_namespace(api_client, namespaces, "rel")
    rendering = render(
        tools,
        namespace,
        "replicaCount=2",
        "logLevel=debug",
        "extraArgs={--verbose}",
        "extraEnv[0].name=HTTPS_PROXY",
        "extraEnv[0].value=http://proxy:3128",
        "podLabels.team=platform",
        "podAnnotations.note=hello",
        "priorityClassName=system-cluster-critical",
        "nodeSelector.kubernetes\\.io/os=linux",
        "imagePullSecrets[0].name=regcred",
        "probes.readiness.periodSeconds=7",
    )
    restricted(tools, rendering)

    assert rendering.one("Deployment")["spec"]["replicas"] == 2
    container, pod = rendering.container, rendering.pod
    assert container["args"][-5:] == ["--log-level", "debug", "--log-format", "text", "--verbose"]
    assert {"name": "HTTPS_PROXY", "value": "http://proxy:3128"} in container["env"]
    assert container["readinessProbe"]["periodSeconds"] == 7
    assert pod["metadata"]["labels"]["team"] == "platform"
    assert pod["metadata"]["annotations"] == {"note": "hello"}
    assert pod["spec"]["priorityClassName"] == "system-cluster-critical"
    assert pod["spec"]["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert pod["spec"]["imagePullSecrets"] == [{"name": "regcred"}]


def test_existing_service_account_and_no_rbac(
    tools: Tools, api_client: client.ApiClient, namespaces: list[str]
) -> None:
    namespace = _create_namespace(api_client, namespaces, "rel")
    rendering = render(tools, namespace, "serviceAccount.create=false", "serviceAccount.name=mine")
    restricted(tools, rendering)
    assert not rendering.of_kind("ServiceAccount")
    assert rendering.pod["spec"]["serviceAccountName"] == "mine"
    assert rendering.one("ClusterRoleBinding")["subjects"][0]["name"] == "mine"

    # The Pod Security check is live: loosening the securityContext is reported.
    loose = render(tools, namespace, "securityContext.allowPrivilegeEscalation=true")
    warnings = accepted_by_api_server(tools, loose)
    assert 'violate PodSecurity "restricted:latest"' in warnings, warnings
    assert "allowPrivilegeEscalation" in warnings

    bare = render(tools, namespace, "rbac.create=false")
    assert sorted(obj["kind"] for obj in bare.objects) == [
        *("Deployment", "Service", "ServiceAccount")  # Service: metrics
    ]

    unnamed = tools.helm_run(
        *("template", RELEASE, str(CHART), "--kube-version", K8S_VERSION),
        *("--set", "serviceAccount.create=false"),
        check=False,
    )
    assert unnamed.returncode != 0
    assert "serviceAccount.name is required" in unnamed.stderr


def test_image_digest_wins_over_tag(
    tools: Tools, api_client: client.ApiClient, namespaces: list[str]
) -> None:
    namespace = _create_namespace(api_client, namespaces, "rel")
    rendering = render(
        tools,
        namespace,
        "image.repository=localhost/kvcert",
        "image.tag=9.9.9",
        f"image.digest={DIGEST}",
        "image.pullPolicy=Never",
    )
    restricted(tools, rendering)
    assert rendering.container["image"] == f"localhost/kvcert@{DIGEST}"
    assert rendering.container["imagePullPolicy"] == "Never"

    tagged = render(tools, namespace, "image.repository=localhost/kvcert", "image.tag=abc123")
    assert tagged.container["image"] == "localhost/kvcert:abc123"


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("replicaCount=two", "replicaCount"),
        ("image.tagg=x", "tagg"),
        ("bogus=1", "bogus"),
        ("logLevel=verbose", "logLevel"),
        ("image.digest=latest", "digest"),
        ("probes.liveness.periodSeconds=soon", "periodSeconds"),
        ("workloadIdentity.tenantId=abc", "clientId"),
        ("leaderElection.leaseDuration=soon", "leaseDuration"),
        ("leaderElection.elect=true", "elect"),
    ],
)
def test_schema_rejects_bad_values_at_install(
    tools: Tools, api_client: client.ApiClient, namespaces: list[str], value: str, named: str
) -> None:
    namespace = _create_namespace(api_client, namespaces, "rel")
    release = f"r{uuid.uuid4().hex[:8]}"
    install = ("install", release, str(CHART), "--namespace", namespace)
    kubeconfig = ("--kubeconfig", str(tools.kubeconfig))

    result = tools.helm_run(*install, *kubeconfig, "--set", value, check=False)
    assert result.returncode != 0, result.stdout
    assert "schema" in result.stderr, result.stderr
    assert named in result.stderr, result.stderr

    # Nothing is installed: no release, no objects.
    listed = tools.helm_run("list", "--all", "-q", "--namespace", namespace, *kubeconfig)
    assert listed.stdout.strip() == ""
    left = tools.kubectl_run(
        "get",
        "deployments,serviceaccounts,secrets,roles,rolebindings",
        "--namespace",
        namespace,
        "-l",
        f"app.kubernetes.io/instance={release}",
        "-o",
        "name",
    )
    assert left.stdout.strip() == ""
    release_records = tools.kubectl_run(
        "get", "secrets", "--namespace", namespace, "-l", f"owner=helm,name={release}", "-o", "name"
    )
    assert release_records.stdout.strip() == ""
    cluster_role = tools.kubectl_run(
        "get", "clusterrole", f"{namespace}-{release}-kvcert-operator", "-o", "name", check=False
    )
    assert cluster_role.returncode != 0
    assert "NotFound" in cluster_role.stderr

    # The same install with good values passes the schema (server-side dry run).
    good = tools.helm_run(*install, *kubeconfig, "--dry-run=server", check=False)
    assert good.returncode == 0, good.stderr


def test_deploy_manifest_is_fresh(tools: Tools) -> None:
    rendered = _run(["bash", str(ROOT / "hack" / "manifests.sh")], env=tools.env).stdout
    deploy = ROOT / "deploy" / "kvcert.yaml"
    on_disk = deploy.read_text(encoding="utf-8") if deploy.exists() else ""
    assert on_disk == rendered, "deploy/kvcert.yaml is stale: run `make manifests`"

    assert on_disk.startswith("# Generated by `make manifests`")
    objects = [obj for obj in yaml.safe_load_all(on_disk) if obj]
    kinds = [obj["kind"] for obj in objects]
    count = len(list((ROOT / "crds").glob("*.yaml")))
    assert kinds[: count + 1] == ["CustomResourceDefinition"] * count + ["Namespace"]
    crds = {obj["metadata"]["name"]: obj for obj in objects[:count]}
    for path in sorted((ROOT / "crds").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert crds[crd["metadata"]["name"]] == crd
    namespace = objects[count]
    assert namespace["metadata"] == {
        "name": "kvcert-system",
        "labels": {"pod-security.kubernetes.io/enforce": "restricted"},
    }
    for obj in objects[count + 1 :]:
        if obj["kind"] not in {"ClusterRole", "ClusterRoleBinding"}:
            assert obj["metadata"]["namespace"] == "kvcert-system"
    assert set(kinds[count + 1 :]) == {
        *("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Deployment"),
        *("Role", "RoleBinding"),  # leader election's Lease
        "Service",  # metrics
    }


GITOPS = ROOT / "deploy"


def _gitops_sources() -> list[tuple[str, str, dict[str, Any], str]]:
    """(file, chart path, values, release namespace) of the Argo CD and Flux examples."""
    argocd = yaml.safe_load((GITOPS / "argocd" / "application.yaml").read_text())
    source = argocd["spec"]["source"]
    flux = [d for d in yaml.safe_load_all((GITOPS / "flux" / "kvcert.yaml").read_text()) if d]
    release = next(d for d in flux if d["kind"] == "HelmRelease")
    return [
        (
            "argocd/application.yaml",
            source["path"],
            source["helm"]["valuesObject"],
            argocd["spec"]["destination"]["namespace"],
        ),
        (
            "flux/kvcert.yaml",
            release["spec"]["chart"]["spec"]["chart"],
            release["spec"]["values"],
            release["metadata"]["namespace"],
        ),
    ]


@pytest.mark.parametrize(
    ("name", "chart", "values", "namespace"), _gitops_sources(), ids=lambda v: str(v)[:24]
)
def test_gitops_examples_name_this_chart_with_values_its_schema_accepts(
    tools: Tools,
    api_client: client.ApiClient,
    namespaces: list[str],
    tmp_path: Path,
    name: str,
    chart: str,
    values: dict[str, Any],
    namespace: str,
) -> None:
    """deploy/argocd and deploy/flux install this chart: the path exists, the values pass
    values.schema.json, and the rendering is accepted by the API server."""
    assert (ROOT / chart).resolve() == CHART.resolve(), name
    assert namespace == "kvcert-system", name
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    target = _create_namespace(api_client, namespaces, "gitops")
    text = tools.helm_run(
        "template", RELEASE, str(CHART), "--namespace", target, "-f", str(values_file)
    ).stdout
    rendering = Rendering(text=text, objects=[o for o in yaml.safe_load_all(text) if o])
    restricted(tools, rendering)


def test_names_yaml_would_misread_are_quoted(
    tools: Tools, api_client: client.ApiClient, namespaces: list[str]
) -> None:
    """Release and namespace names such as `on`, `off`, `123`, `0700` stay strings."""
    release_ns = _create_namespace(api_client, namespaces, "rel")
    client.CoreV1Api(api_client).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name="0700"))
    )
    namespaces.append("0700")
    for release in ("on", "123"):
        text = tools.helm_run(
            "template", release, str(CHART), "--namespace", release_ns,
            "--set", "watchNamespaces={0700}",
        ).stdout  # fmt: skip
        rendering = Rendering(text=text, objects=[o for o in yaml.safe_load_all(text) if o])
        for obj in rendering.objects:
            assert obj["metadata"]["labels"]["app.kubernetes.io/instance"] == release
            assert isinstance(obj["metadata"].get("namespace", ""), str)
        assert any(o["metadata"].get("namespace") == "0700" for o in rendering.of_kind("Role"))
        accepted_by_api_server(tools, rendering)


def test_two_releases_of_one_name_in_two_namespaces_do_not_collide(
    tools: Tools, api_client: client.ApiClient, namespaces: list[str]
) -> None:
    first = render(tools, _create_namespace(api_client, namespaces, "one"))
    second = render(tools, _create_namespace(api_client, namespaces, "two"))
    for kind in ("ClusterRole", "ClusterRoleBinding"):
        assert first.one(kind)["metadata"]["name"] != second.one(kind)["metadata"]["name"]


def test_notes_follow_the_install_mode(
    tools: Tools, api_client: client.ApiClient, namespaces: list[str]
) -> None:
    """NOTES.txt: examples in the first watched namespace; more than one replica is announced
    with the Lease when leader election is on, and warned about when it is off."""
    namespace = _create_namespace(api_client, namespaces, "rel")
    team = _create_namespace(api_client, namespaces, "team")
    notes = tools.helm_run(
        "install", "notes", str(CHART), "--namespace", namespace, "--dry-run=server",
        "--kubeconfig", str(tools.kubeconfig),
        "--set", f"watchNamespaces={{{team}}}", "--set", "replicaCount=2",
        "--set", "leaderElection.enabled=false",
    ).stdout.split("NOTES:", 1)[1]  # fmt: skip
    assert f"kubectl apply -n {team} -f keyvault.yaml" in notes
    assert "my-team" not in notes
    assert "WARNING: replicaCount is 2 and leader election is disabled" in notes
    elected = tools.helm_run(
        "install", "notes", str(CHART), "--namespace", namespace, "--dry-run=server",
        "--kubeconfig", str(tools.kubeconfig), "--set", "replicaCount=2",
    ).stdout.split("NOTES:", 1)[1]  # fmt: skip
    assert "WARNING" not in elected
    assert f"one reconciles (it holds the Lease {namespace}/notes-kvcert-operator)" in elected
    default = tools.helm_run(
        "install", "notes", str(CHART), "--namespace", namespace, "--dry-run=server",
        "--kubeconfig", str(tools.kubeconfig),
    ).stdout.split("NOTES:", 1)[1]  # fmt: skip
    assert "kubectl apply -n my-team -f keyvault.yaml" in default
    assert "WARNING" not in default


def test_leader_election_two_replicas_and_its_absence(
    tools: Tools, api_client: client.ApiClient, namespaces: list[str]
) -> None:
    """Two replicas with leader election: a PodDisruptionBudget keeps one; the timings are
    passed on. Without leader election: Recreate, no Lease, no Role for it. Unsafe timings fail
    the rendering, naming the values."""
    namespace = _create_namespace(api_client, namespaces, "rel")
    two = render(
        tools, namespace, "replicaCount=2",
        "leaderElection.leaseDuration=30", "leaderElection.renewDeadline=20",
        "leaderElection.retryPeriod=4",
    )  # fmt: skip
    restricted(tools, two)
    budget = two.one("PodDisruptionBudget")
    assert budget["metadata"]["namespace"] == namespace
    assert budget["spec"] == {
        "minAvailable": 1,
        "selector": {"matchLabels": two.one("Deployment")["spec"]["selector"]["matchLabels"]},
    }
    args = two.container["args"]
    for flag, value in (("--lease-duration", "30"), ("--renew-deadline", "20")):
        assert args[args.index(flag) + 1] == value
    assert args[args.index("--retry-period") + 1] == "4"

    alone = render(tools, namespace, "leaderElection.enabled=false")
    restricted(tools, alone)
    assert alone.one("Deployment")["spec"]["strategy"] == {"type": "Recreate"}
    assert "--leader-elect" not in alone.container["args"]
    assert "POD_NAME" not in {env["name"] for env in alone.container["env"]}
    assert not alone.of_kind("Role")
    assert not alone.of_kind("PodDisruptionBudget")
    chosen = render(tools, namespace, "updateStrategy.type=Recreate")
    assert chosen.one("Deployment")["spec"]["strategy"] == {"type": "Recreate"}

    for values, named in (
        (("leaderElection.renewDeadline=15",), "renewDeadline (15) must be less than"),
        (("leaderElection.retryPeriod=9",), "retryPeriod (9) times 1.2"),
    ):
        args = [arg for value in values for arg in ("--set", value)]
        failed = tools.helm_run("template", RELEASE, str(CHART), *args, check=False)
        assert failed.returncode != 0
        assert named in failed.stderr, failed.stderr


MONITORING_APIS = (
    "monitoring.coreos.com/v1/ServiceMonitor",
    "monitoring.coreos.com/v1/PrometheusRule",
)


def render_with_apis(tools: Tools, namespace: str, apis: Sequence[str], *values: str) -> Rendering:
    """`helm template` as against a cluster that serves `apis` (e.g. prometheus-operator's)."""
    args = [arg for api in apis for arg in ("--api-versions", api)]
    args += [arg for value in values for arg in ("--set", value)]
    text = tools.helm_run(
        "template", RELEASE, str(CHART), "--namespace", namespace,
        "--kube-version", K8S_VERSION, *args,
    ).stdout  # fmt: skip
    return Rendering(text=text, objects=[obj for obj in yaml.safe_load_all(text) if obj])


def test_metrics_service_monitor_rule_and_dashboard(
    tools: Tools, api_client: client.ApiClient, namespaces: list[str]
) -> None:
    """Metrics on by default: a Service on the container's `metrics` port. The ServiceMonitor
    and PrometheusRule only where their APIs are served; the dashboard only when asked for.
    Off: no port, no flag, no Service, no ServiceMonitor even where the API is served."""
    namespace = _create_namespace(api_client, namespaces, "rel")
    with_apis = render_with_apis(
        tools, namespace, MONITORING_APIS, "metrics.dashboard.enabled=true",
        "metrics.serviceMonitor.labels.release=prom", "metrics.prometheusRule.labels.release=prom",
    )  # fmt: skip
    assert_common(with_apis, namespace)
    service = with_apis.one("Service")
    assert service["metadata"]["namespace"] == namespace
    assert service["metadata"]["labels"]["app.kubernetes.io/component"] == "metrics"
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 9402, "targetPort": "metrics", "protocol": "TCP"}
    ]
    pod_labels = with_apis.pod["metadata"]["labels"]
    assert all(pod_labels[k] == v for k, v in service["spec"]["selector"].items())
    monitor = with_apis.one("ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prom"
    selected = monitor["spec"]["selector"]["matchLabels"]
    assert all(service["metadata"]["labels"][k] == v for k, v in selected.items())
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [namespace]}
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    rule = with_apis.one("PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "prom"
    alerts = {r["alert"] for group in rule["spec"]["groups"] for r in group["rules"]}
    assert "KvcertNoLeader" in alerts  # the rules themselves: tests/integration/test_alerts.py
    dashboard = with_apis.one("ConfigMap")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["kvcert.json"])["uid"] == "kvcert"
    # The API server accepts what this cluster can hold (no prometheus-operator CRDs here).
    plain = [o for o in with_apis.objects if o["kind"] not in {"ServiceMonitor", "PrometheusRule"}]
    restricted(tools, Rendering(text=yaml.safe_dump_all(plain), objects=plain))

    without_apis = render(tools, namespace)
    assert not without_apis.of_kind("ServiceMonitor")
    assert not without_apis.of_kind("PrometheusRule")
    assert not without_apis.of_kind("ConfigMap")
    assert without_apis.one("Service")

    off = render_with_apis(tools, namespace, MONITORING_APIS, "metrics.enabled=false")
    restricted(tools, off)
    assert not off.of_kind("Service")
    assert not off.of_kind("ServiceMonitor")
    assert not off.of_kind("PrometheusRule")
    assert "--metrics" not in off.container["args"]
    assert "metrics" not in {port["name"] for port in off.container["ports"]}
    port = render(tools, namespace, "metrics.port=9500")
    assert port.container["args"][port.container["args"].index("--metrics") + 1] == (
        "http://0.0.0.0:9500/metrics"
    )
    assert port.one("Service")["spec"]["ports"][0]["port"] == 9500
