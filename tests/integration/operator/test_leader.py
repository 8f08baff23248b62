"""Leader election with two real operator processes (`--leader-elect`, kvcert.runtime.leader).

The session's `operator` fixture reconciles every namespace of the session API server, so this
module starts a control plane of its own (as timetravel.Lab does): etcd + kube-apiserver, the
CRDs, one LocalVault with a DigiCert-provider issuer whose operations stay in progress until the
test completes them (management API). Each test starts two operators on a Lease and a tenant
namespace of its own.

`test_one_leader_reconciles_and_a_standby_takes_over_when_it_dies` (short timings: lease 4 s,
renew deadline 3 s, retry 1 s), in order:

1. exactly one process holds the Lease; the other stands by, live and Ready ("standby");
2. a Certificate goes in progress: only the leader's log shows it, one Key Vault create;
3. SIGKILL the leader: the standby holds the Lease within lease duration + 5 s (measured);
4. the operation completes: the new leader delivers it, still exactly one create;
5. the Lease taken from the new leader: it exits, non-zero, saying so, within its renew
   deadline (+ 2 s).

`test_a_leader_stopped_with_sigterm_hands_the_lease_over_at_once` (production timings: lease
15 s, renew deadline 10 s, retry 2 s; three candidates): a standby stopped with SIGTERM exits 0
at once and the Lease stays with the leader; then SIGTERM the leader while a Certificate is in
progress (as a pod deletion, a rolling update or a drain does): kopf stops, then the Lease is
released (holderIdentity cleared, as client-go's ReleaseOnCancel) and the process exits 0; the
standby holds the Lease within TAKEOVER_BOUND s of the signal, far less than the lease
duration (the figures are printed); it then delivers the operation with no second create.
"""

from __future__ import annotations

import contextlib
import json
import signal
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.integration.operator.harness import (
    CREATES,
    Kube,
    VaultOps,
    certificate_spec,
    never,
    own_control_plane,
    wait_for,
)
from tests.integration.operator.timetravel import external_cluster
from tests.support.operator_process import OperatorProcess
from tests.support.vault import LocalVault, free_port

pytestmark = [external_cluster, pytest.mark.xdist_group("leader")]
LEASE_NS = "kvcert-system"
ISSUER = "digicert"
SHORT = (4, 3, 1)
"""Lease duration, renew deadline, retry period (s) of the SIGKILL test: a fast expiry."""
PRODUCTION = (15, 10, 2)
"""The defaults of `kvcert operator run` and of the chart (client-go's)."""


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
        return bool(holder) and str(holder).endswith(f"_{self.pid}")

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
class Lab:
    """The module's control plane and vault."""

    api: client.ApiClient
    kubeconfig: Any
    vault: LocalVault
    ops: VaultOps


@dataclass
class World:
    """One test's election: a Lease of its own, a tenant namespace, two candidates."""

    lab: Lab
    lease: str
    kube: Kube
    candidates: list[Candidate]

    def lease_spec(self) -> client.V1LeaseSpec | None:
        coordination = client.CoordinationV1Api(self.lab.api)
        try:
            lease = coordination.read_namespaced_lease(self.lease, LEASE_NS)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        spec: client.V1LeaseSpec | None = lease.spec
        return spec

    def holder(self) -> str | None:
        spec = self.lease_spec()
        return None if spec is None else spec.holder_identity

    def roles(self) -> tuple[Candidate, list[Candidate]]:
        """(leader, standbys) once one of the candidates holds the Lease."""
        holder = wait_for(self.holder, 30, "the Lease held")
        leaders = [c for c in self.candidates if c.holds(holder)]
        assert len(leaders) == 1, holder
        return leaders[0], [c for c in self.candidates if c is not leaders[0]]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """Control plane, CRDs, the Lease namespace, vault; everything started is stopped
    afterwards, by PID."""
    directory = tmp_path_factory.mktemp("leader")
    with contextlib.ExitStack() as stack:
        plane, api = own_control_plane(stack, directory / "cp")
        core = client.CoreV1Api(api)
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=LEASE_NS)))
        vault = stack.enter_context(LocalVault.start(profile="documented", ca_delay=600.0))
        ops = VaultOps(vault)
        stack.callback(ops.close)
        ops.set_issuer(ISSUER, "DigiCert")
        yield Lab(api, plane.kubeconfig, vault, ops)


