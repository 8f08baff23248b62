"""Create, poll, complete: the Self and configured-issuer transitions, one per row."""

from __future__ import annotations

from typing import Any

import pytest

from kvcert.reconcile import (
    NOT_FOUND,
    CallError,
    CreateCertificate,
    RecordIntent,
    SecretFacts,
    VaultFacts,
    WriteSecret,
    reconcile,
)
from kvcert.reconcile.observed import OperationError
from kvcert.reconcile.outcomes import (
    CertificateRead,
    Conflict,
    Created,
    Failed,
    OperationRead,
    Rejected,
    SecretWritten,
    StatusWritten,
)
from kvcert.reconcile.patch import apply_merge_patch

from .support import (
    FOREIGN,
    assert_transition,
    body,
    cert,
    condition,
    events,
    intent,
    make,
    op,
    ready_status,
)

IN_PROGRESS = {"operation": {"requestId": "r1", "status": "inProgress", "intent": intent()}}
COMPLETED_OP = op("completed", target="https://kv/certificates/web")


def _fresh_then_intent() -> Any:
    first = reconcile(make(certificate=NOT_FOUND))
    record = first.actions[0]
    assert isinstance(record, RecordIntent)
    return make(certificate=NOT_FOUND).with_outcome(StatusWritten(record.patch))


