"""The lab of the Kubernetes fault tests (test_kube_faults.py, issue #18 §3): faults would
disturb every other test, so the module starts its own world.

- etcd + kube-apiserver (tests.support.controlplane_faults.FaultyControlPlane: the API server
  can be stopped and started again on the same etcd, etcd compacted behind its back) with an
  audit log of the operator's requests only (Metadata level);
- one LocalVault (documented profile) with a DigiCert-provider issuer `digicert` whose
  operations stay in progress until the management API completes them;
- one operator with a clock file, running as the chart's ServiceAccount under the chart's
  ClusterRole (deploy/kvcert.yaml), except that its Secret writes (create, update) are granted
  per namespace by a RoleBinding: a tenant opened with `grant=False` has none.

Each test opens a `Tenant`: a namespace with a KeyVault `main`; Certificates and namespace are
deleted afterwards. Key Vault names are global to the vault: tests use distinct names.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from kvcert.devcluster import binaries
from tests.integration.operator.harness import Kube, VaultOps, install_crds, wait_for
from tests.support.controlplane_faults import (
    FaultyControlPlane,
    service_account_token,
    token_kubeconfig,
)
from tests.support.operator_process import OperatorProcess
from tests.support.vault import LocalVault

REPO = Path(__file__).resolve().parents[3]
SA_NAMESPACE, SA_NAME = "kvcert-system", "kvcert-kvcert-operator"
OPERATOR_USER = f"system:serviceaccount:{SA_NAMESPACE}:{SA_NAME}"
SECRET_WRITER = "kvcert-faults-output-secrets"
"""The ClusterRole holding the chart's Secret writes, bound per tenant namespace."""
SECRET_WRITES = ("create", "update")
ISSUER = "digicert"
READY = 60.0
"""Seconds for a Certificate to become Ready once nothing stands in its way."""
NUDGE = 11.0
"""Seconds the operator's clock is moved on to hurry it: past a create's Retry-After (10 s),
so that the operator's next poll (or backoff) is now rather than in seconds of real time."""
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [{"level": "Metadata", "users": [OPERATOR_USER]}, {"level": "None"}],
}


def size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _operator_rbac(api: client.ApiClient) -> None:
    """The chart's ClusterRole and ClusterRoleBinding, its Secret writes moved to
    SECRET_WRITER (bound per namespace by `grant_secret_writes`)."""
    rbac = client.RbacAuthorizationV1Api(api)
    manifest = (REPO / "deploy" / "kvcert.yaml").read_text()
    documents = [d for d in yaml.safe_load_all(manifest) if d]
    (role,) = [d for d in documents if d["kind"] == "ClusterRole"]
    (binding,) = [d for d in documents if d["kind"] == "ClusterRoleBinding"]
    for rule in role["rules"]:
        if rule["resources"] == ["secrets"]:
            assert set(SECRET_WRITES) <= set(rule["verbs"]), rule  # the chart grants them
            rule["verbs"] = [v for v in rule["verbs"] if v not in SECRET_WRITES]
    rbac.create_cluster_role(role)
    rbac.create_cluster_role_binding(binding)
    writer = {"apiGroups": [""], "resources": ["secrets"], "verbs": list(SECRET_WRITES)}
    rbac.create_cluster_role({"metadata": {"name": SECRET_WRITER}, "rules": [writer]})


def grant_secret_writes(api: client.ApiClient, namespace: str) -> None:
    """Let the operator create and update Secrets in `namespace` (a RoleBinding)."""
    binding = {
        "metadata": {"name": SECRET_WRITER, "namespace": namespace},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": SECRET_WRITER,
        },
        "subjects": [{"kind": "ServiceAccount", "name": SA_NAME, "namespace": SA_NAMESPACE}],
    }
    client.RbacAuthorizationV1Api(api).create_namespaced_role_binding(namespace, binding)