@contextlib.contextmanager
def election(lab: Lab, timings: tuple[int, int, int], count: int = 2) -> Iterator[World]:
    """A tenant namespace with KeyVault `main` and `count` operators electing on a new Lease
    with `timings` (lease duration, renew deadline, retry period, seconds); stopped
    afterwards."""
    suffix = uuid.uuid4().hex[:8]
    lease, tenant = f"kvcert-{suffix}", f"ha-{suffix}"
    core = client.CoreV1Api(lab.api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=tenant)))
    kube = Kube(lab.api, tenant)
    kube.put_secret("vault-token", {"token": lab.vault.token.encode()})
    kube.keyvault("main", lab.vault.url, "vault-token", lab.vault.ca_path.read_text())
    duration, deadline, retry = timings
    with contextlib.ExitStack() as stack:
        candidates = []
        for _ in range(count):
            live = f"http://127.0.0.1:{free_port()}/healthz"
            ready = f"http://127.0.0.1:{free_port()}/readyz"
            args = (
                *("--namespace", tenant, "--leader-elect"),
                *("--leader-election-namespace", LEASE_NS, "--lease-name", lease),
                *("--lease-duration", str(duration), "--renew-deadline", str(deadline)),
                *("--retry-period", str(retry), "--liveness", live, "--readiness", ready),
            )
            process = stack.enter_context(OperatorProcess(lab.kubeconfig, args=args))
            candidates.append(Candidate(process, live, ready))
        yield World(lab, lease, kube, candidates)


def test_one_leader_reconciles_and_a_standby_takes_over_when_it_dies(lab: Lab) -> None:
    duration, deadline, retry = SHORT
    creates = lab.ops.count(CREATES)
    with election(lab, SHORT) as world:
        # 1. One holder; the other stands by, live and Ready, and says so.
        leader, (standby,) = world.roles()
        holder = world.holder()
        wait_for(lambda: "acquired the lease" in leader.process.log(), 10, "the leader's log")
        wait_for(lambda: leader.probe(leader.ready_url)[0] == 200, 30, "the leader Ready")
        for url in (standby.live_url, standby.ready_url):
            status, body = wait_for(lambda url=url: standby.answer(url), 10, f"an answer on {url}")
            assert status == 200
            assert body["role"] == "standby"

        def names_the_leader() -> bool:  # once the standby has read the Lease (retry period)
            return (standby.answer(standby.ready_url) or (0, {}))[1].get("leader") == holder

        wait_for(names_the_leader, retry + 5, "the standby naming the leader")
        assert "standing by for the lease" in standby.process.log()
        assert "acquired the lease" not in standby.process.log()

        # 2. A certificate in progress: the leader made the create, the standby saw nothing.
        kube = world.kube
        kube.apply_certificate("web", certificate_spec("main", "web-tls", ISSUER))
        kube.wait_operation("web", lambda op: op.get("status") == "inProgress")
        assert lab.ops.count(CREATES) == creates + 1
        where = f"{kube.namespace}/web"
        wait_for(lambda: where in leader.process.log(100_000), 10, "the leader's reconcile")
        standby_log = standby.process.log(tail=1_000_000)
        assert where not in standby_log
        assert "kopf" not in standby_log  # kopf never started: no watch, no handler
        assert standby.holds(world.holder()) is False

        # 3. The leader dies without a word: the standby takes over within lease duration + 5 s.
        leader.process.kill()
        killed = time.monotonic()
        wait_for(lambda: standby.holds(world.holder()), duration + 5, "the standby to lead")
        failover = time.monotonic() - killed
        print(f"\nfailover: the standby held the Lease {failover:.1f} s after SIGKILL")
        wait_for(lambda: "acquired the lease" in standby.process.log(), 5, "the new leader's log")

        # 4. The operation completes: the new leader delivers it, with no second create.
        lab.ops.complete("web")
        kube.wait_condition("web", "Ready", "True", "Issued", timeout=60)
        assert kube.secret("web-tls") is not None
        assert lab.ops.count(CREATES) == creates + 1
        wait_for(lambda: standby.probe(standby.ready_url)[0] == 200, 30, "the new leader Ready")
        assert standby.probe(standby.ready_url)[1].get("role") != "standby"

        # 5. Someone else takes the Lease: the leader exits within its renew deadline, non-zero.
        coordination = client.CoordinationV1Api(lab.api)
        lease = coordination.read_namespaced_lease(world.lease, LEASE_NS)
        lease.spec.holder_identity = "intruder"
        lease.spec.renew_time = datetime.now(UTC)
        coordination.replace_namespaced_lease(world.lease, LEASE_NS, lease)
        taken = time.monotonic()
        wait_for(lambda: not standby.process.alive(), deadline + retry + 2, "the exit")
        print(f"stepped down {time.monotonic() - taken:.1f} s after losing the Lease")
        assert standby.process.process is not None
        assert standby.process.process.returncode == 1
        assert f"lost the lease {LEASE_NS}/{world.lease}" in standby.process.log()
        never(lambda: lab.ops.count(CREATES) != creates + 1, 1, "a second Key Vault create")


