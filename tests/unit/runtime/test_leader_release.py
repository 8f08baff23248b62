"""Leader election's release at a clean exit (client-go's ReleaseOnCancel), on the kubernetes
client's own elector and LeaseLock over an in-memory Lease store with resourceVersions: the
release stops the renewals, clears the holder only if the Lease is still ours, re-reads on a
409 Conflict, never raises, and a standby that has just observed the leader's record takes the
released Lease at its next attempt instead of after the lease duration. The whole path through
real processes and a real API server (SIGTERM, kopf's stop, the release at exit) is
tests/integration/operator/test_leader.py."""

from __future__ import annotations

import copy
import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes import client

from kvcert.runtime import leader
from kvcert.runtime.leader import Elector, TimedLeaseLock
from kvcert.runtime.settings import LeaderElectionSettings

NAME, NAMESPACE = "kvcert-operator", "ops"


class Leases:
    """CoordinationV1Api's three Lease calls over one in-memory Lease, with optimistic
    concurrency (a stale resourceVersion is a 409) and injectable failures."""

    def __init__(self) -> None:
        self.lease: client.V1Lease | None = None
        self.version = 0
        self.reads = 0
        self.replaces = 0
        self.conflicts = 0  # the next N replaces answer 409
        self.failure: Exception | None = None  # raised by every call

    def _stored(self) -> client.V1Lease:
        assert self.lease is not None
        return copy.deepcopy(self.lease)

    def read_namespaced_lease(self, name: str, namespace: str, **_: Any) -> client.V1Lease:
        self.reads += 1
        if self.failure is not None:
            raise self.failure
        if self.lease is None:
            missing = client.ApiException(status=404, reason="Not Found")
            missing.body = json.dumps({"kind": "Status", "code": 404, "reason": "NotFound"})
            raise missing
        return self._stored()

    def create_namespaced_lease(self, namespace: str, body: Any, **_: Any) -> client.V1Lease:
        if self.lease is not None:
            raise client.ApiException(status=409, reason="AlreadyExists")
        self.version += 1
        meta = client.V1ObjectMeta(name=NAME, namespace=namespace, resource_version=str(1))
        self.lease = client.V1Lease(metadata=meta, spec=copy.deepcopy(body.spec))
        return self._stored()

    def replace_namespaced_lease(
        self, name: str, namespace: str, body: client.V1Lease, **_: Any
    ) -> client.V1Lease:
        self.replaces += 1
        if self.failure is not None:
            raise self.failure
        assert self.lease is not None
        if self.conflicts or body.metadata.resource_version != self.lease.metadata.resource_version:
            self.conflicts = max(0, self.conflicts - 1)
            raise client.ApiException(status=409, reason="Conflict")
        self.version += 1
        self.lease = copy.deepcopy(body)
        self.lease.metadata.resource_version = str(self.version)
        return self._stored()

    def holder(self) -> str | None:
        return None if self.lease is None else self.lease.spec.holder_identity

    def set_holder(self, holder: str) -> None:
        """Someone else writes the Lease (a new resourceVersion)."""
        assert self.lease is not None
        self.version += 1
        self.lease.spec.holder_identity = holder
        self.lease.spec.renew_time = datetime.now(UTC)
        self.lease.metadata.resource_version = str(self.version)


@pytest.fixture
def leases(monkeypatch: pytest.MonkeyPatch) -> Leases:
    monkeypatch.setattr(leader, "LEADERSHIP_HOOKS", [])
    return Leases()


def candidate(leases: Leases, name: str, exits: list[int]) -> Elector:
    """An elector with the client's LeaderElection and LeaseLock, production timings, on the
    in-memory store; `exits` collects exit codes instead of ending the test process."""
    settings = LeaderElectionSettings(NAMESPACE, NAME, 15, 10, 2)
    elector = Elector(settings, client.ApiClient(), name, exit=exits.append)
    elector.api.api = leases  # type: ignore[assignment]
    return elector


def lead(elector: Elector) -> None:
    assert elector.election.try_acquire_or_renew()
    elector.started()


def test_a_released_lease_is_taken_by_the_standby_at_its_next_attempt(leases, caplog):
    exits: list[int] = []
    first, second = candidate(leases, "a_1", exits), candidate(leases, "b_2", exits)
    lead(first)
    assert not second.election.try_acquire_or_renew(), "held and just observed: not yet"

    with caplog.at_level("INFO", logger="kvcert.leader"):
        assert first.release() is True
    assert leases.lease is not None
    spec = leases.lease.spec
    assert spec.holder_identity == ""
    assert spec.lease_duration_seconds == leader.RELEASED_LEASE_DURATION
    assert abs(spec.renew_time - datetime.now(UTC)) < timedelta(seconds=5)
    assert "a_1 released the lease ops/kvcert-operator" in caplog.text

    # Without the release the standby would wait 15 s from its observation; now it leads.
    assert second.election.try_acquire_or_renew()
    assert leases.lease.spec.holder_identity == "b_2"
    assert exits == []


