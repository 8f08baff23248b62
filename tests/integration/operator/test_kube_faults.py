"""Kubernetes faults (issue #18 §3): the API server restarted, every watch expired (410 Gone),
conflicting writes (409), the vault down for a minute, the output Secret's write refused by RBAC.

The lab (faultlab.py) is the module's own: control plane, vault, and one operator running as
the chart's ServiceAccount under the chart's RBAC. What each test proves is in its docstring;
its figures are printed. "One create each" is read from the vault twice: one version per
certificate, and the create counter. The operator's clock is moved on (`Tenant.nudge`) instead
of waiting for its polls and backoffs in real time.
"""

from __future__ import annotations

import base64
import json
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kvcert.reconcile.reasons import NORMAL
from kvcert.runtime.kube import SOURCE_LABEL
from tests.integration.operator.faultlab import (
    ISSUER,
    READY,
    Lab,
    Tenant,
    grant_secret_writes,
    open_tenant,
    size,
)
from tests.integration.operator.harness import CREATES, certificate_spec, wait_for
from tests.integration.operator.testca import TestCA
from tests.integration.operator.timetravel import external_cluster

pytestmark = [external_cluster, pytest.mark.xdist_group("kube_faults")]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with Lab.running(tmp_path_factory.mktemp("kube-faults")) as running:
        yield running


def self_spec(name: str) -> dict[str, Any]:
    return certificate_spec("main", f"{name}-tls", "Self", cn=f"{name}.example.com")


def issuer_spec(name: str, issuer: str = ISSUER, **extra: Any) -> dict[str, Any]:
    return certificate_spec("main", f"{name}-tls", issuer, cn=f"{name}.example.com", **extra)


def in_progress(tenant: Tenant, name: str) -> None:
    tenant.kube.wait_operation(name, lambda op: op.get("status") == "inProgress")


def one_version_each(tenant: Tenant, names: list[str]) -> None:
    assert {name: tenant.versions(name) for name in names} == dict.fromkeys(names, 1)


def test_an_api_server_restarted_mid_run_loses_nothing(lab: Lab) -> None:
    """kube-apiserver stopped (SIGTERM, SIGKILL 2 s later) and started again on the same etcd
    while two Self certificates are Ready, two operations are in progress (a DigiCert-provider
    one and a manual `Unknown` one, both completed by the vault's management API while the API
    server is down) and three Self certificates were applied a moment before: the operator's
    requests fail, it stays up, its watches come back (resumed, or listed again after a 410:
    a restarted API server may serve an old resourceVersion from etcd while its cache starts,
    so either happens; the 410 path is forced in the next test), every Certificate becomes
    Ready with exactly one Key Vault create, and one applied afterwards is acted on (only a
    watch tells the operator of a new Certificate)."""
    with open_tenant(lab) as tenant:
        kube, ops = tenant.kube, lab.ops
        creates = ops.count(CREATES)
        ready = ["a-ready-0", "a-ready-1"]
        for name in ready:
            kube.apply_certificate(name, self_spec(name))
        tenant.wait_ready(ready)
        pending = {"a-digicert": ISSUER, "a-manual": "Unknown"}
        for name, issuer in pending.items():
            kube.apply_certificate(name, issuer_spec(name, issuer))
        for name in pending:
            in_progress(tenant, name)
        fresh = [f"a-fresh-{i}" for i in range(3)]
        for name in fresh:
            kube.apply_certificate(name, self_spec(name))
        log_mark, audit_mark = size(lab.operator.log_path), size(lab.audit_log)

        stopped = time.monotonic()
        with lab.plane.apiserver_down():
            for name in pending:
                ops.complete(name)
            wait_for(
                lambda: "Request attempt" in lab.log_since(log_mark),
                30,
                "the operator's requests to the stopped API server failing",
            )
            noticed = time.monotonic() - stopped
        back = time.monotonic()
        names = [*ready, *pending, *fresh]
        settled = tenant.wait_ready(names)
        kube.apply_certificate("a-after", self_spec("a-after"))
        tenant.wait_ready(["a-after"])

        lists = lab.codes(audit_mark, "list", "certificates")
        failed = lab.check_operator(tenant.log_offset, failures_allowed=True)
        print(
            f"\nAPI server restart: the operator's requests failed {noticed:.1f} s after the "
            f"stop, the API server was Ready again {back - stopped:.1f} s after it, the "
            f"{len(names)} Certificates Ready {settled:.1f} s later; creates "
            f"{ops.count(CREATES) - creates} for {len(names) + 1} Certificates; Certificates "
            f"listed again {dict(lists) or 'no (watch resumed)'}; reconciles that raised "
            f"(connection refused) {failed}"
        )
        assert ops.count(CREATES) - creates == len(names) + 1
        one_version_each(tenant, [*names, "a-after"])


