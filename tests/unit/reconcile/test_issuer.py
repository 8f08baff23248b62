"""kvcert.reconcile.issuer.decide as a state-transition table: one input state (spec, status,
what Key Vault has, the write's outcome) -> the write, the status and the events (issue #19 §2)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import pytest

from kvcert.api.issuer import CertificateIssuer, CertificateIssuerStatus
from kvcert.reconcile.issuer import (
    Administrator,
    IssuerInput,
    IssuerSettings,
    ObservedIssuer,
    PasswordFacts,
    Write,
    WriteOutcome,
    applied_hash,
    backoff,
    decide,
    desired_settings,
    password_text,
    record,
)

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
URL = "https://kv.vault.local:8443"
OTHER_URL = "https://other.vault.local:8443"
PASSWORD = PasswordFacts(version="uid-1/41")
SPEC = {
    "vaultRef": {"name": "main"},
    "provider": "DigiCert",
    "accountId": "acct",
    "passwordSecretRef": {"name": "account", "key": "password"},
    "organizationId": "org",
    "administrators": [{"firstName": "Ada", "email": "ada@example.com"}],
}


def make(spec_changes: dict[str, Any] | None = None, **changes: Any) -> IssuerInput:
    resource = CertificateIssuer.from_body(
        {
            "metadata": {"name": "mydigicert", "generation": 2},
            "spec": {**SPEC, **(spec_changes or {})},
        }
    )
    base = IssuerInput(
        kind="CertificateIssuer",
        name="mydigicert",
        issuer_name="mydigicert",
        generation=2,
        now=NOW,
        status=CertificateIssuerStatus(),
        spec=resource.spec,
        password=PASSWORD,
        vault_url=URL,
    )
    return replace(base, **changes)


def settings(**changes: Any) -> IssuerSettings:
    wanted = IssuerSettings(
        provider="DigiCert",
        account_id="acct",
        organization_id="org",
        administrators=(Administrator(first_name="Ada", email="ada@example.com"),),
    )
    return replace(wanted, **changes)


def observed(**changes: Any) -> ObservedIssuer:
    return ObservedIssuer(
        id="https://kv/certificates/issuers/mydigicert", settings=settings(**changes)
    )


MANAGED = CertificateIssuerStatus(
    managed=True, vault_url=URL, applied_hash=applied_hash(settings(), PASSWORD.version)
)
ELSEWHERE = CertificateIssuerStatus.model_validate({**MANAGED.to_wire(), "vaultURL": OTHER_URL})
"""Managed, but in another vault (the KeyVault's url was changed under it)."""
NO_ORG = {"organizationId": None, "administrators": None}


@dataclass(frozen=True)
class Case:
    inp: IssuerInput
    write: Write
    ready: tuple[str, str] | None  # (status, reason) of Ready after the round, None: no status
    events: tuple[str, ...] = ()
    record: bool = False
    retried: bool = False


CASES = {
    "an issuer absent from Key Vault is recorded as ours, then PUT": Case(
        make(), Write.PUT, None, record=True
    ),
    "an existing issuer of ours that differs is PUT whole (never PATCHed)": Case(
        make(status=MANAGED, observed=observed(enabled=False)), Write.PUT, None
    ),
    "fields removed from the spec but kept by Key Vault are PUT away": Case(
        make(NO_ORG, status=MANAGED, observed=observed()), Write.PUT, None
    ),
    "an issuer of ours that matches writes nothing (an idle re-list)": Case(
        make(status=MANAGED, observed=observed()), Write.NONE, ("True", "Configured")
    ),
    "a rotated password (a new resourceVersion) is PUT though Key Vault looks the same": Case(
        make(status=MANAGED, observed=observed(), password=PasswordFacts(version="uid-1/42")),
        Write.PUT,
        None,
    ),
    "a new resourceVersion holding the password already applied (a label edit) is not sent": Case(
        make(
            status=MANAGED,
            observed=observed(),
            password=PasswordFacts(version="uid-1/42", applied=True),
        ),
        Write.NONE,
        ("True", "Configured"),
    ),
    "ours in another vault, and here someone else's: NotOwned, not written": Case(
        make(status=ELSEWHERE, observed=observed()),
        Write.NONE,
        ("False", "NotOwned"),
        events=("NotOwned",),
    ),
    "ours in another vault, and absent here: recorded for this vault, then PUT": Case(
        make(status=ELSEWHERE), Write.PUT, None, record=True
    ),
    "an issuer another live resource manages is NotOwned, adopt or not": Case(
        make(
            {"adopt": True},
            observed=observed(),
            claimed_by="ClusterCertificateIssuer digicert",
        ),
        Write.NONE,
        ("False", "NotOwned"),
        events=("NotOwned",),
    ),
    "ours on record but absent (a crash before the PUT) is PUT without recording again": Case(
        make(status=CertificateIssuerStatus(managed=True, vault_url=URL)), Write.PUT, None
    ),
    "someone else's issuer is not written: NotOwned, stalled": Case(
        make(observed=observed(provider="GlobalSign")),
        Write.NONE,
        ("False", "NotOwned"),
        events=("NotOwned",),
    ),
    "someone else's issuer with spec.adopt is recorded as ours and PUT": Case(
        make({"adopt": True}, observed=observed(provider="GlobalSign")),
        Write.PUT,
        None,
        record=True,
    ),
    "an invalid spec reads and writes nothing, stalled": Case(
        make(spec=None, invalid="spec.provider: bad"),
        Write.NONE,
        ("False", "InvalidSpec"),
        events=("InvalidSpec",),
    ),
    "a vault that cannot be used is retried": Case(
        make(vault_problem="KeyVault main does not exist"),
        Write.NONE,
        ("False", "VaultNotReady"),
        events=("VaultNotReady",),
        retried=True,
    ),
    "a missing password Secret is retried": Case(
        make(password=PasswordFacts(problem="password Secret a/account does not exist")),
        Write.NONE,
        ("False", "PasswordNotFound"),
        events=("PasswordNotFound",),
        retried=True,
    ),
    "a failed read of the issuer is retried": Case(
        make(read_error="503 ServiceUnavailable"),
        Write.NONE,
        ("False", "KeyVaultError"),
        events=("KeyVaultError",),
        retried=True,
    ),
    "a successful write is Configured": Case(
        make(outcome=WriteOutcome(ok=True, observed=observed())),
        Write.NONE,
        ("True", "Configured"),
        events=("Configured",),
    ),
    "a successful write over someone else's issuer with adopt is Adopted, then Configured": Case(
        make(
            {"adopt": True},
            observed=observed(provider="GlobalSign"),
            outcome=WriteOutcome(ok=True, observed=observed()),
        ),
        Write.NONE,
        ("True", "Configured"),
        events=("Adopted", "Configured"),
    ),
    "a write Key Vault refuses as invalid is Rejected and stalled": Case(
        make(outcome=WriteOutcome(ok=False, error="400 BadParameter", rejected=True)),
        Write.NONE,
        ("False", "Rejected"),
        events=("Rejected",),
    ),
    "a write Key Vault answers with other settings is Rejected, not Configured": Case(
        make(outcome=WriteOutcome(ok=True, observed=observed(organization_id=None))),
        Write.NONE,
        ("False", "Rejected"),
        events=("Rejected",),
    ),
    "a write that failed otherwise is retried": Case(
        make(outcome=WriteOutcome(ok=False, error="timed out")),
        Write.NONE,
        ("False", "KeyVaultError"),
        events=("KeyVaultError",),
        retried=True,
    ),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_decide(case: Case) -> None:
    decision = decide(case.inp)
    assert decision.write is case.write
    assert decision.record_managed is case.record
    assert tuple(event[1] for event in decision.events) == case.events
    assert (decision.retry_after is not None) is case.retried
    if case.ready is None:
        assert decision.status is None
        return
    status = decision.body
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    stalled = next(c for c in status["conditions"] if c["type"] == "Stalled")
    assert (ready["status"], ready["reason"]) == case.ready
    assert ready["observedGeneration"] == status["observedGeneration"] == 2
    assert stalled["status"] == (
        "True" if case.ready[1] in {"NotOwned", "InvalidSpec", "Rejected"} else "False"
    )


def test_an_idle_re_list_writes_no_status_when_status_already_says_it() -> None:
    first = decide(make(status=MANAGED, observed=observed()))
    assert first.status is not None  # the first time: conditions are new
    again = decide(
        make(status=CertificateIssuerStatus.model_validate(first.body), observed=observed())
    )
    assert again.status is None
    assert again.events == ()


def test_a_failure_repeated_posts_one_event_and_keeps_the_transition_time() -> None:
    first = decide(make(vault_problem="down"))
    later = replace(make(vault_problem="down"), now=NOW.replace(hour=13))
    second = decide(
        replace(later, status=CertificateIssuerStatus.model_validate(first.body), attempt=1)
    )
    assert second.events == ()
    assert second.status is None, "the same failure again writes no status (no echo, no round)"
    ready = next(c for c in second.body["conditions"] if c["type"] == "Ready")
    assert ready["lastTransitionTime"] == "2026-11-30T12:00:00Z"
    assert second.retry_after is not None
    assert first.retry_after is not None
    assert second.retry_after > first.retry_after


def test_a_failure_with_a_new_message_writes_status_and_the_count_of_failures() -> None:
    first = decide(make(vault_problem="down"))
    assert first.status is not None
    assert first.status["failedAttempts"] == 1
    later = make(
        vault_problem="still down", status=CertificateIssuerStatus.model_validate(first.body)
    )
    second = decide(replace(later, attempt=3))
    assert second.status is not None
    assert second.status["failedAttempts"] == 4
    assert second.events == (), "the same reason posts no second event"


def test_the_status_never_holds_the_password_only_the_secrets_version() -> None:
    decision = decide(make(outcome=WriteOutcome(ok=True, observed=observed())))
    assert decision.body["appliedHash"] == applied_hash(settings(), "uid-1/41")
    assert decision.body["managed"] is True
    assert decision.body["vaultURL"] == URL
    assert "uid-1/41" not in str(decision.body)


@pytest.mark.parametrize(
    ("policy", "status", "finalizer", "add", "remove"),
    [
        ("Delete", MANAGED, False, True, False),
        ("Delete", MANAGED, True, False, False),
        ("Retain", MANAGED, True, False, True),
        ("Retain", MANAGED, False, False, False),
    ],
    ids=[
        "Delete adds the finalizer",
        "Delete keeps it",
        "Retain drops a finalizer left from Delete",
        "Retain holds none",
    ],
)
def test_the_finalizer_follows_the_deletion_policy(
    policy: str, status: CertificateIssuerStatus, finalizer: bool, add: bool, remove: bool
) -> None:
    decision = decide(
        make(
            {"deletionPolicy": policy}, status=status, observed=observed(), has_finalizer=finalizer
        )
    )
    assert (decision.add_finalizer, decision.remove_finalizer) == (add, remove)


@pytest.mark.parametrize(
    ("changes", "write", "remove", "events"),
    [
        ({"status": MANAGED}, Write.DELETE, False, ()),
        ({"status": MANAGED, "outcome": WriteOutcome(ok=True)}, Write.NONE, True, ("Deleted",)),
        (
            {"status": MANAGED, "outcome": WriteOutcome(ok=True, not_found=True)},
            Write.NONE,
            True,
            ("Deleted",),
        ),
        (
            {"status": MANAGED, "outcome": WriteOutcome(ok=False, error="500")},
            Write.NONE,
            False,
            ("KeyVaultError",),
        ),
        ({"status": CertificateIssuerStatus()}, Write.NONE, True, ()),
    ],
    ids=[
        "a managed issuer with Delete is deleted from Key Vault",
        "then the finalizer goes",
        "an issuer already gone (404) counts as deleted",
        "a failed delete keeps the finalizer and is retried",
        "an issuer never managed is not deleted",
    ],
)
def test_deletion(
    changes: dict[str, Any], write: Write, remove: bool, events: tuple[str, ...]
) -> None:
    inp = make({"deletionPolicy": "Delete"}, deleting=True, has_finalizer=True, **changes)
    decision = decide(inp)
    assert decision.write is write
    assert decision.remove_finalizer is remove
    assert tuple(event[1] for event in decision.events) == events


def test_desired_settings_are_what_key_vault_answers() -> None:
    spec = make().spec
    assert spec is not None
    assert desired_settings(spec) == settings()


def test_backoff_doubles_to_five_minutes() -> None:
    assert [backoff(n, 0.0) for n in (0, 1, 2)] == [5.0, 10.0, 20.0]
    assert backoff(30, 0.0) == 300.0
    assert backoff(0, 0.99) < 7.5


def test_the_ownership_record_names_the_vault() -> None:
    assert record(make()) == {"managed": True, "vaultURL": URL, "observedGeneration": 2}


@pytest.mark.parametrize(
    ("before", "rejected", "managed"),
    [
        (CertificateIssuerStatus(), True, None),
        (CertificateIssuerStatus(), False, True),
        (ELSEWHERE, True, True),
    ],
    ids=[
        "a refused first write takes the record back: the issuer is not ours",
        "a first write that failed otherwise keeps it (it may have landed)",
        "a refused write restores the record of before the round",
    ],
)
def test_a_refused_first_write_takes_the_ownership_record_back(
    before: CertificateIssuerStatus, rejected: bool, managed: bool | None
) -> None:
    outcome = WriteOutcome(ok=False, error="400 BadParameter", rejected=rejected)
    inp = make({"adopt": True}, status=before, observed=observed(provider="GlobalSign"))
    assert decide(inp).record_managed is True
    decision = decide(replace(inp, recorded=True, outcome=outcome))
    assert decision.body.get("managed") == managed
    assert decision.status is not None
    if managed is None:
        assert decision.status["managed"] is None  # sent as null: the record is removed
        assert decision.status["vaultURL"] is None
    elif before.vault_url is None:
        assert "managed" not in decision.status  # written before the write: kept as is
    else:
        assert decision.status["vaultURL"] == OTHER_URL


def test_the_mismatch_names_the_fields_never_their_values() -> None:
    answered = observed(organization_id=None, administrators=())
    decision = decide(make(outcome=WriteOutcome(ok=True, observed=answered)))
    ready = next(c for c in decision.body["conditions"] if c["type"] == "Ready")
    assert "organizationId, administrators" in ready["message"]
    assert "org" not in ready["message"].replace("organizationId", "")
    assert decision.body.get("appliedHash") is None, "not applied: tried again on a re-list"


@pytest.mark.parametrize(
    ("changes", "write", "events"),
    [
        (
            {"vault_missing": True, "vault_problem": "KeyVault main does not exist"},
            Write.NONE,
            ("VaultMissing",),
        ),
        ({"vault_problem": "credential Secret a/t does not exist"}, Write.NONE, ("VaultNotReady",)),
        ({"status": ELSEWHERE}, Write.NONE, ("NotOwned",)),
        ({"claimed_by": "ClusterCertificateIssuer digicert"}, Write.NONE, ("NotOwned",)),
    ],
    ids=[
        "a vault that is gone lets the issuer go, saying nothing was deleted",
        "a vault that cannot be used now is waited for",
        "an issuer ours only in another vault is not deleted here",
        "an issuer another live resource manages is not deleted",
    ],
)
def test_deletion_deletes_only_what_it_can_and_owns(
    changes: dict[str, Any], write: Write, events: tuple[str, ...]
) -> None:
    inp = make({"deletionPolicy": "Delete"}, deleting=True, has_finalizer=True, status=MANAGED)
    decision = decide(replace(inp, **changes))
    assert decision.write is write
    assert tuple(event[1] for event in decision.events) == events
    assert decision.remove_finalizer is (events != ("VaultNotReady",))
    if events == ("VaultMissing",):
        assert "nothing was deleted in Key Vault" in decision.events[0][2]


@pytest.mark.parametrize(
    ("data", "password"),
    [
        (b"s3cret", "s3cret"),
        (b"s3cret\n", "s3cret"),
        (b"s3cret\r\n", "s3cret"),
        (b"s3cret\n\n", "s3cret\n"),
        (b" s3cret \t", " s3cret \t"),
        (b"\xff\xfe", None),
    ],
    ids=[
        "as is",
        "one trailing newline (kubectl create secret --from-file) is dropped",
        "one trailing CRLF is dropped",
        "only one",
        "other white space is the password's own",
        "bytes that are not UTF-8 are no password",
    ],
)
def test_the_password_is_sent_as_is_but_for_one_trailing_newline(
    data: bytes, password: str | None
) -> None:
    assert password_text(data) == password