@dataclass
class Lab:
    plane: FaultyControlPlane
    api: client.ApiClient
    vault: LocalVault
    ops: VaultOps
    operator: OperatorProcess
    audit_log: Path

    @classmethod
    @contextlib.contextmanager
    def running(cls, directory: Path) -> Iterator[Lab]:
        """Start everything (about 10 s); stop everything started, by PID."""
        policy, audit_log = directory / "audit-policy.yaml", directory / "audit.log"
        policy.write_text(yaml.safe_dump(AUDIT_POLICY))
        audit = (
            f"--audit-policy-file={policy}",
            f"--audit-log-path={audit_log}",
            "--audit-log-format=json",
            "--audit-log-mode=blocking",
        )
        with contextlib.ExitStack() as stack:
            plane = stack.enter_context(
                FaultyControlPlane(binaries.ensure(), directory / "cp", extra_args=audit)
            )
            api = config.new_client_from_config(config_file=str(plane.kubeconfig))
            stack.callback(api.close)
            install_crds(api)
            token = service_account_token(api, SA_NAMESPACE, SA_NAME)
            _operator_rbac(api)
            kubeconfig = token_kubeconfig(plane, token, directory / "operator.kubeconfig", SA_NAME)
            vault = stack.enter_context(LocalVault.start(profile="documented", ca_delay=600.0))
            ops = VaultOps(vault)
            stack.callback(ops.close)
            ops.set_issuer(ISSUER, "DigiCert")
            operator = stack.enter_context(
                OperatorProcess(kubeconfig, clock_file=directory / "operator-clock")
            )
            lab = cls(plane, api, vault, ops, operator, audit_log)
            lab.wait_watching(0)
            yield lab
            assert operator.alive(), f"the operator died:\n{operator.log()}"

    # the audit log of the operator's requests ------------------------------------------------
    def requests(self, since: int, stage: str = "ResponseComplete") -> list[dict[str, Any]]:
        """The operator's requests since byte `since` of the audit log, at `stage`
        (ResponseStarted: the watches that are open)."""
        with self.audit_log.open("rb") as handle:
            handle.seek(since)
            data = handle.read()
        found = []
        for line in data.splitlines():
            with contextlib.suppress(ValueError):  # a line being written
                found.append(json.loads(line))
        return [e for e in found if e.get("stage") == stage]

    def wait_watching(self, since: int, timeout: float = 60.0) -> None:
        """Wait until the operator's watches (Certificates and output Secrets: kopf's; source
        Secrets: kvcert's own) have been opened since byte `since` of the audit log."""
        wanted = (
            ("certificates", "watch=true"),
            ("secrets", "managed-by"),
            ("secrets", "labelSelector=kvcert.io/source"),
        )

        def watching() -> bool:
            started = self.requests(since, "ResponseStarted")
            return all(
                any(
                    e.get("verb") == "watch"
                    and (e.get("objectRef") or {}).get("resource") == resource
                    and fragment in str(e.get("requestURI", ""))
                    for e in started
                )
                for resource, fragment in wanted
            )

        wait_for(watching, timeout, "the operator's watches open")

    def codes(
        self, since: int, verb: str, resource: str, namespace: str | None = None
    ) -> Counter[int]:
        """Response codes of the operator's `verb resource[/subresource]` since `since`."""
        counted: Counter[int] = Counter()
        for event in self.requests(since):
            ref = event.get("objectRef") or {}
            what = ref.get("resource", "")
            if ref.get("subresource"):
                what += f"/{ref['subresource']}"
            if event.get("verb") != verb or what != resource:
                continue
            if namespace is None or ref.get("namespace") == namespace:
                counted[int((event.get("responseStatus") or {}).get("code", 0))] += 1
        return counted

    def listed(self, since: int, resource: str, fragment: str = "") -> bool:
        """Whether the operator listed `resource` (a list, not a watch), with `fragment` in
        the request URI, since `since`."""
        return any(
            e.get("verb") == "list"
            and (e.get("objectRef") or {}).get("resource") == resource
            and fragment in str(e.get("requestURI", ""))
            for e in self.requests(since)
        )

    # the operator ----------------------------------------------------------------------------
    def log_since(self, offset: int) -> str:
        return self.operator.log_path.read_bytes()[offset:].decode(errors="replace")

    def check_operator(self, since: int, *, failures_allowed: bool = False) -> int:
        """Fail if the operator died, a reconcile did not settle, or (unless allowed) a
        reconcile raised since byte `since` of its log; returns how many raised."""
        assert self.operator.alive(), f"the operator died:\n{self.operator.log()}"
        text = self.log_since(since)
        assert "reconcile did not settle" not in text
        failed = text.count("reconcile failed")
        if failed and not failures_allowed:
            first = text.index("reconcile failed")
            pytest.fail(f"reconciles raised ({failed} times):\n{text[first : first + 4000]}")
        return failed


