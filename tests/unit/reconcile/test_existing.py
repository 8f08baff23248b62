"""source: Existing (issue #19 §3): kvcert only reads and delivers; one transition per row.

Rows give an input (status, what was read in this round, the last look) and check the actions
decided, Ready as written, and the cost: a look is one ReadCertificate, an idle look writes no
status, and nothing but reads (and the output Secret's write) is ever asked for.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from kvcert.ctl import status as ctl_status
from kvcert.reconcile import (
    NOT_FOUND,
    Action,
    CallError,
    Decision,
    Emit,
    ReadCertificate,
    ReadSecret,
    SecretFacts,
    WriteSecret,
    reconcile,
    settle,
)
from kvcert.reconcile.existing import look_due
from kvcert.reconcile.lifecycle import next_refresh
from kvcert.reconcile.outcomes import CertificateRead
from kvcert.reconcile.patch import apply_merge_patch

from .support import NOW, UID, body, cert, condition, events, kinds, make

HOUR = timedelta(hours=1)
FOREIGN = {"owner": "team-x"}
ANCHOR = NOW + HOUR  # status.renewalTime: the refresh schedule's first look


def _t(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def existing(status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    return body(status, source="Existing", policy=None, **spec)


def delivered(**extra: Any) -> dict[str, Any]:
    """The status of an Existing certificate that delivered version v1 (x5t-1), as the
    operator wrote it (its first delivery), with the refresh schedule anchored at ANCHOR."""
    first = make(existing(), now=NOW - timedelta(hours=1)).with_outcome(CertificateRead(cert()))
    decision = reconcile(replace(first, secret=SecretFacts(True, True, "x5t-1", "v1")))
    status = apply_merge_patch({}, dict(decision.status_patch))
    status["renewalTime"] = _t(ANCHOR)
    status.update(extra)
    return status


HELD = SecretFacts(True, True, "x5t-1", "v1")
THEIRS = cert(tags=dict(FOREIGN))


@pytest.mark.parametrize(
    ("raw", "facts", "expected"),
    [
        pytest.param(
            existing(),
            {},
            ["ReadCertificate"],
            id="a new Existing certificate is looked at first",
        ),
        pytest.param(
            existing(delivered()),
            {"now": NOW + timedelta(minutes=5)},
            ["ReadCertificate"],
            id="the first round of an operator process looks (start-up or re-list)",
        ),
        pytest.param(
            existing(delivered()),
            {"now": NOW + timedelta(minutes=5), "last_look": NOW, "secret": HELD},
            [],
            id="between looks an in-sync certificate costs nothing",
        ),
        pytest.param(
            existing(delivered()),
            {"now": NOW + timedelta(minutes=5), "last_look": NOW},
            ["ReadSecret"],
            id="between looks the Secret is checked (from the watch's cache)",
        ),
        pytest.param(
            existing(delivered()),
            {"now": ANCHOR + timedelta(seconds=1), "last_look": NOW, "secret": HELD},
            ["ReadCertificate"],
            id="the refresh schedule's first point is a look",
        ),
        pytest.param(
            existing(delivered()),
            {"now": ANCHOR + 3 * HOUR + timedelta(minutes=1), "last_look": ANCHOR + 2 * HOUR},
            ["ReadCertificate"],
            id="every refreshInterval after it is a look",
        ),
        pytest.param(
            existing(delivered()),
            {
                "now": ANCHOR + 2 * HOUR + timedelta(minutes=30),
                "last_look": ANCHOR + 2 * HOUR,
                "secret": HELD,
            },
            [],
            id="a round between two points of the schedule does not look",
        ),
        pytest.param(
            existing(delivered(), generation=2),
            {"last_look": NOW, "secret": HELD},
            ["ReadCertificate"],
            id="a spec change is a look",
        ),
        pytest.param(
            existing(delivered(observedGeneration=1)),
            {"last_look": NOW, "secret": SecretFacts.absent()},
            ["Emit", "RecordIntent", "ReadCertificate"],
            id="a deleted Secret is reported, then a look rebuilds it",
        ),
        pytest.param(
            existing(delivered()),
            {"last_look": NOW, "secret": SecretFacts(True, False)},
            [],
            id="someone else's Secret is a conflict, never overwritten",
        ),
        pytest.param(
            existing(delivered(handledRequests=None)),
            {"last_look": NOW, "secret": HELD},
            [],
            id="no request annotation: no look",
        ),
    ],
)
def test_when_an_existing_certificate_looks(
    raw: dict[str, Any], facts: dict[str, Any], expected: list[str]
) -> None:
    decision = reconcile(make(raw, **facts))
    assert [k for k in kinds(decision) if k != "Emit"] == [k for k in expected if k != "Emit"]
    assert not any(k in kinds(decision) for k in ("CreateCertificate", "UpdateInPlace"))


def test_kvcert_io_renew_asks_for_a_look_and_is_acknowledged() -> None:
    raw = existing(delivered())
    raw["metadata"]["annotations"] = {"kvcert.io/renew": "now"}
    inp = make(raw, last_look=NOW, secret=HELD)
    assert kinds(reconcile(inp)) == ["ReadCertificate"]
    decision = reconcile(inp.with_outcome(CertificateRead(cert())))
    assert decision.status_patch["handledRequests"] == {"renew": "now"}
    assert "CreateCertificate" not in kinds(decision)


def test_an_idle_look_writes_no_status_and_sends_no_event() -> None:
    inp = make(existing(delivered()), now=ANCHOR + timedelta(seconds=5), last_look=NOW)
    inp = inp.with_outcome(CertificateRead(cert())).with_outcome(None)
    decision = reconcile(replace(inp, secret=HELD))
    assert decision.final
    assert decision.status_patch == {}
    assert decision.events == ()
    assert decision.requeue_after == pytest.approx((ANCHOR + HOUR - inp.now).total_seconds())


def test_the_first_delivery_is_ready_and_draws_the_refresh_schedule() -> None:
    inp = make(existing(), jitter=0.5).with_outcome(CertificateRead(cert()))
    decision = reconcile(replace(inp, secret=SecretFacts(True, True, "x5t-1", "v1")))
    ready = condition(dict(decision.status_patch))
    assert ready is not None
    assert (ready["status"], ready["reason"]) == ("True", "Issued")
    assert decision.status_patch["certificate"]["x5t"] == "x5t-1"
    # 1h by default, up to 10 % late: the jitter is drawn once, when the spec changes.
    assert decision.status_patch["renewalTime"] == _t(NOW + HOUR * 1.05)
    assert decision.requeue_after == pytest.approx(HOUR.total_seconds() * 1.05)
    assert "operation" not in decision.status_patch
    assert events(decision) == [("Normal", "Issued")]


def test_a_new_version_is_written_to_the_secret_and_told_once() -> None:
    inp = make(existing(delivered()), now=ANCHOR + timedelta(seconds=5), last_look=NOW)
    newer = cert(version="v2", x5t="x5t-2")
    inp = replace(inp.with_outcome(CertificateRead(newer)), secret=HELD)
    decision = reconcile(inp)
    assert kinds(decision) == ["WriteSecret"]
    write = decision.actions[0]
    assert isinstance(write, WriteSecret)
    assert (write.version, write.x5t, write.certificate_name) == ("v2", "x5t-2", "web")
    done = reconcile(replace(inp, secret=SecretFacts(True, True, "x5t-2", "v2")))
    assert done.status_patch["certificate"]["version"] == "v2"
    assert "renewalTime" not in done.status_patch, "the schedule stays: no drift, no extra write"
    assert events(done) == [("Normal", "Renewed")]


@pytest.mark.parametrize(
    ("found", "reason", "stalled", "words"),
    [
        pytest.param(
            NOT_FOUND,
            "CertificateNotFound",
            "False",
            "Key Vault has no certificate web",
            id="no certificate of that name: not found, looked for at the next refresh",
        ),
        pytest.param(
            cert(x5t=None, pending_id="https://kv/certificates/web/pending"),
            "CertificateNotIssued",
            "False",
            "only a pending version",
            id="only a pending version: not issued yet",
        ),
        pytest.param(
            cert(enabled=False),
            "CertificateDisabled",
            "True",
            "is disabled",
            id="the current version disabled: reported, not delivered",
        ),
        pytest.param(
            replace(cert(), not_after=NOW - timedelta(days=1)),
            "Expired",
            "True",
            "expired at",
            id="the current version expired: reported, not delivered",
        ),
    ],
)
def test_what_a_look_reports(found: Any, reason: str, stalled: str, words: str) -> None:
    inp = make(existing(delivered()), now=ANCHOR + timedelta(seconds=5), last_look=NOW)
    decision = reconcile(replace(inp.with_outcome(CertificateRead(found)), secret=HELD))
    assert decision.final
    ready = condition(dict(decision.status_patch))
    assert ready is not None
    assert (ready["status"], ready["reason"]) == ("False", reason)
    assert words in ready["message"]
    assert "Secret web-tls keeps serving version v1" in ready["message"]
    stall = condition(dict(decision.status_patch), "Stalled")
    assert stall is not None
    assert stall["status"] == stalled
    assert events(decision) == [("Warning", reason)]
    assert "certificate" not in decision.status_patch, "the delivered version stays on record"
    # Looked at again at the next point of the schedule, not in a loop.
    assert decision.requeue_after == pytest.approx((ANCHOR + HOUR - inp.now).total_seconds())
    assert not any(isinstance(a, (ReadSecret, WriteSecret)) for a in decision.actions)


def test_a_reported_problem_seen_again_costs_no_status_write_and_no_event() -> None:
    status = delivered()
    first = make(existing(status), now=ANCHOR + timedelta(seconds=5), last_look=NOW)
    reported = reconcile(first.with_outcome(CertificateRead(NOT_FOUND)))
    status = {**status, **reported.status_patch}
    again = make(existing(status), now=ANCHOR + HOUR + timedelta(seconds=5), last_look=ANCHOR)
    decision = reconcile(again.with_outcome(CertificateRead(NOT_FOUND)))
    assert decision.status_patch == {}
    assert decision.events == ()


def test_a_key_that_is_not_exportable_is_said_clearly() -> None:
    inp = make(existing(), jitter=0.0).with_outcome(CertificateRead(cert(exportable=False)))
    decision = reconcile(replace(inp, secret=SecretFacts(True, True, "x5t-1", "v1")))
    ready = condition(dict(decision.status_patch))
    assert ready is not None
    assert (ready["status"], ready["reason"]) == ("False", "KeyNotExportable")
    assert "without tls.key" in ready["message"]
    assert decision.status_patch["certificate"]["version"] == "v1", "the certificate is served"
    assert decision.requeue_after == pytest.approx(HOUR.total_seconds())


def test_managed_switched_to_existing_is_released_once_and_forgets_its_operation() -> None:
    status = delivered(operation={"requestId": "r1", "status": "completed"})
    inp = make(existing(status, generation=2), last_look=NOW, secret=HELD)
    first = reconcile(inp)
    assert kinds(first) == ["Emit", "ReadCertificate"]
    emit = first.actions[0]
    assert isinstance(emit, Emit)
    assert emit.reason == "Released"
    assert "nothing was deleted" in emit.message
    done = reconcile(inp.with_outcome(CertificateRead(cert())))
    assert done.status_patch["operation"] is None


def test_the_schedule_is_anchored_and_repeats_every_refresh_interval() -> None:
    inp = make(existing(delivered(), refreshInterval="15m"), now=ANCHOR + timedelta(minutes=20))
    assert next_refresh(inp, inp.spec) == ANCHOR + timedelta(minutes=30)  # type: ignore[arg-type]
    assert look_due(replace(inp, last_look=ANCHOR + timedelta(minutes=16)), inp.spec) is None  # type: ignore[arg-type]
    assert look_due(replace(inp, last_look=ANCHOR), inp.spec) == "refreshInterval"  # type: ignore[arg-type]


def test_a_whole_life_asks_key_vault_for_reads_only() -> None:
    """Start-up, idle rounds, looks, a new version made in Key Vault, a deletion there: the
    only Key Vault actions are ReadCertificate and (for a new version) WriteSecret's read."""
    raw = existing()
    vault: dict[str, Any] = {"cert": cert(tags=dict(FOREIGN)), "secret": SecretFacts.absent()}
    calls: Counter[str] = Counter()
    status_writes = 0
    last_look = None

    def round_at(now: datetime) -> Decision:
        nonlocal status_writes, last_look

        async def perform(_: Decision, action: Action) -> object:
            calls[type(action).__name__] += 1
            if isinstance(action, ReadCertificate):
                found = vault["cert"]
                return CallError(404, "CertificateNotFound", "") if found == NOT_FOUND else found
            if isinstance(action, ReadSecret):
                return vault["secret"]
            if isinstance(action, WriteSecret):
                vault["secret"] = SecretFacts(True, True, action.x5t, action.version)
            return None

        inp = make(raw, now=now, last_look=last_look)
        settled = asyncio.run(settle(inp, perform))
        if settled.decision.status_patch:
            status_writes += 1
            raw["status"] = apply_merge_patch(raw["status"], dict(settled.decision.status_patch))
        if settled.inp.last(CertificateRead) is not None:
            last_look = now
        return settled.decision

    round_at(NOW)
    assert (calls["ReadCertificate"], calls["WriteSecret"], status_writes) == (1, 1, 1)
    for minutes in (10, 20, 30):  # idle rounds between looks
        round_at(NOW + timedelta(minutes=minutes))
    assert (calls["ReadCertificate"], status_writes) == (1, 1)
    anchor = datetime.fromisoformat(raw["status"]["renewalTime"].replace("Z", "+00:00"))
    for look in range(3):  # idle looks: one GET each, nothing written
        round_at(anchor + HOUR * look + timedelta(seconds=1))
    assert (calls["ReadCertificate"], calls["WriteSecret"], status_writes) == (4, 1, 1)
    vault["cert"] = cert(version="v2", x5t="x5t-2", tags=dict(FOREIGN))
    round_at(anchor + HOUR * 3 + timedelta(seconds=1))
    assert (calls["ReadCertificate"], calls["WriteSecret"], status_writes) == (5, 2, 2)
    vault["cert"] = NOT_FOUND
    round_at(anchor + HOUR * 4 + timedelta(seconds=1))
    ready = next(item for item in raw["status"]["conditions"] if item["type"] == "Ready")
    assert ready["reason"] == "CertificateNotFound"
    assert vault["secret"].x5t == "x5t-2", "the delivered Secret keeps serving"
    allowed = {"ReadCertificate", "ReadSecret", "WriteSecret", "Emit", "RecordIntent"}
    assert set(calls) <= allowed, f"only reads (and the Secret) for source Existing: {calls}"
    assert raw["metadata"]["uid"] == UID


def test_kvcert_status_shows_the_source_and_the_next_refresh() -> None:
    raw = existing(delivered(), refreshInterval="15m")
    now = ANCHOR + timedelta(minutes=20)
    inp = make(raw, now=now)
    text = ctl_status.render(ctl_status.status_facts(raw, None, []), now)
    assert "Source:      Existing (kvcert only delivers; looks every 15m)" in text
    expected = next_refresh(inp, inp.spec)  # type: ignore[arg-type]
    assert f"Next refresh: {_t(expected).replace('+00:00', 'Z')} (in 10m)" in text
    assert "Next look:" not in text, "the anchor alone would be stale"