TAKEOVER_BOUND = 8.0
"""Seconds from SIGTERM to the standby holding the Lease: the leader's stop and release (tens of
milliseconds here) plus up to one retry period (2 s) of the standby, with room for a loaded
machine; without the release a standby waits at least the lease duration (15 s)."""


def test_a_leader_stopped_with_sigterm_hands_the_lease_over_at_once(lab: Lab) -> None:
    duration, _, retry = PRODUCTION
    creates = lab.ops.count(CREATES)
    with election(lab, PRODUCTION, count=3) as world:
        leader, (standby, spare) = world.roles()
        holder = world.holder()
        wait_for(lambda: leader.probe(leader.ready_url)[0] == 200, 30, "the leader Ready")
        kube = world.kube
        kube.apply_certificate("api", certificate_spec("main", "api-tls", ISSUER, cn="api.ha"))
        kube.wait_operation("api", lambda op: op.get("status") == "inProgress")
        assert lab.ops.count(CREATES) == creates + 1

        # A standby stopped with SIGTERM exits at once and cleanly (PID 1 in a container would
        # otherwise ignore the signal), leaving the Lease to the leader. (Once it answers its
        # probe: before that it may still be importing, with Python's default SIGTERM.)
        wait_for(lambda: spare.answer(spare.ready_url), 30, "the spare standing by")
        assert spare.process.process is not None
        spare.process.process.send_signal(signal.SIGTERM)
        assert spare.process.process.wait(timeout=5) == 0, spare.process.log()
        assert world.holder() == holder
        assert "released the lease" not in spare.process.log()

        def names_the_leader() -> bool:  # the standby has observed the leader's record
            return (standby.answer(standby.ready_url) or (0, {}))[1].get("leader") == holder

        wait_for(names_the_leader, retry + 5, "the standby naming the leader")

        # The leader stopped with SIGTERM: kopf stops, the Lease is released, the standby
        # leads at its next attempt.
        assert leader.process.process is not None
        leader.process.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        wait_for(lambda: standby.holds(world.holder()), duration, "the standby to lead")
        takeover = time.monotonic() - signalled
        leader.process.process.wait(timeout=30)
        exited = time.monotonic() - signalled
        log = leader.process.log(tail=1_000_000)
        print(
            f"\nSIGTERM to the leader: the standby held the Lease after {takeover:.1f} s, the "
            f"leader had exited after {exited:.1f} s (lease duration {duration} s, retry period "
            f"{retry} s)"
        )
        assert leader.process.process.returncode == 0, log[-3000:]
        released = f"released the lease {LEASE_NS}/{world.lease}"
        assert released in log, log[-3000:]
        # kopf had stopped its watches and handlers, and kvcert its clients, before the release.
        assert log.index("Operator is stopping") < log.index(released), log[-3000:]
        assert log.index("Activity 'close' succeeded") < log.index(released), log[-3000:]
        assert takeover < TAKEOVER_BOUND, f"{takeover:.1f} s"

        # The new leader delivers the operation, with no second create.
        lab.ops.complete("api")
        kube.wait_condition("api", "Ready", "True", "Issued", timeout=60)
        assert kube.secret("api-tls") is not None
        assert lab.ops.count(CREATES) == creates + 1