CASES = [
    pytest.param(
        make(),
        ["ReadCertificate"],
        None,
        id="a first create reads whose the name is",
    ),
    pytest.param(
        make(certificate=cert(tags={"managed-by": "kvcert", "kvcert-owner": "team-b/api"})),
        ["Emit"],
        ("False", "NotOwned"),
        id="a name that is another Certificate's is not created into",
    ),
    pytest.param(
        make(certificate=cert(tags={})),
        ["Emit"],
        ("False", "NotOwned"),
        id="a name kvcert does not manage is not created into",
    ),
    pytest.param(
        make(certificate=cert(tags={"managed-by": "kvcert", "kvcert-owner": "team-a/web"})),
        ["RecordIntent", "CreateCertificate"],
        ("False", "Issuing"),
        id="a name this Certificate held before (re-applied) is created into",
    ),
    pytest.param(
        make(certificate=NOT_FOUND),
        ["RecordIntent", "CreateCertificate"],
        ("False", "Issuing"),
        id="records the intent before the first create",
    ),
    pytest.param(
        _fresh_then_intent().with_outcome(Created(op(csr_pem="CSR", retry_after=10.0))),
        ["Emit"],
        ("False", "Issuing"),
        id="records the created operation and waits, without a second create",
    ),
    pytest.param(
        make(body(IN_PROGRESS)),
        ["ReadOperation"],
        None,
        id="polls an in-progress operation it has not read yet",
    ),
    pytest.param(
        make(body(IN_PROGRESS), operation=op()),
        [],
        ("False", "Issuing"),
        id="waits on an operation still in progress",
    ),
    pytest.param(
        make(body(IN_PROGRESS), operation=COMPLETED_OP),
        ["ReadCertificate"],
        None,
        id="reads the certificate when the operation completed",
    ),
    pytest.param(
        make(body(IN_PROGRESS), operation=COMPLETED_OP, certificate=cert()),
        ["ReadSecret"],
        None,
        id="reads the output Secret before writing it",
    ),
    pytest.param(
        make(
            body(IN_PROGRESS),
            operation=COMPLETED_OP,
            certificate=cert(),
            secret=SecretFacts.absent(),
        ),
        ["WriteSecret"],
        None,
        id="writes the Secret with the issued version",
    ),
    pytest.param(
        make(
            body(IN_PROGRESS),
            operation=COMPLETED_OP,
            certificate=cert(),
            secret=SecretFacts.absent(),
        ).with_outcome(SecretWritten("x5t-1", "v1")),
        ["Emit"],
        ("True", "Issued"),
        id="completes operation, certificate and Ready in one status write",
    ),
    pytest.param(
        make(
            body(IN_PROGRESS),
            operation=COMPLETED_OP,
            certificate=cert(),
            secret=SecretFacts(True, ours=False),
        ),
        ["Emit"],
        ("False", "SecretConflict"),
        id="never overwrites an output Secret that is not ours",
    ),
    pytest.param(
        make(body(IN_PROGRESS), operation=COMPLETED_OP, certificate=cert(x5t=None)),
        ["Emit"],
        ("False", "CertificateMissing"),
        id="reports a completed operation without an issued certificate",
    ),
    pytest.param(
        make(body(ready_status())),
        ["ReadSecret"],
        None,
        id="checks the Secret of a Ready certificate without reading Key Vault",
    ),
    pytest.param(
        make(body(ready_status()), secret=SecretFacts(True, True, "x5t-1", "v1")),
        [],
        None,
        id="never polls a completed operation and writes nothing when in sync",
    ),
    pytest.param(
        make(body(ready_status()), secret=SecretFacts.absent()),
        ["Emit", "RecordIntent", "ReadCertificate"],
        None,
        id="says SecretMissing, then reads the certificate to restore a deleted Secret",
    ),
    pytest.param(
        make(body({"operation": {"intent": intent()}})),
        ["ReadOperation"],
        None,
        id="after a crash between intent and create reads the pending operation first",
    ),
    pytest.param(
        make(body({"operation": {"intent": intent()}}), operation=op()),
        ["Emit"],
        ("False", "Issuing"),
        id="adopts the pending operation found after a crash instead of creating",
    ),
    pytest.param(
        make(body({"operation": {"intent": intent()}}), operation=NOT_FOUND),
        ["CreateCertificate"],
        None,
        id="creates under the recorded intent when Key Vault never saw the create",
    ),
    pytest.param(
        make().with_outcome(Conflict("create", CallError(409, "Conflict", "in progress"))),
        ["ReadCertificate"],
        None,
        id="reads the certificate's tags on 409 to learn whose operation it is",
    ),
    pytest.param(
        _fresh_then_intent()
        .with_outcome(Conflict("create", CallError(409, "Conflict", "in progress")))
        .with_outcome(CertificateRead(cert(x5t=None))),
        ["ReadOperation"],
        None,
        id="reads our operation on 409 to adopt it",
    ),
    pytest.param(
        _fresh_then_intent()
        .with_outcome(Conflict("create", CallError(409, "Conflict", "in progress")))
        .with_outcome(CertificateRead(cert(x5t=None)))
        .with_outcome(OperationRead(op())),
        ["Emit"],
        ("False", "Issuing"),
        id="adopts the existing operation on 409 instead of creating",
    ),
    pytest.param(
        _fresh_then_intent()
        .with_outcome(Conflict("create", CallError(409, "Conflict", "in progress")))
        .with_outcome(CertificateRead(cert(x5t=None, tags=FOREIGN))),
        ["Emit"],
        ("False", "Conflict"),
        id="reports a 409 for an operation that is not ours",
    ),
    pytest.param(
        make(
            body(
                {
                    "operation": {
                        "intent": intent(),
                        "error": {"code": "Conflict", "message": "x"},
                    },
                    "conditions": [{"type": "Ready", "status": "False", "reason": "Conflict"}],
                }
            )
        ),
        [],
        ("False", "Conflict"),
        id="never retries a reported 409 in a loop",
    ),
    pytest.param(
        _fresh_then_intent().with_outcome(
            Rejected("create", CallError(400, "BadParameter", "bad subject"))
        ),
        ["Emit"],
        ("False", "Rejected"),
        id="stalls when Key Vault rejects the create",
    ),
    pytest.param(
        make(
            body(IN_PROGRESS),
            operation=op("failed", error=OperationError("IssuerError", "rejected by CA")),
        ),
        ["Emit"],
        ("False", "OperationFailed"),
        id="reports a failed operation as stalled without retrying",
    ),
    pytest.param(
        make(body(IN_PROGRESS), operation=op("canceled")),
        ["Emit"],
        ("False", "OperationCancelled"),
        id="reports a cancelled operation as stalled",
    ),
    pytest.param(
        make(body({"operation": {"requestId": "r1", "status": "failed", "intent": intent()}})),
        ["Emit"],
        ("False", "OperationFailed"),
        id="never polls a failed operation again",
    ),
    pytest.param(
        make(
            body(
                {"operation": {"requestId": "r1", "status": "failed", "intent": intent()}},
                generation=2,
            )
        ),
        ["RecordIntent", "CreateCertificate"],
        None,
        id="creates anew after a spec edit following a failure",
    ),
    pytest.param(
        make(body(IN_PROGRESS), operation=NOT_FOUND),
        ["ReadCertificate"],
        None,
        id="reads the certificate when the pending operation vanished",
    ),
    pytest.param(
        make(body(IN_PROGRESS), operation=NOT_FOUND, certificate=NOT_FOUND),
        ["Emit"],
        ("False", "OperationDeleted"),
        id="reports a vanished operation and creates nothing by itself",
    ),
    pytest.param(
        make(body(IN_PROGRESS), operation=NOT_FOUND, certificate=cert()),
        ["ReadSecret"],
        None,
        id="recovers a certificate completed before its operation vanished",
    ),
    pytest.param(
        make(body(IN_PROGRESS, cancel=True), operation=NOT_FOUND, certificate=NOT_FOUND),
        ["Emit"],
        ("False", "OperationDeleted"),
        id="does not recreate a vanished operation when cancel is asked",
    ),
    pytest.param(
        make(body(ready_status(), policy={"issuer": {"name": "Self"}, "subject": "CN=new"})),
        ["RecordIntent", "CreateCertificate"],
        None,
        id="creates a new version when the policy changes",
    ),
    pytest.param(
        make(
            body(IN_PROGRESS, policy={"issuer": {"name": "Self"}, "subject": "CN=new"}),
            operation=op(),
        ),
        ["Emit"],
        ("False", "Superseded"),
        id="waits for the previous spec's operation before creating for the new one",
    ),
    pytest.param(
        make(body(cancel=True)),
        ["Emit"],
        ("False", "OperationCancelled"),
        id="does not create while spec.cancel is true",
    ),
    pytest.param(
        make(vault=VaultFacts(ready=False, message="KeyVault main is not Ready")),
        ["Emit"],
        ("False", "VaultNotReady"),
        id="waits for a vault that is not ready",
    ),
    pytest.param(
        make(body(vaultRef=None)),
        ["Emit"],
        ("False", "InvalidSpec"),
        id="reports an invalid spec without calling Key Vault",
    ),
    pytest.param(
        make(body(IN_PROGRESS)).with_outcome(Failed("ReadOperation", CallError(503))),
        ["Emit"],
        ("False", "KeyVaultError"),
        id="backs off on a transient Key Vault error",
    ),
    pytest.param(
        make(body(IN_PROGRESS)).with_outcome(
            Failed("ReadOperation", CallError(429, "Throttled", retry_after=30.0))
        ),
        ["Emit"],
        ("False", "Throttled"),
        id="reports throttling and honours its Retry-After",
    ),
    pytest.param(
        make(body(ready_status())).with_outcome(Failed("ReadSecret", CallError(None))),
        [],
        None,
        id="keeps a Ready certificate Ready through a transient failure",
    ),
]