def test_expired_watches_410_gone_are_listed_again_and_later_changes_acted_on(lab: Lab) -> None:
    """Every watch of the operator made to resume from a resourceVersion that etcd has
    forgotten: the API server stopped, etcd moved on and compacted
    (FaultyControlPlane.expire_watches), the API server started again. kopf's watches are
    answered 410 Gone and start again with a list (its log), the source Secret watch lists
    again (the audit log), and what changes afterwards is acted on: a new Certificate is
    issued, a deleted output Secret is rebuilt, and a chain put in a manual Certificate's
    mergeFrom Secret (labelled kvcert.io/source) is merged at once, through the new watches."""
    with open_tenant(lab) as tenant:
        kube = tenant.kube
        kube.apply_certificate("b-before", self_spec("b-before"))
        tenant.wait_ready(["b-before"])
        manual = issuer_spec("b-manual", "Unknown", mergeFrom={"secretName": "b-manual-signed"})
        kube.apply_certificate("b-manual", manual)
        kube.wait_condition("b-manual", "Issuing", "True", "AwaitingMerge")
        log_mark, audit_mark = size(lab.operator.log_path), size(lab.audit_log)

        stopped = time.monotonic()
        with lab.plane.apiserver_down():
            compacted = lab.plane.expire_watches()
        back = time.monotonic() - stopped
        for resource in ("certificates.v1alpha1.kvcert.io", "secrets.v1"):
            wait_for(
                lambda r=resource: (
                    f"Restarting the watch-stream for {r}" in lab.log_since(log_mark)
                ),
                30,
                f"kopf's watch of {resource} answered 410 Gone",
            )
        wait_for(
            lambda: lab.listed(audit_mark, "secrets", "labelSelector=kvcert.io/source"),
            30,
            "the source Secret watch listing again",
        )
        relisted = time.monotonic() - stopped

        kube.apply_certificate("b-after", self_spec("b-after"))
        kube.core.delete_namespaced_secret("b-before-tls", kube.namespace)
        csr = wait_for(lambda: kube.config_map("b-manual-csr"), 10, "the CSR ConfigMap")
        ca = TestCA.make()
        chain = ca.chain_pem(ca.sign_csr(csr.data["csr.pem"]))
        signed = client.V1Secret(
            metadata=client.V1ObjectMeta(name="b-manual-signed", labels={SOURCE_LABEL: "true"}),
            data={"tls.crt": base64.b64encode(chain).decode()},
        )
        kube.core.create_namespaced_secret(kube.namespace, signed)
        tenant.wait_ready(["b-after", "b-manual"])
        restored = wait_for(lambda: kube.secret("b-before-tls"), READY, "b-before-tls rebuilt")
        assert "tls.crt" in (restored.data or {})
        text = lab.log_since(log_mark)
        assert "output Secret b-before-tls changed" in text
        assert "source Secret b-manual-signed changed" in text
        one_version_each(tenant, ["b-before", "b-manual", "b-after"])
        lab.check_operator(tenant.log_offset, failures_allowed=True)
        print(
            f"\netcd compacted at revision {compacted} while the API server was down; it was "
            f"Ready again {back:.1f} s after the stop, and every watch had been answered 410 "
            f"Gone and listed again {relisted:.1f} s after it"
        )


LABELS = 3
"""Label writes per Certificate while the operator is stopped, after its creation."""
CALM = 0.2
"""Seconds between a background writer's labels of each Certificate until all are Ready."""