def test_after_the_release_the_old_leader_writes_nothing_and_does_not_exit_as_lost(leases):
    exits: list[int] = []
    first = candidate(leases, "a_1", exits)
    lead(first)
    assert first.release()
    version = leases.version
    assert not first.election.try_acquire_or_renew(), "a renewal after the release"
    assert not first.lock.create(NAME, NAMESPACE, None)
    assert leases.version == version
    first.lost("the elector could not renew it")  # its renew loop gives up later: silence
    assert exits == []
    assert first.release() is False, "released once"


def test_a_standby_releases_nothing(leases):
    exits: list[int] = []
    first, second = candidate(leases, "a_1", exits), candidate(leases, "b_2", exits)
    lead(first)
    reads = leases.reads
    assert second.release() is False
    assert leases.reads == reads
    assert leases.holder() == "a_1"


def test_a_lease_taken_by_someone_else_is_left_alone(leases, caplog):
    exits: list[int] = []
    first = candidate(leases, "a_1", exits)
    lead(first)
    leases.set_holder("intruder")
    with caplog.at_level("INFO", logger="kvcert.leader"):
        assert first.release() is False
    assert leases.holder() == "intruder"
    assert "no longer holds the lease" in caplog.text


def test_a_conflict_is_read_again_and_written(leases):
    exits: list[int] = []
    first = candidate(leases, "a_1", exits)
    lead(first)
    leases.conflicts = 1
    reads, replaces = leases.reads, leases.replaces
    assert first.release() is True
    assert (leases.reads - reads, leases.replaces - replaces) == (2, 2)
    assert leases.holder() == ""


def test_conflicts_every_time_give_up_after_the_attempts(leases):
    exits: list[int] = []
    first = candidate(leases, "a_1", exits)
    lead(first)
    leases.conflicts = 99
    replaces = leases.replaces
    assert first.release() is False
    assert leases.replaces - replaces == leader.RELEASE_ATTEMPTS


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(ConnectionRefusedError("the API server is down"), id="no answer"),
        pytest.param(client.ApiException(status=403, reason="Forbidden"), id="403"),
    ],
)
def test_a_failed_release_is_logged_and_never_raises(leases, caplog, failure):
    exits: list[int] = []
    first = candidate(leases, "a_1", exits)
    lead(first)
    leases.failure = failure
    with caplog.at_level("WARNING", logger="kvcert.leader"):
        assert first.release() is False
    assert f"could not release the lease ops/kvcert-operator ({type(failure).__name__})" in (
        caplog.text
    )
    assert "takes over after the lease duration" in caplog.text
    assert exits == []


def test_a_lost_lease_is_not_released(leases):
    exits: list[int] = []
    first = candidate(leases, "a_1", exits)
    lead(first)
    first.lost("not renewed for 10 s")
    assert exits == [leader.LOST_EXIT_CODE]
    assert first.release() is False
    assert leases.holder() == "a_1"


class BlockingLock:
    """A LeaseLock whose update blocks until `go` is set (a renewal in flight)."""

    name, namespace, identity = NAME, NAMESPACE, "a_1"

    def __init__(self) -> None:
        self.go = threading.Event()
        self.updates = 0

    def get(self, name: str, namespace: str) -> tuple[bool, Any]:
        return True, None

    def create(self, name: str, namespace: str, record: Any) -> bool:
        return True

    def update(self, name: str, namespace: str, record: Any) -> bool:
        self.updates += 1
        self.go.wait(5)
        return True


def test_closing_the_lock_waits_for_a_write_in_flight_and_refuses_later_ones():
    wrapped = BlockingLock()
    lock = TimedLeaseLock(wrapped)
    renewal = threading.Thread(target=lock.update, args=(NAME, NAMESPACE, None))
    renewal.start()
    while wrapped.updates == 0:
        threading.Event().wait(0.01)
    assert lock.close(0.05) is False, "a renewal is still in flight"
    wrapped.go.set()
    renewal.join(5)
    assert lock.close(1.0) is True
    assert lock.update(NAME, NAMESPACE, None) is False
    assert wrapped.updates == 1


def test_a_renewal_in_flight_past_the_renew_deadline_prevents_the_release(leases, caplog):
    exits: list[int] = []
    first = candidate(leases, "a_1", exits)
    lead(first)
    first.lock.close = lambda timeout: False  # type: ignore[method-assign]
    with caplog.at_level("WARNING", logger="kvcert.leader"):
        assert first.release() is False
    assert "a renewal is still in flight" in caplog.text
    assert leases.holder() == "a_1"


def test_sigterm_while_standing_by_is_a_clean_exit():
    with pytest.raises(SystemExit) as raised:
        leader._terminate(15, None)
    assert raised.value.code == 0
