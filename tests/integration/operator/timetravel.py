"""Time travel for the lifecycle tests (issue #15). Moving clocks would disturb every other
test, so a module starts a `Lab` of its own: etcd + kube-apiserver with an audit log, the CRDs,
a LocalVault per profile, an OperatorProcess with a clock file. Each test gets a `Tenant` (a
namespace with a KeyVault `main`); `advance(seconds)` moves every vault's clock and the
operator's by the same amount. Time is moved, never slept; outcomes are waited for by condition.

`Tenant.meter()` diffs the vault's request counters (`GET /_kvcert/stats`) and counts the
operator's Kubernetes writes in the audit log (every admin client but ours, `TEST_AGENT`); a
scenario's costs are printed and appended to .bench/lifecycle-costs.jsonl.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from kvcert.devcluster import binaries
from kvcert.devcluster.controlplane import ControlPlane
from tests.integration.operator.harness import (
    GROUP,
    VERSION,
    Kube,
    VaultOps,
    certificate_spec,
    install_crds,
    wait_for,
)
from tests.integration.operator.meter import Meter, file_size
from tests.support.operator_process import OperatorProcess
from tests.support.vault import LocalVault

TEST_AGENT = "kvcert-lifecycle-tests"
"""The user agent of the tests' own Kubernetes client: every other admin write is the operator's."""
REACTION = 20.0
"""Seconds an annotation or spec edit may take to be acted on (a watch event, no timer)."""
external_cluster = pytest.mark.skipif(
    bool(os.environ.get("KUBECONFIG")),
    reason="lifecycle tests move clocks: they need a control plane, vault and operator of their"
    " own, which an external cluster (KUBECONFIG) cannot give them",
)

AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        {"level": "Metadata", "verbs": ["create", "update", "patch", "delete", "deletecollection"]},
        {"level": "None"},
    ],
}
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"


def parse_time(text: str | None) -> datetime | None:
    """An RFC 3339 timestamp as the API server writes it ("...Z"), aware UTC."""
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


@dataclass
class Lab:
    """One module's own world: control plane, vaults by profile, operator with a clock file."""

    plane: ControlPlane
    api: client.ApiClient
    vaults: dict[str, LocalVault]
    operator: OperatorProcess
    audit_log: Path

    @classmethod
    @contextlib.contextmanager
    def running(
        cls, directory: Path, profiles: tuple[str, ...] = ("documented",), ca_delay: float = 600.0
    ) -> Iterator[Lab]:
        """Start everything (about 5 s), yield, stop everything started, by PID."""
        audit_policy, audit_log = directory / "audit-policy.yaml", directory / "audit.log"
        audit_policy.write_text(yaml.safe_dump(AUDIT_POLICY))
        args = (
            f"--audit-policy-file={audit_policy}",
            f"--audit-log-path={audit_log}",
            "--audit-log-format=json",
            "--audit-log-mode=blocking",
        )
        with contextlib.ExitStack() as stack:
            plane = stack.enter_context(
                ControlPlane(
                    binaries=binaries.ensure(), directory=directory / "cp", extra_args=args
                )
            )
            api = config.new_client_from_config(config_file=str(plane.kubeconfig))
            stack.callback(api.close)
            api.user_agent = TEST_AGENT
            install_crds(api)
            start = LocalVault.start
            vaults = {p: stack.enter_context(start(profile=p, ca_delay=ca_delay)) for p in profiles}
            operator = stack.enter_context(
                OperatorProcess(plane.kubeconfig, clock_file=directory / "operator-clock")
            )
            lab = cls(plane, api, vaults, operator, audit_log)
            yield lab
            lab.check_operator(0)

    # clocks ---------------------------------------------------------------------------------
    def advance(self, seconds: float) -> None:
        """Move every vault's clock, then the operator's, `seconds` forward: what Key Vault
        does by itself at the new time (lifetime actions, CA answers) happens first."""
        for vault in self.vaults.values():
            vault.advance_clock(seconds)
        self.operator.advance_clock(seconds)

    def now(self) -> datetime:
        """The operator's time (system time plus its clock file's offset)."""
        return datetime.now(UTC) + timedelta(seconds=self.operator.clock_offset())

    def advance_past(self, when: datetime, by: float = 60.0) -> float:
        """Move the clocks to `by` seconds after `when` (which must be ahead); returns seconds."""
        seconds = (when - self.now()).total_seconds() + by
        assert seconds > 0, f"{when} is already past (now {self.now()})"
        self.advance(seconds)
        return seconds

    # the operator ---------------------------------------------------------------------------
    def check_operator(self, since: int) -> None:
        """Fail if the operator died or a reconcile raised since byte `since` of its log."""
        if not self.operator.alive():
            pytest.fail(f"the operator died:\n{self.operator.log()}")
        text = self.operator.log_path.read_bytes()[since:].decode(errors="replace")
        lines = text.splitlines()
        failed = [i for i, line in enumerate(lines) if "reconcile failed" in line]
        if failed or "reconcile did not settle" in text:
            first = failed[0] if failed else 0
            context = "\n".join(lines[first : first + 40])
            pytest.fail(f"the operator's reconciles raised ({len(failed)} times):\n{context}")

    # Kubernetes writes, from the audit log ----------------------------------------------------
    def operator_writes(self, namespace: str, since: int) -> Counter[str]:
        """The operator's writes in `namespace` since byte `since`: "verb resource[/sub]"."""
        counted: Counter[str] = Counter()
        with self.audit_log.open("rb") as handle:
            handle.seek(since)
            data = handle.read()
        for line in data.splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue  # a line being written
            ref = event.get("objectRef") or {}
            if (
                event.get("stage") != "ResponseComplete"
                or (event.get("user") or {}).get("username") != "admin"
                or str(event.get("userAgent", "")).startswith(TEST_AGENT)
                or ref.get("namespace") != namespace
            ):
                continue
            what = f"{event['verb']} {ref.get('resource')}"
            if ref.get("subresource"):
                what += f"/{ref['subresource']}"
            code = (event.get("responseStatus") or {}).get("code", 200)
            if code >= 300:
                what += f" ({code})"
            counted[what] += 1
        return counted