@pytest.mark.parametrize(("inp", "expected", "ready"), CASES)
def test_transition(inp: Any, expected: list[str], ready: tuple[str, str] | None) -> None:
    assert_transition(inp, expected, ready)


def test_intent_is_recorded_with_generation_and_marker_before_the_create() -> None:
    decision = reconcile(make(marker="client-marker", certificate=NOT_FOUND))
    record, create = decision.actions
    assert isinstance(record, RecordIntent)
    assert isinstance(create, CreateCertificate)
    recorded = record.patch["operation"]["intent"]
    assert (recorded["generation"], recorded["marker"], recorded["action"]) == (
        1,
        "client-marker",
        "create",
    )
    assert create.tags["kvcert-intent"] == "client-marker"
    assert create.tags["managed-by"] == "kvcert"
    assert condition(dict(record.patch), "Issuing")["status"] == "True"  # type: ignore[index]


def test_created_operation_is_recorded_and_polled_after_retry_after() -> None:
    inp = _fresh_then_intent().with_outcome(Created(op(csr_pem="CSR", retry_after=10.0)))
    decision = reconcile(inp)
    operation = decision.status_patch["operation"]
    assert (operation["requestId"], operation["status"]) == ("r1", "inProgress")
    assert decision.requeue_after is not None
    assert decision.requeue_after >= 10.0
    assert events(decision) == [("Normal", "Created")]


