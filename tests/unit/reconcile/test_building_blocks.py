"""Conditions, merge patches and delays: the small pure pieces the ladder is built from."""

from __future__ import annotations

from datetime import timedelta

import pytest

from kvcert.api.status import Condition
from kvcert.reconcile import CallError, reconcile
from kvcert.reconcile.conditions import set_condition, shorten
from kvcert.reconcile.outcomes import CertificateRead, Conflict, OperationRead
from kvcert.reconcile.patch import apply_merge_patch, merge_patch_diff
from kvcert.reconcile.reasons import NORMAL, Reason
from kvcert.reconcile.schedule import backoff, poll_delay

from .support import NOT_FOUND, NOW, body, cert, intent, kinds, make, op

EARLIER = NOW - timedelta(hours=1)
READY_FALSE = Condition(
    type="Ready",
    status="False",
    reason="Issuing",
    last_transition_time=EARLIER,
    observed_generation=1,
)


@pytest.mark.parametrize(
    ("status", "reason", "expected_time"),
    [
        pytest.param(
            "False",
            "AwaitingMerge",
            EARLIER,
            id="keeps lastTransitionTime when only the reason changes",
        ),
        pytest.param("True", "Issued", NOW, id="moves lastTransitionTime when the status flips"),
    ],
)
def test_set_condition_transition_time(status: str, reason: str, expected_time: object) -> None:
    (updated,) = set_condition(
        (READY_FALSE,),
        "Ready",
        status,
        reason,
        "m",  # type: ignore[arg-type]
        generation=2,
        now=NOW,
    )
    assert updated.last_transition_time == expected_time
    assert updated.observed_generation == 2
    assert updated.reason == reason


def test_set_condition_appends_a_new_type_and_keeps_order() -> None:
    result = set_condition((READY_FALSE,), "Stalled", "False", "Issuing", "", generation=1, now=NOW)
    assert [item.type for item in result] == ["Ready", "Stalled"]


def test_messages_are_one_bounded_line() -> None:
    assert shorten("a\n  b", 10) == "a b"
    assert len(shorten("x" * 1000)) == 512


@pytest.mark.parametrize(
    ("current", "desired", "patch"),
    [
        pytest.param({"a": 1}, {"a": 1}, {}, id="an unchanged status needs no patch"),
        pytest.param(
            {"a": {"b": 1, "c": 2}},
            {"a": {"b": 1}},
            {"a": {"c": None}},
            id="a field gone from the desired status is nulled",
        ),
        pytest.param({"l": [1]}, {"l": [1, 2]}, {"l": [1, 2]}, id="lists are replaced whole"),
        pytest.param(
            {}, {"a": {"b": None, "c": 1}}, {"a": {"c": 1}}, id="a new object carries no nulls"
        ),
    ],
)
def test_merge_patch_diff(current: dict, desired: dict, patch: dict) -> None:  # type: ignore[type-arg]
    assert merge_patch_diff(current, desired) == patch
    assert apply_merge_patch(current, patch) == _without_nones(desired)


def _without_nones(value: object) -> object:
    if isinstance(value, dict):
        return {k: _without_nones(v) for k, v in value.items() if v is not None}
    return value


def test_backoff_grows_is_capped_and_honours_retry_after() -> None:
    assert backoff(0, 0.5) == 2.0
    assert backoff(3, 0.5) == 16.0
    assert backoff(30, 0.5) == 300.0
    assert backoff(0, 0.5, retry_after=45) == 45.0
    assert backoff(2, 0.0) < backoff(2, 0.5) < backoff(2, 0.999)


def test_poll_delay_grows_with_the_operation_age_and_honours_retry_after() -> None:
    assert poll_delay(NOW, NOW, 0.5, None) == 5.0
    assert poll_delay(NOW - timedelta(minutes=2), NOW, 0.5, None) == 60.0
    assert poll_delay(NOW - timedelta(days=1), NOW, 0.5, None) == 300.0
    assert poll_delay(NOW, NOW, 0.5, 10.0) == 10.0


def test_normal_reasons_are_a_subset_of_the_closed_set() -> None:
    assert set(Reason) >= NORMAL
    assert len({reason.value for reason in Reason}) == len(Reason)


def test_a_409_without_an_operation_is_never_answered_by_a_second_create() -> None:
    inp = (
        make(body({"operation": {"intent": intent()}}))
        .with_outcome(OperationRead(NOT_FOUND))
        .with_outcome(Conflict("create", CallError(409, "Conflict")))
        .with_outcome(CertificateRead(cert(x5t=None)))
        .with_outcome(OperationRead(NOT_FOUND))
    )
    decision = reconcile(inp)
    assert "CreateCertificate" not in kinds(decision)
    assert decision.final
    assert decision.requeue_after is not None


def test_a_replaced_pending_operation_is_reported_not_adopted() -> None:
    status = {"operation": {"requestId": "r1", "status": "inProgress", "intent": intent()}}
    decision = reconcile(make(body(status), operation=op(request_id="someone-elses")))
    assert kinds(decision) == ["ReadCertificate"]
    assert decision.rung.startswith("operation vanished")