@dataclass
class Tenant:
    """One test's namespace on the lab, with a KeyVault `main` on one of its vaults."""

    lab: Lab
    vault: LocalVault
    namespace: str
    kube: Kube
    ops: VaultOps
    log_offset: int

    def advance(self, seconds: float) -> None:
        self.lab.advance(seconds)

    def meter(self) -> Meter:
        return Meter(self)

    def annotate(self, name: str, annotations: dict[str, str]) -> None:
        self.kube.patch_certificate(name, {"metadata": {"annotations": annotations}})

    def status(self, name: str) -> dict[str, Any]:
        body = self.kube.certificate(name) or {}
        return dict(body.get("status") or {})

    def printer_row(self, name: str) -> dict[str, Any]:
        """The Certificate's row as `kubectl get` shows it: the CRD's printer columns, by name,
        from the API server's Table rendering."""
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{self.namespace}/certificates/{name}"
        api = self.lab.api
        request = api.param_serialize(
            "GET", path, header_params={"Accept": TABLE}, auth_settings=["BearerToken"]
        )
        response = api.call_api(*request)
        response.read()
        table = json.loads(response.data)
        columns = [column["name"] for column in table["columnDefinitions"]]
        return dict(zip(columns, table["rows"][0]["cells"], strict=True))


@contextlib.contextmanager
def open_tenant(lab: Lab, profile: str = "documented") -> Iterator[Tenant]:
    """A namespace with a KeyVault `main` on the lab's `profile` vault; afterwards every
    Certificate is deleted (before the namespace), and every certificate in the vault is
    deleted and purged, so that later clock moves renew nothing of this test's."""
    vault = lab.vaults[profile]
    namespace = f"t-{uuid.uuid4().hex[:10]}"
    core = client.CoreV1Api(lab.api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    kube = Kube(lab.api, namespace)
    kube.put_secret("vault-token", {"token": vault.token.encode()})
    kube.keyvault("main", vault.url, "vault-token", vault.ca_path.read_text())
    ops = VaultOps(vault)
    here = Tenant(lab, vault, namespace, kube, ops, file_size(lab.operator.log_path))
    try:
        yield here
        lab.check_operator(here.log_offset)
    finally:
        with contextlib.suppress(ApiException):
            kube.delete_all_certificates()
        _empty_vault(ops)
        ops.close()
        with contextlib.suppress(ApiException):
            core.delete_namespace(namespace)


def _empty_vault(ops: VaultOps) -> None:
    listed = ops.ok("GET", "/certificates?includePending=true&maxresults=25")
    for item in listed.get("value", []):
        name = item["id"].rstrip("/").rsplit("/", 1)[-1]
        ops.call("DELETE", f"/certificates/{name}")
    for item in ops.ok("GET", "/deletedcertificates?includePending=true").get("value", []):
        name = item["recoveryId"].rstrip("/").rsplit("/", 1)[-1]
        ops.call("DELETE", f"/deletedcertificates/{name}")


# assertions shared by the modules -------------------------------------------------------------
def condition(body: dict[str, Any] | None, kind: str) -> dict[str, Any]:
    found = ((body or {}).get("status") or {}).get("conditions") or []
    return next((dict(item) for item in found if item.get("type") == kind), {})


def secret_x5t(kube: Kube, secret: str) -> str | None:
    """The version the output Secret holds (the x5t annotation kvcert writes on it)."""
    found = kube.secret(secret)
    return None if found is None else (found.metadata.annotations or {}).get("kvcert.io/x5t")


def event_types(kube: Kube, name: str, reason: str) -> list[str]:
    return [str(e.type) for e in kube.events(name) if e.reason == reason]


def issue(
    t: Tenant,
    name: str,
    issuer: str = "Self",
    policy: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Apply a Certificate (harness.certificate_spec, its policy updated with `policy`, plus
    top-level `extra`) and wait until it is Ready and the operator is quiet; a provider-issued
    one is signed at once (management API)."""
    spec = certificate_spec("main", f"{name}-tls", issuer, **extra)
    spec["policy"].update(policy or {})
    t.kube.apply_certificate(name, spec)
    t.kube.wait_operation(name, lambda op: op.get("status") in ("inProgress", "completed"))
    if issuer not in ("Self", "Unknown"):
        t.ops.complete(name)
    # The next poll (after Key Vault's Retry-After) is due within seconds of operator time.
    t.advance(15)
    t.kube.wait_condition(name, "Ready", "True", "Issued")
    t.meter().settle()
    body = t.kube.certificate(name)
    assert body is not None
    return body


def wait_delivered(t: Tenant, name: str, old_version: str, timeout: float = 60.0) -> dict[str, Any]:
    """Wait until status.certificate is a version other than `old_version` and the output
    Secret holds it; return the Certificate."""

    def delivered() -> dict[str, Any] | None:
        body = t.kube.certificate(name) or {}
        info = (body.get("status") or {}).get("certificate") or {}
        held = secret_x5t(t.kube, body.get("spec", {}).get("secretName", ""))
        new = info.get("version") not in (None, old_version) and held == info.get("x5t")
        return body if new else None

    try:
        return wait_for(delivered, timeout, f"a version other than {old_version} delivered")
    except pytest.fail.Exception:
        pytest.fail(f"{name}: no new version delivered; status is {t.status(name)}")


def wait_new_operation(t: Tenant, name: str, old_request_id: str | None) -> dict[str, Any]:
    """Wait until status.operation follows a request other than `old_request_id`, then move
    the clocks 15 s so that its next poll (Key Vault's Retry-After is 10 s) is due now."""
    body = t.kube.wait_operation(
        name, lambda op: op.get("requestId") not in (None, old_request_id), timeout=30
    )
    t.advance(15)
    return body


def wait_handled(t: Tenant, name: str, key: str, value: str) -> dict[str, Any]:
    """Wait until status.handledRequests.<key> is `value` (the annotation kvcert.io/<key> was
    acted on); fail naming the missing reaction."""

    def acted() -> dict[str, Any] | None:
        body = t.kube.certificate(name) or {}
        handled = (body.get("status") or {}).get("handledRequests") or {}
        return body if handled.get(key) == value else None

    gap = (
        f"OPERATOR GAP: nothing acted on the annotation kvcert.io/{key}={value!r} (an annotation"
        " change bumps no generation, and handlers._needs_reconcile reconciles a Certificate"
        " event only when generation != status.observedGeneration)"
    )
    return wait_for(acted, REACTION, gap)


def lab_fixtures(name: str, profiles: tuple[str, ...] = ("documented",)) -> tuple[Any, Any, Any]:
    """The module-scoped `lab` (a control plane, vaults and an operator of the module's own), the
    `operator` fixture (so that a failed test's report carries its log) and a `tenant` per test.
    Use as `lab, operator, tenant = lab_fixtures("lifecycle-x")` at a test module's top level."""

    @pytest.fixture(scope="module")
    def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
        directory: Path = tmp_path_factory.mktemp(name)
        with Lab.running(directory, profiles=profiles) as running:
            yield running

    @pytest.fixture
    def operator(lab: Lab) -> OperatorProcess:
        return lab.operator

    @pytest.fixture
    def tenant(lab: Lab, operator: OperatorProcess) -> Iterator[Tenant]:
        with open_tenant(lab) as here:
            yield here

    return lab, operator, tenant
