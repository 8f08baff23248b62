"""Leader election with two real operator processes (`--leader-elect`, kvcert.runtime.leader).

The session's `operator` fixture reconciles every namespace of the session API server, so this
module starts a control plane of its own (as timetravel.Lab does): etcd + kube-apiserver, the
CRDs, one LocalVault with a DigiCert-provider issuer whose operations stay in progress until the
test completes them (management API), and two operators with short timings (lease 4 s, renew
deadline 3 s, retry 1 s). One test, in order:

1. exactly one process holds the Lease; the other stands by, live and Ready ("standby");
2. a Certificate goes in progress: only the leader's log shows it, one Key Vault create;
3. SIGKILL the leader: the standby holds the Lease within lease duration + 5 s (measured);
4. the operation completes: the new leader delivers it, still exactly one create;
5. the Lease taken from the new leader: it exits, non-zero, saying so, within its renew
   deadline (+ 2 s).
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from kvcert.devcluster import binaries
from kvcert.devcluster.controlplane import ControlPlane
from tests.integration.operator.harness import (
    CREATES,
    Kube,
    VaultOps,
    certificate_spec,
    install_crds,
    never,
    wait_for,
)
from tests.integration.operator.timetravel import external_cluster
from tests.support.operator_process import OperatorProcess
from tests.support.vault import LocalVault, free_port

pytestmark = external_cluster
LEASE_NS, LEASE = "kvcert-system", "kvcert-operator"
LEASE_DURATION, RENEW_DEADLINE, RETRY_PERIOD = 4, 3, 1
ISSUER = "digicert"
TENANT = "ha"


@dataclass
class Candidate:
    """One operator process with its own probe endpoints."""

    process: OperatorProcess
    live_url: str
    ready_url: str

    @property
    def pid(self) -> int:
        assert self.process.process is not None
        return self.process.process.pid

    def holds(self, holder: str | None) -> bool:
        return holder is not None and holder.endswith(f"_{self.pid}")

    def probe(self, url: str) -> tuple[int, dict[str, Any]]:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            return error.code, {}
        except OSError:
            return 0, {}

    def answer(self, url: str) -> tuple[int, dict[str, Any]] | None:
        """The probe's answer, or None while nothing listens."""
        found = self.probe(url)
        return found if found[0] else None