def test_conflicting_writes_between_the_operators_read_and_write_are_retried(lab: Lab) -> None:
    """Another writer changes each Certificate between the operator's read and its write: the
    operator is stopped (SIGSTOP) while four Certificates are created and labelled LABELS times
    each, then continued (SIGCONT), and a writer goes on labelling them every CALM s. The
    operator acts on each creation event first, so its resourceVersion-guarded status write
    (the intent recorded before a create) meets 409 Conflict, at least once per Certificate
    (counted in the audit log). Every Certificate still becomes Ready with one create, no
    condition ever shows a failure reason, and no reconcile raised."""
    with open_tenant(lab) as tenant:
        kube, ops = tenant.kube, lab.ops
        names = [f"c-busy-{i}" for i in range(4)]
        creates = ops.count(CREATES)
        stop = threading.Event()
        ticks = iter(range(1, 1_000_000))
        writes: Counter[str] = Counter()

        def label(name: str) -> None:
            patch = {"metadata": {"labels": {"faults.kvcert.io/tick": str(next(ticks))}}}
            try:
                kube.patch_certificate(name, patch)
                writes["label"] += 1
            except ApiException as error:
                writes[str(error.status)] += 1

        def label_in_a_loop() -> None:
            while not stop.wait(CALM):
                for name in names:
                    label(name)

        seen: set[tuple[str, str, str]] = set()

        def watch_conditions() -> None:
            while not stop.wait(0.05):
                for name in names:
                    for kind in ("Ready", "Issuing", "Stalled"):
                        status, reason, _ = tenant.condition(name, kind)
                        if status:
                            seen.add((kind, status, reason))

        operator = lab.operator.process
        assert operator is not None
        operator.send_signal(signal.SIGSTOP)
        try:
            for name in names:
                kube.apply_certificate(name, self_spec(name))
                for _ in range(LABELS):
                    label(name)
        finally:
            operator.send_signal(signal.SIGCONT)
        threads = [threading.Thread(target=f) for f in (label_in_a_loop, watch_conditions)]
        for thread in threads:
            thread.start()
        try:
            took = tenant.wait_ready(names, timeout=90)
        finally:
            stop.set()
            for thread in threads:
                thread.join(10)
        conflicts = lab.codes(tenant.audit_offset, "patch", "certificates/status", kube.namespace)
        print(
            f"\n{sum(writes.values())} label writes {dict(writes)}; the operator's status "
            f"patches {dict(conflicts)}; all Ready {took:.1f} s after SIGCONT; conditions seen "
            f"{sorted(seen)}"
        )
        assert conflicts[409] >= len(names), "a write from a stale read was not refused"
        assert ops.count(CREATES) - creates == len(names)
        one_version_each(tenant, names)
        assert {reason for _, _, reason in seen} <= {str(r) for r in NORMAL}
        lab.check_operator(tenant.log_offset)


def test_the_vault_down_for_a_minute_is_reported_then_recovered_with_one_create(
    lab: Lab,
) -> None:
    """The vault killed while an operation is in progress, and a Certificate applied while it
    is down: both report it (Ready=False, reason KeyVaultError, a message naming the call and
    saying that Key Vault did not answer, no credential in the status) through a minute of the
    operator's clock; the vault started again on the same data, both become Ready, with one
    create each (the in-progress one's before, the other's after the restart)."""
    with open_tenant(lab) as tenant:
        kube, ops, vault = tenant.kube, lab.ops, lab.vault
        kube.apply_certificate("d-inflight", issuer_spec("d-inflight"))
        in_progress(tenant, "d-inflight")
        vault.kill()
        reports: dict[str, tuple[str, str, str]] = {}
        try:
            kube.apply_certificate("d-newcomer", self_spec("d-newcomer"))

            def reported(name: str) -> bool:
                found = tenant.condition(name)
                if found[1] == "KeyVaultError":
                    reports[name] = found
                return found[1] == "KeyVaultError"

            wait_for(lambda: reported("d-newcomer"), 30, "d-newcomer reporting the vault down")
            for _ in range(4):  # 60 s of the operator's clock: polls and backoffs come due
                tenant.nudge(15)
                wait_for(lambda: reported("d-inflight"), 30, "d-inflight reporting it")
            statuses = {name: (kube.certificate(name) or {}).get("status") for name in reports}
        finally:
            vault.restart()
        ops.complete("d-inflight")
        took = tenant.wait_ready(["d-inflight", "d-newcomer"])
        attempts = {name: (status or {}).get("failedAttempts") for name, status in statuses.items()}
        print(f"\nwhile the vault was down: {reports}\nfailedAttempts {attempts}; both Ready "
              f"{took:.1f} s after its restart")  # fmt: skip
        for name, (status, _, message) in reports.items():
            assert status == "False"
            assert "did not answer" in message, (name, message)
            assert vault.token not in json.dumps(statuses[name])
        assert ops.count(CREATES) == 1  # counted since the restart: the newcomer's only
        one_version_each(tenant, ["d-inflight", "d-newcomer"])
        lab.check_operator(tenant.log_offset)


