"""Whole flows through a fake world: the cost budget and crash safety of DESIGN §5."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from kvcert.reconcile import SourceFacts

from .support import NOW, Crash, World, body

MANUAL = {"issuer": {"name": "Unknown"}, "subject": "CN=web.example.com"}


def test_self_certificate_is_ready_within_the_cost_budget() -> None:
    world = World(body())
    first = world.reconcile_once()  # the create event
    assert first.requeue_after is not None
    assert first.requeue_after >= 10.0
    later = NOW + timedelta(seconds=first.requeue_after)
    second = world.reconcile_once(now=later)  # the timer
    status = world.raw["status"]
    # The one schedule left is the renewal check (Key Vault's default AutoRenew at 80 % of the
    # lifetime, plus a margin): no poll, and nothing before it.
    renewal = datetime.fromisoformat(status["renewalTime"])
    assert second.requeue_after == pytest.approx((renewal - later).total_seconds(), abs=1)
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"
    assert status["certificate"]["x5t"] == "x5t-v1"
    assert status["operation"]["status"] == "completed"
    assert world.status_writes <= 3
    assert len(world.emitted) <= 2
    assert world.calls["CreateCertificate"] == 1
    assert world.calls["ReadOperation"] <= 2
    # One read before the first create (404: the name is free, issue #18 §4), one after it.
    assert world.calls["ReadCertificate"] == 2
    assert world.calls["WriteSecret"] == 1
    # a further event on a Ready certificate costs no write and no Key Vault call
    calls_before, writes_before = dict(world.calls), world.status_writes
    world.reconcile_once(now=NOW + timedelta(minutes=5))
    assert world.status_writes == writes_before
    assert {k: v for k, v in world.calls.items() if k != "ReadSecret"} == {
        k: v for k, v in calls_before.items() if k != "ReadSecret"
    }


@pytest.mark.parametrize(
    "crash_after",
    [
        pytest.param("RecordIntent", id="crash after the intent, before the create"),
        pytest.param("CreateCertificate", id="crash after the create, before recording it"),
    ],
)
def test_exactly_one_create_across_a_crash(crash_after: str) -> None:
    world = World(body(), crash_after=crash_after)
    with pytest.raises(Crash):
        world.reconcile_once()
    world.reconcile_once(marker="m2")  # the restarted operator
    world.reconcile_once(now=NOW + timedelta(minutes=1), marker="m3")
    assert world.calls["CreateCertificate"] == 1
    ready = next(c for c in world.raw["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"


def test_manual_certificate_is_issued_after_the_merge_secret_appears() -> None:
    world = World(body(policy=MANUAL, mergeFrom={"secretName": "web-signed"}), issuer="Unknown")
    first = world.reconcile_once()
    assert world.calls["WriteCsrConfigMap"] == 1
    assert world.raw["status"]["operation"]["csrRef"]["name"] == "web-csr"
    # polls while no chain exists: no write, no merge
    writes = world.status_writes
    world.reconcile_once(now=NOW + timedelta(seconds=first.requeue_after or 0))
    assert world.status_writes == writes
    assert world.calls["MergeChain"] == 0
    world.merge_source = SourceFacts(exists=True, fingerprint="fp-1", chain_pem_length=2000)
    world.reconcile_once(now=NOW + timedelta(minutes=2))
    assert world.calls["MergeChain"] == 1
    ready = next(c for c in world.raw["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"
    assert world.calls["CreateCertificate"] == 1


def test_no_private_key_reaches_status_or_events() -> None:
    world = World(body())
    world.reconcile_once()
    world.reconcile_once(now=NOW + timedelta(minutes=1))
    texts = [*world.written_text, *(event.message for event in world.emitted)]
    assert not any("PRIVATE KEY" in text for text in texts)


def test_no_create_is_sent_when_the_intent_could_not_be_recorded() -> None:
    world = World(body(), refuse_status_writes=True)
    decision = world.reconcile_once()
    assert world.calls["CreateCertificate"] == 0
    assert decision.requeue_after is not None
    assert decision.status_patch == {}


def test_polling_a_slow_issuer_writes_nothing_and_backs_off() -> None:
    digicert = {"issuer": {"name": "mydigicert"}, "subject": "CN=web.example.com"}
    world = World(body(policy=digicert), issuer="mydigicert")
    first = world.reconcile_once()
    writes, now, delays = world.status_writes, NOW, []
    for _ in range(5):
        now += timedelta(seconds=delays[-1] if delays else first.requeue_after or 0)
        decision = world.reconcile_once(now=now)
        assert decision.requeue_after is not None
        delays.append(decision.requeue_after)
    assert world.status_writes == writes  # nothing changed, nothing written
    assert delays == sorted(delays)
    assert delays[-1] > delays[0]
    assert world.calls["CreateCertificate"] == 1
    assert world.calls["ReadOperation"] == 5


def test_a_merge_whose_answer_was_lost_in_a_crash_is_recorded_and_told_after_it() -> None:
    """Issue #18 §1: the crash table's `after:merge` (the vault merged, the operator died
    before its status write): the restart records merge.result Merged and says Merged."""
    world = World(body(policy=MANUAL, mergeFrom={"secretName": "web-signed"}), issuer="Unknown")
    world.reconcile_once()
    world.merge_source = SourceFacts(
        exists=True, fingerprint="fp-1", chain_pem_length=2000, leaf_x5t="x5t-v1"
    )
    world.crash_after = "MergeChain"
    with pytest.raises(Crash):
        world.reconcile_once(now=NOW + timedelta(minutes=2))
    assert world.raw["status"]["operation"]["status"] == "inProgress"
    world.emitted.clear()
    world.reconcile_once(now=NOW + timedelta(minutes=3), marker="m2")  # the restarted operator
    status = world.raw["status"]
    assert status["operation"]["merge"] == {"fingerprint": "fp-1", "result": "Merged"}
    assert [e.reason for e in world.emitted].count("Merged") == 1
    assert world.calls["MergeChain"] == 1
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"


def test_a_chain_merged_by_someone_else_is_not_recorded_as_mergefroms() -> None:
    world = World(body(policy=MANUAL, mergeFrom={"secretName": "web-signed"}), issuer="Unknown")
    world.reconcile_once()
    world.merge_source = SourceFacts(
        exists=True, fingerprint="fp-1", chain_pem_length=2000, leaf_x5t="another-leaf"
    )
    world._complete()  # merged out of band with another chain
    world.emitted.clear()
    world.reconcile_once(now=NOW + timedelta(minutes=3), marker="m2")
    assert "merge" not in world.raw["status"]["operation"]
    assert "Merged" not in [e.reason for e in world.emitted]
    assert world.calls["MergeChain"] == 0
