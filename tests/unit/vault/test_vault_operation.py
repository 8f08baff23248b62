"""The pending-operation state machine as transition tables (pure, injected time)."""

from __future__ import annotations

import dataclasses

import pytest

from kvcert.vault import operation as ops
from kvcert.vault.errors import VaultError
from kvcert.vault.operation import Operation
from kvcert.vault.profiles import DOCUMENTED, SERVICE, Profile

T0 = 1_000_000.0


def started(kind: ops.Kind, delay: float = 20.0, issuer: str = "mydigicert") -> Operation:
    return ops.start(
        name="web",
        request_id="a" * 32,
        version="b" * 32,
        issuer_name=issuer,
        kind=kind,
        csr="MIIB",
        now=T0,
        ca_delay=delay,
    )


def with_(op: Operation, **changes: object) -> Operation:
    return dataclasses.replace(op, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("op", "now", "event"),
    [
        (started("self"), T0, "issue"),
        (started("ca"), T0 + 19.9, None),
        (started("ca"), T0 + 20, "issue"),
        (started("manual"), T0 + 10**6, None),
        (with_(started("ca"), cancel_at=T0 + 1), T0 + 1, "cancel"),
        (with_(started("ca"), cancel_at=T0 + 1), T0 + 0.5, None),
        (with_(started("ca", delay=1), cancel_at=T0 + 1.5), T0 + 2, "issue"),
        (with_(started("ca", delay=1), cancel_at=T0 + 1), T0 + 1, "cancel"),
        (with_(started("manual"), cancel_at=T0 + 0.5), T0 + 0.5, "cancel"),
        (with_(started("ca"), status=ops.COMPLETED), T0 + 100, None),
        (with_(started("ca"), status=ops.FAILED), T0 + 100, None),
    ],
    ids=[
        "a Self operation issues at once",
        "a simulated CA has not answered before its delay",
        "a simulated CA issues when its delay has passed",
        "an Unknown operation never issues by itself",
        "a requested cancellation takes effect when due",
        "a requested cancellation is not yet due",
        "issuance that comes first wins over a later cancellation",
        "a cancellation due at the same moment as issuance wins",
        "an Unknown operation can be cancelled",
        "a completed operation does nothing more",
        "a failed operation does nothing more",
    ],
)
def test_next_event(op: Operation, now: float, event: str | None) -> None:
    assert ops.next_event(op, now) == event


@pytest.mark.parametrize(
    ("profile", "status", "code", "message"),
    [
        (DOCUMENTED, 400, "BadParameter", None),
        (SERVICE, 403, "Forbidden", "Pending status must be in progress to allow update."),
    ],
    ids=[
        "documented: cancel after the end is 400 BadParameter",
        "service: cancel after the end is 403 Forbidden",
    ],
)
def test_cancel_after_the_end_is_the_profiles_error(
    profile: Profile, status: int, code: str, message: str | None
) -> None:
    done = ops.completed(started("ca"))
    with pytest.raises(VaultError) as caught:
        ops.request_cancel(done, T0, profile)
    assert (caught.value.status, caught.value.code) == (status, code)
    if message:
        assert caught.value.message == message


def test_cancel_in_progress_records_the_request_and_schedules_it_within_a_second() -> None:
    op = ops.request_cancel(started("ca"), T0 + 3, SERVICE)
    assert op.cancellation_requested is True
    assert op.status == ops.IN_PROGRESS
    assert op.cancel_at is not None
    assert T0 + 3 < op.cancel_at <= T0 + 4
    again = ops.request_cancel(op, T0 + 3.2, SERVICE)
    assert again.cancel_at == op.cancel_at


@pytest.mark.parametrize(
    ("op", "allowed"),
    [
        (started("manual", issuer="Unknown"), True),
        (started("ca"), False),
        (started("self", issuer="Self"), False),
        (ops.failed(started("ca"), "X", "no"), True),
        (ops.cancelled(started("ca")), True),
        (ops.completed(started("manual")), False),
    ],
    ids=[
        "merge completes an Unknown operation in progress",
        "merge is forbidden while a provider works",
        "merge is forbidden while Self works",
        "merge is allowed after a failure",
        "merge is allowed after a cancellation",
        "merge is refused once completed",
    ],
)
def test_merge_permission(op: Operation, allowed: bool) -> None:
    if allowed:
        ops.check_merge(op)
        return
    with pytest.raises(VaultError) as caught:
        ops.check_merge(op)
    assert caught.value.status == 403


def test_the_forbidden_merge_text_is_the_live_services() -> None:
    with pytest.raises(VaultError) as caught:
        ops.check_merge(started("ca"))
    assert caught.value.message == (
        "Merge is forbidden on pending object created with issuer : mydigicert while it is "
        "in progess."
    )


@pytest.mark.parametrize(
    ("op", "profile", "code"),
    [
        (started("ca"), DOCUMENTED, "Forbidden"),
        (started("ca"), SERVICE, "Conflict"),
        (ops.completed(started("ca")), SERVICE, None),
        (ops.cancelled(started("ca")), DOCUMENTED, None),
        (ops.failed(started("ca"), "X", "no"), DOCUMENTED, None),
        (None, SERVICE, None),
    ],
    ids=[
        "documented: a create over an operation in progress is 409 Forbidden",
        "service: a create over an operation in progress is 409 Conflict",
        "a completed operation is overwritten",
        "a cancelled operation is overwritten",
        "a failed operation is overwritten",
        "no operation at all is fine",
    ],
)
def test_overwrite(op: Operation | None, profile: Profile, code: str | None) -> None:
    if code is None:
        ops.ensure_replaceable(op, profile)
        return
    with pytest.raises(VaultError) as caught:
        ops.ensure_replaceable(op, profile)
    assert (caught.value.status, caught.value.code) == (409, code)


def test_failure_records_the_error_and_stops_the_clock() -> None:
    op = ops.failed(started("ca"), "CertificateRejected", "Domain not validated.")
    assert op.status == ops.FAILED
    assert op.error == {"code": "CertificateRejected", "message": "Domain not validated."}
    assert op.due is None


def test_delay_moves_the_issuers_answer() -> None:
    op = ops.delayed(started("ca"), T0 + 5, 100)
    assert ops.next_event(op, T0 + 20) is None
    assert ops.next_event(op, T0 + 105) == "issue"


def test_operation_documents_round_trip() -> None:
    op = ops.request_cancel(started("manual", issuer="Unknown"), T0, DOCUMENTED)
    assert Operation.from_doc(op.to_doc()) == op


@pytest.mark.parametrize(
    ("request_id", "match"),
    [(None, True), ("a" * 32, True), ("A" * 32, True), ("c" * 32, False)],
    ids=[
        "no filter matches",
        "the same id matches",
        "ids compare case-insensitively",
        "another id does not match",
    ],
)
def test_request_id_filter(request_id: str | None, match: bool) -> None:
    assert ops.matches(started("ca"), request_id) is match
