"""Leader election's pure parts: timings validated at start-up, the identity, the watchdog's
verdict, the exit on loss, and the standby's probe answers. The election itself (the kubernetes
client's elector on a real Lease) is tested in tests/integration/operator/test_leader.py."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from kvcert import cli
from kvcert.runtime import leader
from kvcert.runtime.leader import Elector, TimedLeaseLock, identity
from kvcert.runtime.settings import LeaderElectionSettings, OperatorSettings
from kvcert.runtime.standby import StandbyProbes


def test_without_leader_elect_there_is_no_election():
    assert OperatorSettings.load(environ={}).leader_election is None


@pytest.mark.parametrize(
    ("kwargs", "environ", "expected"),
    [
        pytest.param(
            {},
            {},
            LeaderElectionSettings("kvcert-system", "kvcert-operator", 15, 10, 2),
            id="client-go's timings and kvcert-system by default",
        ),
        pytest.param(
            {},
            {"POD_NAMESPACE": "ops"},
            LeaderElectionSettings("ops", "kvcert-operator"),
            id="the Lease lives in the pod's namespace",
        ),
        pytest.param(
            {"leader_election_namespace": "elsewhere", "lease_name": "mine"},
            {"POD_NAMESPACE": "ops"},
            LeaderElectionSettings("elsewhere", "mine"),
            id="an explicit namespace and name win",
        ),
        pytest.param(
            {"lease_duration": 4, "renew_deadline": 3, "retry_period": 1},
            {},
            LeaderElectionSettings(lease_duration=4, renew_deadline=3, retry_period=1),
            id="the integration test's short timings are accepted",
        ),
    ],
)
def test_leader_election_settings(kwargs, environ, expected):
    loaded = OperatorSettings.load(leader_elect=True, environ=environ, **kwargs)
    assert loaded.leader_election == expected


@pytest.mark.parametrize(
    ("timings", "message"),
    [
        pytest.param((10, 10, 2), "must be shorter than the lease duration", id="renew == lease"),
        pytest.param((10, 12, 2), "must be shorter than the lease duration", id="renew > lease"),
        pytest.param((15, 10, 10), "retry period", id="retry == renew"),
        pytest.param((15, 10, 9), "retry period", id="retry within the elector's jitter of renew"),
        pytest.param((15, 10, 0), ">= 1 s", id="a zero retry period"),
        pytest.param((0, -1, 1), ">= 1 s", id="negative timings"),
    ],
)
def test_unsafe_timings_are_refused_with_a_message(timings, message):
    lease, renew, retry = timings
    with pytest.raises(ValueError, match=message):
        OperatorSettings.load(
            leader_elect=True,
            lease_duration=lease,
            renew_deadline=renew,
            retry_period=retry,
            environ={},
        )


def test_the_command_line_refuses_unsafe_timings_before_starting_anything(capsys):
    code = cli.main(
        ["operator", "run", "--leader-elect", "--lease-duration", "5", "--renew-deadline", "5"]
    )
    assert code == 2
    assert "must be shorter than the lease duration" in capsys.readouterr().err


def test_identity_is_the_pod_name_or_host_and_the_pid(monkeypatch):
    monkeypatch.setattr(leader.os, "getpid", lambda: 42)
    assert identity({"POD_NAME": "kvcert-7d9f-abcde"}) == "kvcert-7d9f-abcde_42"
    monkeypatch.setattr(leader.socket, "gethostname", lambda: "laptop")
    assert identity({}) == "laptop_42"


class FakeLock:
    """The LeaseLock surface the elector uses; `answers` are the next write outcomes."""

    def __init__(self, answers: list[bool]) -> None:
        self.name, self.namespace, self.identity = "kvcert-operator", "ops", "me_1"
        self.answers = answers

    def get(self, name: str, namespace: str) -> tuple[bool, Any]:
        return True, None

    def create(self, name: str, namespace: str, record: Any) -> bool:
        return self.answers.pop(0)

    def update(self, name: str, namespace: str, record: Any) -> bool:
        return self.answers.pop(0)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_lock_remembers_when_its_last_successful_write_began():
    clock = Clock()
    lock = TimedLeaseLock(FakeLock([True, False, True]), clock)
    assert (lock.name, lock.namespace, lock.identity) == ("kvcert-operator", "ops", "me_1")
    assert lock.last_write is None
    assert lock.create("kvcert-operator", "ops", None)
    assert lock.last_write == 100.0
    clock.now = 102.0
    assert not lock.update("kvcert-operator", "ops", None)
    assert lock.last_write == 100.0  # a failed renewal proves nothing
    clock.now = 104.0
    assert lock.update("kvcert-operator", "ops", None)
    assert lock.last_write == 104.0


def _elector(clock: Clock, exits: list[int], hooks: list[bool], monkeypatch) -> Elector:
    monkeypatch.setattr(leader, "LEADERSHIP_HOOKS", [hooks.append])
    settings = LeaderElectionSettings("ops", "kvcert-operator", 15, 10, 2)
    elector = Elector(settings, client.ApiClient(), "me_1", exit=exits.append, clock=clock)
    elector.lock = TimedLeaseLock(FakeLock([True] * 10), clock)
    return elector


def test_the_elector_uses_the_clients_election_with_our_lease(monkeypatch):
    elector = _elector(Clock(), [], [], monkeypatch)
    config = elector.election.election_config
    assert (config.lease_duration, config.renew_deadline, config.retry_period) == (15, 10, 2)
    assert config.lock.name == "kvcert-operator"
    assert config.lock.namespace == "ops"
    assert config.lock.identity == "me_1"


def test_overdue_only_while_leading_and_only_past_the_renew_deadline(monkeypatch):
    clock, exits, hooks = Clock(), [], []
    elector = _elector(clock, exits, hooks, monkeypatch)
    elector.lock.create("kvcert-operator", "ops", None)
    clock.now += 60
    assert not elector.overdue(), "a standby is never overdue"
    elector.started()
    assert elector.leading.is_set()
    assert hooks == [True]
    clock.now = 110.0
    assert not elector.overdue(), "exactly the renew deadline since the last write began"
    clock.now = 110.01
    assert elector.overdue()


def test_losing_leadership_exits_once_with_a_non_zero_code_and_says_so(monkeypatch, caplog):
    clock, exits, hooks = Clock(), [], []
    elector = _elector(clock, exits, hooks, monkeypatch)
    elector.started()
    with caplog.at_level("INFO", logger="kvcert.leader"):
        elector.lost("not renewed for 10 s")
        elector.lost("the elector could not renew it")
    assert exits == [leader.LOST_EXIT_CODE]
    assert leader.LOST_EXIT_CODE != 0
    assert hooks == [True, False]
    messages = [r.getMessage() for r in caplog.records if "lost the lease" in r.getMessage()]
    assert messages == [
        "leader election: me_1 lost the lease ops/kvcert-operator (not renewed for 10 s); "
        "exiting with code 1 to restart as a standby"
    ]


def test_a_failing_hook_does_not_stop_the_election(monkeypatch):
    def broken(_: bool) -> None:
        raise RuntimeError("metrics are down")

    clock, exits = Clock(), []
    elector = _elector(clock, exits, [], monkeypatch)
    monkeypatch.setattr(leader, "LEADERSHIP_HOOKS", [broken])
    elector.started()
    assert elector.leading.is_set()


def _get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_a_standby_is_live_and_ready_and_says_standby(monkeypatch):
    elector = _elector(Clock(), [], [], monkeypatch)
    probes = StandbyProbes(["http://127.0.0.1:0/healthz", "http://127.0.0.1:0/readyz"], elector)
    probes.start()
    try:
        (server,) = probes.servers  # one port, both paths
        port = server.server_address[1]
        for path in ("/healthz", "/readyz"):
            status, body = _get(f"http://127.0.0.1:{port}{path}")
            assert status == 200
            assert body["role"] == "standby"
            assert body["ready"] is True
            assert body["identity"] == "me_1"
        assert _get(f"http://127.0.0.1:{port}/other")[0] == 404
    finally:
        probes.close()
    assert not probes.servers


def test_a_standby_serves_kvcert_leader_0_on_the_metrics_endpoint(monkeypatch):
    elector = _elector(Clock(), [], [], monkeypatch)
    probes = StandbyProbes(["http://127.0.0.1:0/healthz"], elector, "http://127.0.0.1:0/metrics")
    probes.start()
    try:
        (server,) = probes.servers  # the metrics endpoint shares the probe port here
        port = server.server_address[1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
        families = {f.name: f for f in text_string_to_metric_families(text)}
        assert [s.value for s in families["kvcert_leader"].samples] == [0.0]
        assert _get(f"http://127.0.0.1:{port}/healthz")[0] == 200
    finally:
        probes.close()


class FlakyElection:
    """The client's LeaderElection surface: `run` raises as a refused connection does."""

    def __init__(self, elector: Elector, failures: int) -> None:
        self.elector = elector
        self.failures = failures
        self.calls: list[str] = []
        self.observed_record = None

    def run(self) -> None:
        self.calls.append("run")
        if self.failures:
            self.failures -= 1
            raise ConnectionRefusedError("the API server is down")
        self.elector.started()  # acquired; then a renewal fails for good
        raise ConnectionRefusedError("the API server is down again")

    def renew_loop(self) -> None:
        self.calls.append("renew_loop")