def _refused(tenant: Tenant, name: str) -> tuple[str, str, str]:
    """Apply a Self Certificate `name` and wait until Ready=False says why it cannot finish."""
    tenant.kube.apply_certificate(name, self_spec(name))
    tenant.nudge()
    return wait_for(
        lambda: (
            (found := tenant.condition(name))[0] == "False"
            and found[1] not in ("Issuing", "Created")
            and found
        ),
        READY,
        f"{name} reporting that its Secret cannot be written",
    )


def test_a_refused_output_secret_write_is_reported_and_recovers_once_granted(lab: Lab) -> None:
    """The operator may not create Secrets in the namespace (RBAC: no RoleBinding): the
    certificate is issued in Key Vault but the Certificate reports Ready=False, with nothing
    secret in the message; once a RoleBinding grants the writes, the same operator process
    delivers the Secret, with no second create."""
    with open_tenant(lab, grant=False) as tenant:
        kube, ops = tenant.kube, lab.ops
        creates = ops.count(CREATES)
        pid = lab.operator.process.pid if lab.operator.process else None
        status, reason, message = _refused(tenant, "e-guarded")
        assert kube.secret("e-guarded-tls") is None
        assert "PRIVATE KEY" not in message
        assert lab.vault.token not in message
        grant_secret_writes(lab.api, kube.namespace)
        took = tenant.wait_ready(["e-guarded"])
        secret = kube.secret("e-guarded-tls")
        assert secret is not None
        assert "tls.crt" in (secret.data or {})
        assert lab.operator.process is not None
        assert lab.operator.process.pid == pid, "the operator was restarted"
        assert ops.count(CREATES) - creates == 1
        one_version_each(tenant, ["e-guarded"])
        codes = lab.codes(tenant.audit_offset, "create", "secrets", kube.namespace)
        print(
            f"\nrefused: Ready={status} {reason}: {message}\nthe operator's Secret creates "
            f"{dict(codes)}; Ready {took:.1f} s after the grant"
        )
        assert codes[403] >= 1
        assert codes[201] == 1
        lab.check_operator(tenant.log_offset)


def test_a_refused_output_secret_write_names_the_secret_and_the_verb(lab: Lab) -> None:
    """The refusal's condition says what was refused and by whom: reason OutputRefused (the
    output Secret, not Key Vault), a message naming the Secret and the verb."""
    with open_tenant(lab, grant=False) as tenant:
        status, reason, message = _refused(tenant, "e-named")
        assert (status, reason) == ("False", "OutputRefused"), message
        assert "e-named-tls" in message
        assert "create" in message


def test_a_keyvault_written_meanwhile_does_not_fail_the_calls_in_flight(lab: Lab) -> None:
    """Another writer labels the KeyVault in a loop (as a GitOps tool or `kubectl label` may)
    while six Certificates are issued through it: none of them gets a Warning event (today:
    KeyVaultError, 'Connector is closed' or 'Server disconnected', on every run here)."""
    with open_tenant(lab) as tenant:
        kube = tenant.kube
        names = [f"f-busy-{i}" for i in range(6)]
        stop = threading.Event()

        def label_the_vault() -> None:
            tick = 0
            while not stop.wait(0.01):
                tick += 1
                body = {"metadata": {"labels": {"faults.kvcert.io/tick": str(tick)}}}
                kube.custom.patch_namespaced_custom_object(
                    "kvcert.io", "v1alpha1", kube.namespace, "keyvaults", "main", body
                )

        writer = threading.Thread(target=label_the_vault)
        writer.start()
        try:
            for name in names:
                kube.apply_certificate(name, self_spec(name))
            tenant.wait_ready(names)
        finally:
            stop.set()
            writer.join(10)
        normal = {str(reason) for reason in NORMAL}
        failures = {n: [e for e in kube.events(n) if e.reason not in normal] for n in names}
        messages = {e.message for found in failures.values() for e in found}
        failing = sum(map(bool, failures.values()))
        print(f"\nWarning events on {failing} of {len(names)} Certificates: {messages}")
        assert messages == set()
