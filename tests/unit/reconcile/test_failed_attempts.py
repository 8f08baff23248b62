"""Failed rounds in a row: counted in status.failedAttempts, backed off exponentially
(issue #18 §3, as cert-manager's failedIssuanceAttempts)."""

from __future__ import annotations

from typing import Any

import pytest

from kvcert.reconcile import CallError, Input, VaultFacts, reconcile
from kvcert.reconcile.outcomes import Failed
from kvcert.reconcile.schedule import ERROR_BASE, ERROR_CAP
from tests.unit.reconcile.support import NOW, World, body, make, ready_status

STAMP = "2026-11-22T12:00:00Z"
DOWN = Failed("ReadOperation", CallError(503, "ServiceUnavailable", "try later"))


def _failing(raw: dict[str, Any], attempt: int) -> Input:
    return make(raw, attempt=attempt, jitter=0.5).with_outcome(DOWN)


@pytest.mark.parametrize("attempt", [0, 1, 5, 12])
def test_a_transient_failure_counts_the_attempt_and_doubles_the_wait(attempt: int) -> None:
    decision = reconcile(_failing(body(), attempt))
    assert decision.failed
    assert decision.status_patch["failedAttempts"] == attempt + 1
    assert decision.status_patch["lastFailureTime"] == STAMP
    assert decision.requeue_after == pytest.approx(min(ERROR_CAP, ERROR_BASE * 2**attempt))


def test_a_ready_certificate_writes_only_the_count_when_a_call_fails() -> None:
    raw = body(ready_status())
    decision = reconcile(_failing(raw, 3))
    assert decision.failed
    assert dict(decision.status_patch) == {"failedAttempts": 4, "lastFailureTime": STAMP}


@pytest.mark.parametrize(
    ("name", "facts"),
    [
        ("vault not ready", {"vault": VaultFacts(ready=False, message="KeyVault main not Ready")}),
        ("vault missing", {"vault": VaultFacts.absent("KeyVault main does not exist")}),
    ],
)
def test_a_round_waiting_for_its_vault_counts_as_failed(name: str, facts: dict[str, Any]) -> None:
    decision = reconcile(make(body(), attempt=2, jitter=0.5, **facts))
    assert decision.failed, name
    assert decision.status_patch["failedAttempts"] == 3
    assert decision.requeue_after == pytest.approx(ERROR_BASE * 4)


def test_a_round_that_does_not_fail_drops_the_count_and_keeps_the_last_failure_time() -> None:
    world = World(body({"failedAttempts": 4, "lastFailureTime": "2026-11-22T11:00:00Z"}))
    decision = world.reconcile_once(now=NOW)
    assert not decision.failed
    assert "failedAttempts" not in world.raw["status"]
    assert world.raw["status"]["lastFailureTime"] == "2026-11-22T11:00:00Z"


def test_a_failed_intent_write_cannot_report_itself_but_is_counted() -> None:
    inp = make(body(), attempt=1).with_outcome(
        Failed("RecordIntent", CallError(500, "InternalError", "etcd"))
    )
    decision = reconcile(inp)
    assert decision.failed
    assert not decision.status_patch