@dataclass
class World:
    api: client.ApiClient
    kube: Kube
    ops: VaultOps
    candidates: list[Candidate]

    def holder(self) -> str | None:
        try:
            lease = client.CoordinationV1Api(self.api).read_namespaced_lease(LEASE, LEASE_NS)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return None if lease.spec is None else lease.spec.holder_identity


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Control plane, CRDs, vault, a namespace with KeyVault `main`, two operators; everything
    started is stopped afterwards, by PID."""
    directory = tmp_path_factory.mktemp("leader")
    with contextlib.ExitStack() as stack:
        plane = stack.enter_context(
            ControlPlane(binaries=binaries.ensure(), directory=directory / "cp")
        )
        api = config.new_client_from_config(config_file=str(plane.kubeconfig))
        stack.callback(api.close)
        install_crds(api)
        core = client.CoreV1Api(api)
        for name in (LEASE_NS, TENANT):
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
        vault = stack.enter_context(LocalVault.start(profile="documented", ca_delay=600.0))
        ops = VaultOps(vault)
        stack.callback(ops.close)
        ops.set_issuer(ISSUER, "DigiCert")
        kube = Kube(api, TENANT)
        kube.put_secret("vault-token", {"token": vault.token.encode()})
        kube.keyvault("main", vault.url, "vault-token", vault.ca_path.read_text())
        candidates = []
        for _ in range(2):
            live = f"http://127.0.0.1:{free_port()}/healthz"
            ready = f"http://127.0.0.1:{free_port()}/readyz"
            args = (
                *("--leader-elect", "--leader-election-namespace", LEASE_NS),
                *("--lease-duration", str(LEASE_DURATION), "--renew-deadline", str(RENEW_DEADLINE)),
                *("--retry-period", str(RETRY_PERIOD), "--liveness", live, "--readiness", ready),
            )
            process = stack.enter_context(OperatorProcess(plane.kubeconfig, args=args))
            candidates.append(Candidate(process, live, ready))
        yield World(api, kube, ops, candidates)


def test_one_leader_reconciles_and_a_standby_takes_over_when_it_dies(world: World) -> None:
    first, second = world.candidates
    # 1. One holder; the other stands by, live and Ready, and says so.
    holder = wait_for(world.holder, 30, "the Lease held")
    assert first.holds(holder) != second.holds(holder), holder
    leader, standby = (first, second) if first.holds(holder) else (second, first)
    wait_for(lambda: "acquired the lease" in leader.process.log(), 10, "the leader's log line")
    wait_for(lambda: leader.probe(leader.ready_url)[0] == 200, 30, "the leader Ready")
    for url in (standby.live_url, standby.ready_url):
        status, body = wait_for(lambda url=url: standby.answer(url), 10, f"an answer on {url}")
        assert status == 200
        assert body["role"] == "standby"

    def names_the_leader() -> bool:  # once the standby has read the Lease (retry period)
        return (standby.answer(standby.ready_url) or (0, {}))[1].get("leader") == holder

    wait_for(names_the_leader, RETRY_PERIOD + 5, "the standby naming the leader")
    assert "standing by for the lease" in standby.process.log()
    assert "acquired the lease" not in standby.process.log()

    # 2. A certificate in progress: the leader made the create, the standby saw nothing.
    world.kube.apply_certificate("web", certificate_spec("main", "web-tls", ISSUER))
    world.kube.wait_operation("web", lambda op: op.get("status") == "inProgress")
    assert world.ops.count(CREATES) == 1
    wait_for(lambda: f"{TENANT}/web" in leader.process.log(100_000), 10, "the leader's reconcile")
    standby_log = standby.process.log(tail=1_000_000)
    assert f"{TENANT}/web" not in standby_log
    assert "kopf" not in standby_log  # kopf never started: no watch, no handler
    assert standby.holds(world.holder()) is False

    # 3. The leader dies without a word: the standby takes over within lease duration + 5 s.
    leader.process.kill()
    killed = time.monotonic()
    wait_for(lambda: standby.holds(world.holder()), LEASE_DURATION + 5, "the standby to lead")
    failover = time.monotonic() - killed
    print(f"\nfailover: the standby held the Lease {failover:.1f} s after SIGKILL")
    wait_for(lambda: "acquired the lease" in standby.process.log(), 5, "the new leader's log")

    # 4. The operation completes: the new leader delivers it, with no second create.
    world.ops.complete("web")
    world.kube.wait_condition("web", "Ready", "True", "Issued", timeout=60)
    assert world.kube.secret("web-tls") is not None
    assert world.ops.count(CREATES) == 1
    wait_for(lambda: standby.probe(standby.ready_url)[0] == 200, 30, "the new leader Ready")
    assert standby.probe(standby.ready_url)[1].get("role") != "standby"

    # 5. Someone else takes the Lease: the leader exits within its renew deadline, non-zero.
    coordination = client.CoordinationV1Api(world.api)
    lease = coordination.read_namespaced_lease(LEASE, LEASE_NS)
    lease.spec.holder_identity = "intruder"
    lease.spec.renew_time = datetime.now(UTC)
    coordination.replace_namespaced_lease(LEASE, LEASE_NS, lease)
    taken = time.monotonic()
    wait_for(lambda: not standby.process.alive(), RENEW_DEADLINE + RETRY_PERIOD + 2, "the exit")
    print(f"stepped down {time.monotonic() - taken:.1f} s after losing the Lease")
    assert standby.process.process is not None
    assert standby.process.process.returncode == 1
    assert "lost the lease kvcert-system/kvcert-operator" in standby.process.log()
    never(lambda: world.ops.count(CREATES) != 1, 1, "a second Key Vault create")