def test_completion_writes_certificate_and_ready_together() -> None:
    inp = make(
        body(IN_PROGRESS), operation=COMPLETED_OP, certificate=cert(), secret=SecretFacts.absent()
    ).with_outcome(SecretWritten("x5t-1", "v1"))
    decision = reconcile(inp)
    patch = decision.status_patch
    assert patch["operation"]["status"] == "completed"
    assert patch["certificate"]["version"] == "v1"
    assert patch["certificate"]["x5t"] == "x5t-1"
    # The next round is the renewal check (Key Vault's default AutoRenew at 80 %), a schedule.
    assert patch["renewalTime"] is not None
    assert decision.requeue_after is not None
    assert decision.requeue_after > 86400
    assert events(decision) == [("Normal", "Issued")]


def test_write_secret_names_the_version_and_content_type() -> None:
    inp = make(
        body(IN_PROGRESS),
        operation=COMPLETED_OP,
        certificate=cert(version="v9"),
        secret=SecretFacts(True, True, "old", "v0"),
    )
    (write,) = reconcile(inp).actions
    assert isinstance(write, WriteSecret)
    assert (write.secret_name, write.version, write.content_type) == (
        "web-tls",
        "v9",
        "application/x-pkcs12",
    )


def test_new_intent_remembers_the_previous_request() -> None:
    inp = make(body(ready_status(), policy={"issuer": {"name": "Self"}, "subject": "CN=new"}))
    record = reconcile(inp).actions[0]
    assert isinstance(record, RecordIntent)
    assert record.patch["operation"]["intent"]["previousRequestId"] == "r1"
    assert record.patch["operation"]["requestId"] is None  # the old operation's fields cleared


def test_failed_operation_error_goes_to_status_and_stalls() -> None:
    inp = make(
        body(IN_PROGRESS),
        operation=op("failed", error=OperationError("IssuerError", "rejected by CA")),
    )
    decision = reconcile(inp)
    assert decision.status_patch["operation"]["error"] == {
        "code": "IssuerError",
        "message": "rejected by CA",
    }
    assert condition(dict(decision.status_patch), "Stalled")["status"] == "True"  # type: ignore[index]
    assert decision.requeue_after is None


def test_throttling_requeues_no_sooner_than_retry_after() -> None:
    inp = make(body(IN_PROGRESS)).with_outcome(
        Failed("ReadOperation", CallError(429, "Throttled", retry_after=30.0))
    )
    decision = reconcile(inp)
    assert decision.requeue_after is not None
    assert decision.requeue_after >= 30.0


def test_repeated_identical_errors_write_nothing_more() -> None:
    first = reconcile(make(body(IN_PROGRESS)).with_outcome(Failed("ReadOperation", CallError(503))))
    status = dict(body(IN_PROGRESS)["status"])
    again = make(body(apply_merge_patch(status, first.status_patch))).with_outcome(
        Failed("ReadOperation", CallError(503))
    )
    second = reconcile(again)
    assert second.status_patch == {}
    assert second.actions == ()