def test_the_elector_survives_an_unreachable_api_server(monkeypatch):
    clock, exits, hooks = Clock(), [], []
    elector = _elector(clock, exits, hooks, monkeypatch)
    flaky = FlakyElection(elector, failures=2)
    elector.election = flaky
    monkeypatch.setattr(leader.time, "sleep", lambda _: None)
    elector.elect()
    # A standby retries the election; a leader goes back to renewing, and exits when it gives up.
    assert flaky.calls == ["run", "run", "run", "renew_loop"]
    assert exits == [leader.LOST_EXIT_CODE]
    assert hooks == [True, False]


def test_every_lease_call_has_a_timeout():
    calls = []

    class Recorder:
        def __getattr__(self, method: str) -> Any:
            return lambda *args, **kwargs: calls.append((method, args, kwargs))

    api = leader.LeaseApi(client.ApiClient(), 10)
    api.api = Recorder()
    api.read_namespaced_lease("l", "ns")
    api.create_namespaced_lease("ns", {"spec": {}})
    api.replace_namespaced_lease(name="l", namespace="ns", body={"spec": {}})
    assert [(method, kwargs["_request_timeout"]) for method, _, kwargs in calls] == [
        ("read_namespaced_lease", 10),
        ("create_namespaced_lease", 10),
        ("replace_namespaced_lease", 10),
    ]


def test_the_elector_talks_through_our_client_with_timeouts(monkeypatch):
    elector = Elector(
        LeaderElectionSettings("ops", "kvcert-operator", 15, 10, 2), client.ApiClient(), "me_1"
    )
    assert isinstance(elector.lock.lock.api_instance, leader.LeaseApi)
    assert elector.lock.lock.api_instance.timeout == 10
