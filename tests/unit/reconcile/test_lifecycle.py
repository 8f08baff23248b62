"""The lifecycle of an issued certificate (issue #15): kvcert-driven renewal, the request
annotations, in-place updates, expiry, looks at Key Vault at status.renewalTime, and what
happens out of band. One transition per case: status + observations -> actions, conditions."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from kvcert.reconcile import NOT_FOUND, SecretFacts, reconcile
from kvcert.reconcile.actions import CreateCertificate, RecordIntent, UpdateInPlace, WriteSecret
from kvcert.reconcile.lifecycle import update_digest
from kvcert.reconcile.operation import issuance_hash
from kvcert.reconcile.outcomes import (
    CertificateRead,
    SecretWritten,
    StatusWritten,
    UpdatedInPlace,
)

from .support import NOW, body, cert, condition, events, intent, kinds, make, op

DAY = timedelta(days=1)
IN_SYNC = SecretFacts(True, True, "x5t-1", "v1")


def stamp(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def issued(**extra: Any) -> dict[str, Any]:
    """A Ready status for version v1, valid NOW .. NOW + 365 days, last looked at NOW."""
    status: dict[str, Any] = {
        "observedGeneration": 1,
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Issued",
                "message": "certificate version v1 is in Secret web-tls",
                "observedGeneration": 1,
                "lastTransitionTime": "2026-11-22T12:00:00Z",
            },
            *(
                {
                    "type": kind,
                    "status": "False",
                    "reason": "Issued",
                    "message": "",
                    "observedGeneration": 1,
                    "lastTransitionTime": "2026-11-22T12:00:00Z",
                }
                for kind in ("Issuing", "Stalled", "Reconciling")
            ),
        ],
        "operation": {"requestId": "r1", "status": "completed", "intent": _intent()},
        "certificate": {
            "id": "https://kv/certificates/web/v1",
            "version": "v1",
            "x5t": "x5t-1",
            "notBefore": stamp(NOW),
            "notAfter": stamp(NOW + 365 * DAY),
        },
        "renewalTime": stamp(NOW + 292 * DAY),
    }
    status.update(extra)
    return status


def _intent(**kw: Any) -> dict[str, Any]:
    """A create intent for the default spec, with its issuance hash (lifetime actions aside)."""
    probe = make(body())
    return intent(issuanceHash=issuance_hash(probe, probe.spec), **kw)  # type: ignore[arg-type]


def annotated(raw: dict[str, Any], **annotations: str) -> dict[str, Any]:
    raw["metadata"]["annotations"] = {f"kvcert.io/{k}": v for k, v in annotations.items()}
    return raw


def at(offset: timedelta, raw: dict[str, Any], **facts: Any) -> Any:
    return make(raw, now=NOW + offset, **facts)


def test_renew_before_creates_the_next_version_and_stays_ready() -> None:
    decision = reconcile(at(306 * DAY, body(issued(), renewBefore="1440h")))
    assert kinds(decision) == ["RecordIntent", "CreateCertificate"]
    record = decision.actions[0]
    assert isinstance(record, RecordIntent)
    assert record.patch["operation"]["intent"]["trigger"] == "renewBefore"
    ready = condition(dict(record.patch), "Ready")
    issuing = condition(dict(record.patch), "Issuing")
    assert ready is None or ready["status"] == "True"  # the delivered version still serves
    assert issuing is not None
    assert (issuing["status"], issuing["reason"]) == ("True", "Renewing")


@pytest.mark.parametrize(
    ("offset", "spec", "expected"),
    [
        pytest.param(10 * DAY, {"renewBefore": "1440h"}, [], id="before renewBefore: nothing"),
        pytest.param(
            306 * DAY,
            {"renewBefore": "1440h"},
            ["RecordIntent", "CreateCertificate"],
            id="60 days before notAfter with renewBefore 1440h: creates",
        ),
        pytest.param(
            250 * DAY,
            {"renewBeforePercentage": 33},
            ["RecordIntent", "CreateCertificate"],
            id="a third of the lifetime left with renewBeforePercentage 33: creates",
        ),
        pytest.param(
            200 * DAY, {"renewBeforePercentage": 33}, [], id="more than a third left: nothing"
        ),
    ],
)
def test_renew_before_points(offset: timedelta, spec: dict[str, Any], expected: list[str]) -> None:
    decision = reconcile(at(offset, body(issued(), **spec), secret=IN_SYNC))
    assert kinds(decision) == expected


def test_a_failed_renewal_is_not_repeated_by_itself() -> None:
    tried = intent(recordedAt=stamp(NOW + 310 * DAY), marker="m2")
    status = issued(operation={"requestId": "r2", "status": "failed", "intent": tried})
    decision = reconcile(at(311 * DAY, body(status, renewBefore="1440h"), secret=IN_SYNC))
    assert "CreateCertificate" not in kinds(decision)
    ready = condition(dict(decision.status_patch), "Ready")
    assert ready is None or ready["status"] == "True"  # still serving v1
    stalled = condition(dict(decision.status_patch), "Stalled")
    assert stalled is not None
    assert (stalled["status"], stalled["reason"]) == ("True", "OperationFailed")


def test_the_renew_annotation_renews_once_per_value() -> None:
    raw = annotated(body(issued()), renew="2026-11-23")
    first = reconcile(at(DAY, raw, secret=IN_SYNC))
    assert kinds(first) == ["RecordIntent", "CreateCertificate"]
    record = first.actions[0]
    assert isinstance(record, RecordIntent)
    assert record.patch["handledRequests"] == {"renew": "2026-11-23"}
    assert record.patch["operation"]["intent"]["trigger"] == "renew"
    done = issued(handledRequests={"renew": "2026-11-23"})
    again = reconcile(at(2 * DAY, annotated(body(done), renew="2026-11-23"), secret=IN_SYNC))
    assert kinds(again) == []


def test_a_renew_asked_while_an_operation_runs_is_absorbed_by_it() -> None:
    status = issued(operation={"requestId": "r2", "status": "inProgress", "intent": intent()})
    raw = annotated(body(status), renew="now")
    decision = reconcile(at(DAY, raw, operation=_op("inProgress", "r2"), secret=IN_SYNC))
    assert "CreateCertificate" not in kinds(decision)
    assert decision.status_patch["handledRequests"] == {"renew": "now"}


@pytest.mark.parametrize(
    ("operation", "facts", "creates"),
    [
        pytest.param({"status": "failed"}, {}, True, id="retries a failed operation"),
        pytest.param({"status": "cancelled"}, {}, True, id="retries a cancelled operation"),
        pytest.param({"status": "deleted"}, {}, True, id="retries a deleted operation"),
        pytest.param({"status": "completed"}, {"secret": IN_SYNC}, False, id="nothing to retry"),
    ],
)
def test_the_retry_annotation(
    operation: dict[str, Any], facts: dict[str, Any], creates: bool
) -> None:
    status = issued(operation={"requestId": "r1", "intent": intent(), **operation})
    decision = reconcile(at(DAY, annotated(body(status), retry="1"), **facts))
    assert ("CreateCertificate" in kinds(decision)) is creates
    if not creates:
        assert decision.status_patch["handledRequests"] == {"retry": "1"}


def test_retry_after_a_certificate_deleted_in_key_vault() -> None:
    status = issued()
    for item in status["conditions"]:
        item["reason"] = "CertificateDeleted"
    decision = reconcile(at(DAY, annotated(body(status), retry="x")))
    assert kinds(decision) == ["RecordIntent", "CreateCertificate"]
    create = decision.actions[1]
    assert isinstance(create, CreateCertificate)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param(
            {"tags": {"team": "a"}},
            ["UpdateInPlace"],
            id="new tags are applied in place",
        ),
        pytest.param(
            {
                "policy": {
                    "issuer": {"name": "Self"},
                    "subject": "CN=web.example.com",
                    "dnsNames": ["web.example.com"],
                    "key": {"type": "EC", "curve": "P-256"},
                    "lifetimeActions": [
                        {"trigger": {"daysBeforeExpiry": 30}, "action": "AutoRenew"}
                    ],
                }
            },
            ["UpdateInPlace"],
            id="new lifetimeActions are applied in place, no new version",
        ),
        pytest.param(
            {
                "policy": {
                    "issuer": {"name": "Self"},
                    "subject": "CN=other.example.com",
                    "key": {"type": "EC", "curve": "P-256"},
                }
            },
            ["RecordIntent", "CreateCertificate"],
            id="a new subject needs a new version",
        ),
    ],
)
def test_spec_changes(spec: dict[str, Any], expected: list[str]) -> None:
    probe = make(body(issued()))
    applied = update_digest(probe.spec)  # type: ignore[arg-type]
    raw = body(issued(appliedUpdate=applied), generation=2, **spec)
    decision = reconcile(at(DAY, raw, secret=IN_SYNC))
    assert kinds(decision) == expected
    if expected == ["UpdateInPlace"]:
        update = decision.actions[0]
        assert isinstance(update, UpdateInPlace)
        # Only the part that changed is sent: one PATCH, not two.
        if "tags" in spec:
            assert update.tags is not None
            assert update.tags["managed-by"] == "kvcert"
            assert update.lifetime_actions is None
        else:
            assert update.tags is None
            assert update.lifetime_actions is not None


def test_an_update_applied_is_recorded_with_an_event() -> None:
    raw = body(issued(appliedUpdate="old"), generation=2, tags={"team": "a"})
    inp = at(DAY, raw, secret=IN_SYNC).with_outcome(UpdatedInPlace("d1"))
    decision = reconcile(inp)
    assert decision.status_patch["appliedUpdate"] == "d1"
    assert ("Normal", "Updated") in events(decision)


@pytest.mark.parametrize(
    ("offset", "ready", "reason"),
    [
        pytest.param(364 * DAY, "True", "Issued", id="a day before notAfter: Ready"),
        pytest.param(365 * DAY, "False", "Expired", id="at notAfter: Expired"),
    ],
)
def test_expiry(offset: timedelta, ready: str, reason: str) -> None:
    status = issued(renewalTime=stamp(NOW + 400 * DAY))
    decision = reconcile(at(offset, body(status), secret=IN_SYNC))
    got = condition(dict(decision.status_patch), "Ready")
    if ready == "True":
        assert got is None  # unchanged: no write
    else:
        assert got is not None
        assert (got["status"], got["reason"]) == (ready, reason)
        assert ("Warning", "Expired") in events(decision)


def test_the_next_round_is_the_expiry_when_it_comes_first() -> None:
    status = issued(renewalTime=stamp(NOW + 400 * DAY))
    decision = reconcile(at(300 * DAY, body(status), secret=IN_SYNC))
    assert decision.requeue_after == pytest.approx((65 * DAY).total_seconds())


def test_the_look_reads_key_vault_at_renewal_time() -> None:
    decision = reconcile(at(293 * DAY, body(issued()), secret=IN_SYNC))
    assert kinds(decision) == ["ReadCertificate"]


def test_the_look_delivers_a_version_made_elsewhere() -> None:
    inp = at(293 * DAY, body(issued()), secret=IN_SYNC, certificate=cert("v2", "x5t-2"))
    assert kinds(reconcile(inp)) == ["WriteSecret"]
    decision = reconcile(inp.with_outcome(SecretWritten("x5t-2", "v2")))
    assert decision.status_patch["certificate"]["version"] == "v2"
    assert ("Normal", "Renewed") in events(decision)


def test_a_look_that_finds_nothing_new_comes_back_in_an_hour() -> None:
    inp = at(293 * DAY, body(issued()), secret=IN_SYNC, certificate=cert())
    decision = reconcile(inp.with_outcome(CertificateRead(cert())))
    renewal = datetime.fromisoformat(decision.status_patch["renewalTime"])
    assert renewal == NOW + 293 * DAY + timedelta(hours=1)


def test_refresh_interval_schedules_the_next_look() -> None:
    raw = body(issued(renewalTime=None), refreshInterval="1h")
    inp = at(DAY, raw, secret=IN_SYNC, certificate=cert())
    decision = reconcile(inp.with_outcome(CertificateRead(cert())))
    assert decision.status_patch["renewalTime"] == stamp(NOW + DAY + timedelta(hours=1))


def test_a_certificate_deleted_in_key_vault_is_reported_not_recreated() -> None:
    inp = at(293 * DAY, body(issued()), secret=IN_SYNC, certificate=NOT_FOUND)
    decision = reconcile(inp)
    assert kinds(decision) == ["Emit"]
    ready = condition(dict(decision.status_patch), "Ready")
    assert ready is not None
    assert (ready["status"], ready["reason"]) == ("False", "CertificateDeleted")
    assert ("Warning", "CertificateDeleted") in events(decision)


@pytest.mark.parametrize(
    ("facts", "reason"),
    [
        pytest.param(SecretFacts.absent(), "SecretMissing", id="a deleted Secret"),
        pytest.param(
            SecretFacts(True, True, "x5t-1", "v1", intact=False),
            "SecretMismatch",
            id="an edited Secret",
        ),
    ],
)
def test_a_lost_secret_is_reported_then_rebuilt(facts: SecretFacts, reason: str) -> None:
    decision = reconcile(at(DAY, body(issued()), secret=facts))
    assert kinds(decision) == ["Emit", "RecordIntent", "ReadCertificate"]
    record = decision.actions[1]
    assert isinstance(record, RecordIntent)
    ready = condition(dict(record.patch), "Ready")
    assert ready is not None
    assert (ready["status"], ready["reason"]) == ("False", reason)


def _op(status: str, request_id: str) -> Any:
    return op(status, request_id)


@pytest.mark.parametrize(
    "operation",
    [
        pytest.param({"requestId": "r2", "status": "inProgress"}, id="while a renewal runs"),
        pytest.param({"requestId": "r2", "status": "failed"}, id="after a renewal failed"),
        pytest.param({"requestId": "r2", "status": "deleted"}, id="after it was deleted"),
    ],
)
def test_the_serving_version_keeps_its_secret(operation: dict[str, Any]) -> None:
    status = issued(operation={"intent": _intent(), **operation})
    polled = {"operation": _op("inProgress", "r2")} if operation["status"] == "inProgress" else {}
    read = reconcile(at(DAY, body(status), **polled))
    assert kinds(read) == ["ReadSecret"]
    lost = reconcile(at(DAY, body(status), secret=SecretFacts.absent(), **polled))
    assert kinds(lost) == ["Emit", "RecordIntent", "WriteSecret"]
    write = lost.actions[2]
    assert (write.version, write.x5t) == ("v1", "x5t-1")  # type: ignore[union-attr]
    inp = at(DAY, body(status), secret=SecretFacts.absent(), **polled)
    for action in lost.actions[1:]:
        inp = inp.with_outcome(
            SecretWritten("x5t-1", "v1")
            if isinstance(action, WriteSecret)
            else StatusWritten(action.patch)  # type: ignore[union-attr]
        )
    after = reconcile(inp)
    ready = condition(dict(after.status_patch), "Ready")
    assert ready is not None
    assert ready["status"] == "True"  # rebuilt: the serving version is Ready again
