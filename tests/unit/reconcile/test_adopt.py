"""spec.adopt (issue #19 §3): a Key Vault certificate kvcert does not manage becomes a
Certificate's only when asked, in place (tags and policy), with no new version; never one
another Certificate manages. Also the hole it closes: a certificate delivered by source Existing
goes through the ownership check when the Certificate turns Managed."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from kvcert.reconcile import (
    NOT_FOUND,
    Action,
    CallError,
    Decision,
    ReadCertificate,
    ReadSecret,
    RecordIntent,
    SecretFacts,
    WriteSecret,
    reconcile,
    settle,
)
from kvcert.reconcile.actions import UpdateInPlace
from kvcert.reconcile.lifecycle import TRIGGER_ADOPT, update_digest
from kvcert.reconcile.operation import MANAGED_BY_TAG, OWNER_TAG, UID_TAG, issuance_hash
from kvcert.reconcile.outcomes import CertificateRead, StatusWritten, UpdateRefused
from kvcert.reconcile.patch import apply_merge_patch

from .support import OURS, UID, body, cert, condition, events, kinds, make

THEIRS = {"owner": "team-x", "env": "prod"}
ANOTHERS = {MANAGED_BY_TAG: "kvcert", UID_TAG: "other-uid", OWNER_TAG: "team-b/api"}
HELD = SecretFacts(True, True, "x5t-1", "v1")


def existing_delivered() -> dict[str, Any]:
    """What source Existing leaves in status: a delivered version, no operation, no intent."""
    return {
        "observedGeneration": 1,
        "conditions": [{"type": "Ready", "status": "True", "reason": "Issued"}],
        "certificate": {"id": "https://kv/certificates/web/v1", "version": "v1", "x5t": "x5t-1"},
        "renewalTime": "2026-11-22T13:00:00Z",
    }


def run(
    raw: dict[str, Any], found: Any, secret: SecretFacts = HELD, refuse: CallError | None = None
) -> tuple[Decision, Counter]:
    """One whole round against a vault holding `found` (NOT_FOUND: nothing); status written.
    `refuse`: the answer to an in-place update (PATCH of tags and policy), else accepted."""
    calls: Counter[str] = Counter()
    state: dict[str, Any] = {"secret": secret}

    async def perform(_: Decision, action: Action) -> object:
        calls[type(action).__name__] += 1
        match action:
            case RecordIntent(patch=patch):
                raw["status"] = apply_merge_patch(raw.get("status") or {}, dict(patch))
                return None
            case ReadCertificate():
                return CallError(404, "CertificateNotFound", "") if found == NOT_FOUND else found
            case ReadSecret():
                return state["secret"]
            case WriteSecret():
                state["secret"] = SecretFacts(True, True, action.x5t, action.version)
                return None
            case UpdateInPlace() if refuse is not None:
                return refuse
        return None

    settled = asyncio.run(settle(make(raw), perform))
    raw["status"] = apply_merge_patch(raw.get("status") or {}, dict(settled.decision.status_patch))
    return settled.decision, calls


@pytest.mark.parametrize(
    ("raw", "found", "reason", "words"),
    [
        pytest.param(
            body(),
            cert(tags=dict(THEIRS)),
            "NotOwned",
            "set spec.adopt: true to adopt it",
            id="without adopt: NotOwned, and the message names spec.adopt",
        ),
        pytest.param(
            body(adopt=True),
            cert(tags=dict(ANOTHERS)),
            "NotOwned",
            "is Certificate team-b/api's: spec.adopt never takes",
            id="adopt: true never takes another Certificate's certificate",
        ),
        pytest.param(
            body(),
            cert(tags=dict(ANOTHERS)),
            "NotOwned",
            "is Certificate team-b/api's",
            id="without adopt: another Certificate's is named",
        ),
        pytest.param(
            body(existing_delivered(), generation=2),
            cert(tags=dict(THEIRS)),
            "NotOwned",
            "set spec.adopt: true",
            id="Existing turned Managed without adopt goes through the ownership check",
        ),
        pytest.param(
            body(adopt=True),
            cert(x5t=None, tags=dict(THEIRS)),
            "NotOwned",
            "only a pending version",
            id="adopt waits for an issued version",
        ),
    ],
)
def test_refusals(raw: dict[str, Any], found: Any, reason: str, words: str) -> None:
    decision, calls = run(raw, found)
    ready = condition(dict(decision.status_patch))
    assert ready is not None
    assert (ready["status"], ready["reason"]) == ("False", reason)
    assert words in ready["message"]
    stalled = condition(dict(decision.status_patch), "Stalled")
    assert stalled is not None
    assert stalled["status"] == "True"
    assert set(calls) <= {"ReadCertificate", "Emit"}, f"nothing written: {calls}"


def test_adopt_records_the_intent_then_tags_and_applies_the_policy() -> None:
    inp = make(body(adopt=True))
    assert kinds(reconcile(inp)) == ["ReadCertificate"]
    theirs = cert(tags=dict(THEIRS))
    decision = reconcile(inp.with_outcome(CertificateRead(theirs)))
    assert kinds(decision) == ["RecordIntent", "UpdateInPlace"]
    record, update = decision.actions
    assert isinstance(record, RecordIntent)
    assert isinstance(update, UpdateInPlace)
    intent = record.patch["operation"]["intent"]
    assert intent["trigger"] == TRIGGER_ADOPT
    assert intent["issuanceHash"] == issuance_hash(inp, inp.spec)  # type: ignore[arg-type]
    assert update.tags is not None
    assert update.tags["env"] == "prod", "the certificate's own tags are kept"
    assert (update.tags[MANAGED_BY_TAG], update.tags[UID_TAG]) == ("kvcert", UID)
    assert update.tags[OWNER_TAG] == "team-a/web"
    assert update.policy == inp.spec.policy  # type: ignore[union-attr]
    assert update.digest == update_digest(inp.spec)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(body(adopt=True), id="a new Managed Certificate with adopt: true"),
        pytest.param(
            body(existing_delivered(), generation=2, adopt=True),
            id="an Existing Certificate turned Managed with adopt: true",
        ),
    ],
)
def test_adoption_delivers_the_current_version_and_creates_nothing(raw: dict[str, Any]) -> None:
    decision, calls = run(raw, cert(tags=dict(THEIRS)), secret=SecretFacts.absent())
    assert calls["CreateCertificate"] == 0
    assert calls["UpdateInPlace"] == 1
    assert calls["RecordIntent"] == 1
    ready = condition(dict(raw["status"]))
    assert ready is not None
    assert (ready["status"], ready["reason"]) == ("True", "Issued")
    assert raw["status"]["certificate"]["version"] == "v1"
    assert raw["status"]["appliedUpdate"] == update_digest(make(raw).spec)  # type: ignore[arg-type]
    adopted = [e for e in decision.events if e.reason == "Adopted"]
    assert len(adopted) == 1
    assert "current version v1" in adopted[0].message
    # The next round finds nothing to create: needs_create is false after an adoption.
    again, calls = run(raw, cert(tags={**THEIRS, **OURS}))
    assert calls["CreateCertificate"] == 0
    assert calls["UpdateInPlace"] == 0
    assert again.status_patch == {}


def test_a_crash_after_the_intent_finishes_the_adoption_without_a_create() -> None:
    raw = body(adopt=True)
    inp = make(raw).with_outcome(CertificateRead(cert(tags=dict(THEIRS))))
    record = reconcile(inp).actions[0]
    assert isinstance(record, RecordIntent)
    raw["status"] = apply_merge_patch({}, dict(record.patch))  # then the operator died
    decision, calls = run(raw, cert(tags=dict(THEIRS)), secret=SecretFacts.absent())
    assert calls["CreateCertificate"] == 0
    assert calls["UpdateInPlace"] == 1
    assert ("Normal", "Adopted") in events(decision)


def test_renewal_after_an_adoption_creates_the_next_version() -> None:
    raw = body(adopt=True)
    run(raw, cert(tags=dict(THEIRS)), secret=SecretFacts.absent())
    raw["metadata"]["annotations"] = {"kvcert.io/renew": "1"}
    decision = reconcile(make(raw, secret=HELD))
    assert kinds(decision) == ["RecordIntent", "CreateCertificate"]


def test_own_certificate_switched_back_from_existing_is_taken_back_without_a_version() -> None:
    raw = body(existing_delivered(), generation=2)
    decision, calls = run(raw, cert(tags=dict(OURS)))
    assert calls["CreateCertificate"] == 0
    assert calls["UpdateInPlace"] == 1
    assert condition(dict(raw["status"]))["reason"] == "Issued"  # type: ignore[index]
    assert ("Normal", "Adopted") in events(decision)


def test_a_free_name_with_adopt_is_created_as_usual() -> None:
    inp = make(body(adopt=True))
    decision = reconcile(inp.with_outcome(CertificateRead(NOT_FOUND)))
    assert kinds(decision) == ["RecordIntent", "CreateCertificate"]


def test_an_adoption_refused_by_key_vault_is_reported_and_not_retried_in_a_loop() -> None:
    inp = make(body(adopt=True)).with_outcome(CertificateRead(cert(tags=dict(THEIRS))))
    record = reconcile(inp).actions[0]
    assert isinstance(record, RecordIntent)
    inp = inp.with_outcome(StatusWritten(record.patch))
    refused = UpdateRefused(CallError(400, "BadParameter", "Invalid curve name"))
    decision = reconcile(inp.with_outcome(refused))
    assert decision.final
    ready = condition(dict(decision.status_patch))
    assert ready is not None
    assert ready["reason"] == "UpdateRefused"
    assert "Invalid curve name" in ready["message"]
    assert "UpdateInPlace" not in kinds(decision), "a refusal is not asked again in a loop"


def test_a_refused_adoption_is_never_delivered_as_ours_and_an_edit_tries_again() -> None:
    raw = body(adopt=True)
    theirs = cert(tags=dict(THEIRS))
    refusal = CallError(400, "BadParameter", "Invalid curve name")
    _, calls = run(raw, theirs, secret=SecretFacts.absent(), refuse=refusal)
    assert (calls["UpdateInPlace"], calls["WriteSecret"]) == (1, 0)
    assert condition(dict(raw["status"]))["reason"] == "UpdateRefused"  # type: ignore[index]

    # Later rounds (a re-list, a Secret event): still refused, nothing asked, nothing delivered.
    _, calls = run(raw, theirs, secret=SecretFacts.absent(), refuse=refusal)
    assert (calls["UpdateInPlace"], calls["WriteSecret"], calls["CreateCertificate"]) == (0, 0, 0)
    assert condition(dict(raw["status"]))["reason"] == "UpdateRefused"  # type: ignore[index]
    assert condition(dict(raw["status"]))["status"] == "False"  # type: ignore[index]

    # An edit of the policy: the adoption is tried again, and this time accepted.
    raw["spec"]["policy"]["subject"] = "CN=edited.example.com"
    raw["metadata"]["generation"] = 2
    edited, calls = run(raw, theirs, secret=SecretFacts.absent())
    assert (calls["UpdateInPlace"], calls["CreateCertificate"]) == (1, 0)
    assert ("Normal", "Adopted") in events(edited)