@dataclass
class Tenant:
    """One test's namespace, with a KeyVault `main` on the lab's vault."""

    lab: Lab
    namespace: str
    kube: Kube
    log_offset: int
    audit_offset: int

    @property
    def ops(self) -> VaultOps:
        return self.lab.ops

    def nudge(self, seconds: float = NUDGE) -> None:
        """Move the operator's clock `seconds` on: its rounds due by then (polls, backoffs)
        run now."""
        self.lab.operator.advance_clock(seconds)

    def versions(self, name: str) -> int:
        """Versions of the certificate `name` in the vault (a pending create has none)."""
        response = self.ops.call("GET", f"/certificates/{name}/versions")
        if response.status_code == 404:
            return 0
        assert response.is_success, response.text
        return len(response.json()["value"])

    def condition(self, name: str, kind: str = "Ready") -> tuple[str, str, str]:
        """(status, reason, message) of the condition `kind`, empty strings when absent."""
        found = self.kube.condition(name, kind) or {}
        return found.get("status", ""), found.get("reason", ""), found.get("message", "")

    def wait_ready(self, names: list[str], timeout: float = READY, hurry: bool = True) -> float:
        """Wait until every Certificate in `names` is Ready (Issued), nudging the operator's
        clock every second unless `hurry=False`; returns the seconds it took."""
        began = time.monotonic()
        last_nudge = began

        def all_ready() -> bool:
            nonlocal last_nudge
            if all(self.condition(n)[:2] == ("True", "Issued") for n in names):
                return True
            if hurry and time.monotonic() - last_nudge >= 1.0:
                self.nudge()
                last_nudge = time.monotonic()
            return False

        try:
            wait_for(all_ready, timeout, f"{', '.join(names)} Ready")
        except pytest.fail.Exception:
            states = {n: self.condition(n) for n in names}
            pytest.fail(f"not all Ready after {timeout} s: {states}")
        return time.monotonic() - began


def vault_ready(kube: Kube, name: str) -> bool:
    """Whether the operator has probed the KeyVault `name` (its Ready condition is True)."""
    body = kube.custom.get_namespaced_custom_object(
        "kvcert.io", "v1alpha1", kube.namespace, "keyvaults", name
    )
    conditions = (body.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


@contextlib.contextmanager
def open_tenant(lab: Lab, *, grant: bool = True) -> Iterator[Tenant]:
    """A namespace (the operator may write Secrets in it unless `grant=False`) with a KeyVault
    `main`; its Certificates and the namespace are deleted afterwards."""
    namespace = f"t-{uuid.uuid4().hex[:10]}"
    core = client.CoreV1Api(lab.api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    if grant:
        grant_secret_writes(lab.api, namespace)
    kube = Kube(lab.api, namespace)
    kube.put_secret("vault-token", {"token": lab.vault.token.encode()})
    kube.keyvault("main", lab.vault.url, "vault-token", lab.vault.ca_path.read_text())
    wait_for(lambda: vault_ready(kube, "main"), 30, "the KeyVault main probed Reachable")
    here = Tenant(lab, namespace, kube, size(lab.operator.log_path), size(lab.audit_log))
    try:
        yield here
    finally:
        with contextlib.suppress(ApiException, pytest.fail.Exception):
            kube.delete_all_certificates()
        with contextlib.suppress(ApiException):
            core.delete_namespace(namespace)
