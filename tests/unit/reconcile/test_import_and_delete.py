"""importFrom and deletion policies, one transition per row."""

from __future__ import annotations

from typing import Any

import pytest

from kvcert.reconcile import (
    NOT_FOUND,
    CallError,
    ImportCertificate,
    RecordIntent,
    SourceFacts,
    VaultFacts,
    reconcile,
)
from kvcert.reconcile.facts import SecretFacts
from kvcert.reconcile.outcomes import (
    CertificateDeleted,
    Failed,
    Imported,
    PendingDeleted,
    SecretRead,
    SecretWritten,
    StatusWritten,
)

from .support import (
    FOREIGN,
    assert_transition,
    body,
    cert,
    condition,
    events,
    intent,
    kinds,
    make,
    op,
)

IMPORT_FROM = {"secretName": "web-pfx"}
PFX = SourceFacts(exists=True, fingerprint="pfx-1", format="pfx")


def importing(status: dict[str, Any] | None = None) -> dict[str, Any]:
    return body(status, policy=None, importFrom=IMPORT_FROM)


def import_intent(fingerprint: str = "pfx-1") -> dict[str, Any]:
    return intent(action="import", policyHash=None, sourceFingerprint=fingerprint)


IMPORT_CASES = [
    pytest.param(make(importing()), ["ReadImportSecret"], None, id="reads the import Secret first"),
    pytest.param(
        make(importing(), import_secret=SourceFacts.absent()),
        ["Emit"],
        ("False", "ImportSecretMissing"),
        id="reports a missing import Secret and looks again later",
    ),
    pytest.param(
        make(importing(), import_secret=SourceFacts(exists=True)),
        ["Emit"],
        ("False", "ImportSecretInvalid"),
        id="reports an import Secret with neither PFX nor PEM",
    ),
    pytest.param(
        make(importing(), import_secret=PFX),
        ["ReadCertificate"],
        None,
        id="a first import reads whose the name is",
    ),
    pytest.param(
        make(importing(), import_secret=PFX, certificate=cert(tags={})),
        ["Emit"],
        ("False", "NotOwned"),
        id="a name kvcert does not manage is not imported into",
    ),
    pytest.param(
        make(importing(), import_secret=PFX, certificate=NOT_FOUND),
        ["RecordIntent", "ImportCertificate"],
        ("False", "Issuing"),
        id="records the intent, then imports",
    ),
    pytest.param(
        make(importing({"operation": {"intent": import_intent()}}), import_secret=PFX).with_outcome(
            Imported(cert())
        ),
        ["ReadSecret"],
        None,
        id="delivers the imported certificate",
    ),
    pytest.param(
        make(
            importing(
                {
                    "operation": {"intent": import_intent(), "status": "completed"},
                    "certificate": {"version": "v1", "x5t": "x5t-1"},
                }
            ),
            import_secret=PFX,
        ),
        ["ReadSecret"],
        None,
        id="does not import the same content twice",
    ),
    pytest.param(
        make(
            importing({"operation": {"intent": import_intent("pfx-0"), "status": "completed"}}),
            import_secret=PFX,
        ),
        ["RecordIntent", "ImportCertificate"],
        None,
        id="imports again when the content changes",
    ),
    pytest.param(
        make(importing({"operation": {"intent": import_intent()}}), import_secret=PFX),
        ["ReadCertificate"],
        None,
        id="after a crash between intent and import reads the certificate first",
    ),
    pytest.param(
        make(
            importing({"operation": {"intent": import_intent()}}),
            import_secret=PFX,
            certificate=cert(tags={"kvcert-intent": "m0", "managed-by": "kvcert"}),
        ),
        ["ReadSecret"],
        None,
        id="recognises its own import after a crash by the intent tag",
    ),
    pytest.param(
        make(
            importing({"operation": {"intent": import_intent()}}),
            import_secret=PFX,
            certificate=NOT_FOUND,
        ),
        ["ImportCertificate"],
        None,
        id="imports under the recorded intent when Key Vault never saw the import",
    ),
]


@pytest.mark.parametrize(("inp", "expected", "ready"), IMPORT_CASES)
def test_import_transition(inp: Any, expected: list[str], ready: tuple[str, str] | None) -> None:
    assert_transition(inp, expected, ready)


def test_import_carries_the_fingerprint_and_the_intent_marker() -> None:
    inp = make(importing(), import_secret=PFX, marker="mk", certificate=NOT_FOUND)
    record, action = reconcile(inp).actions
    assert isinstance(record, RecordIntent)
    assert isinstance(action, ImportCertificate)
    assert (action.secret_name, action.fingerprint, action.tags["kvcert-intent"]) == (
        "web-pfx",
        "pfx-1",
        "mk",
    )
    inp = make(importing(), import_secret=PFX).with_outcome(StatusWritten(record.patch))
    assert inp.status.operation
    assert inp.status.operation.intent
    assert inp.status.operation.intent.source_fingerprint == "pfx-1"


def test_imported_certificate_completes_status_operation() -> None:
    inp = make(
        importing({"operation": {"intent": import_intent()}}), import_secret=PFX
    ).with_outcome(Imported(cert()))

    inp = inp.with_outcome(SecretRead(SecretFacts.absent())).with_outcome(
        SecretWritten("x5t-1", "v1")
    )
    decision = reconcile(inp)
    assert decision.status_patch["operation"]["status"] == "completed"
    assert condition(dict(decision.status_patch))["status"] == "True"  # type: ignore[index]
    assert ("Normal", "Imported") in events(decision)


IN_PROGRESS = {"operation": {"requestId": "r1", "status": "inProgress", "intent": intent()}}
COMPLETED = {"operation": {"requestId": "r1", "status": "completed", "intent": intent()}}

DELETE_CASES = [
    pytest.param(
        make(body(IN_PROGRESS, deleting=True)),
        [],
        None,
        id="retains everything in Key Vault by default",
    ),
    pytest.param(
        make(body(IN_PROGRESS, deleting=True, deletionPolicy="DeletePending")),
        ["ReadOperation"],
        None,
        id="reads the pending operation before deleting it",
    ),
    pytest.param(
        make(body(IN_PROGRESS, deleting=True, deletionPolicy="DeletePending"), operation=op()),
        ["DeletePendingOperation"],
        None,
        id="deletes a pending operation in progress",
    ),
    pytest.param(
        make(
            body(IN_PROGRESS, deleting=True, deletionPolicy="DeletePending"),
            operation=op("completed"),
        ),
        [],
        None,
        id="leaves a pending operation that already ended",
    ),
    pytest.param(
        make(body(COMPLETED, deleting=True, deletionPolicy="DeletePending")),
        [],
        None,
        id="does not read a pending operation recorded as completed",
    ),
    pytest.param(
        make(
            body(IN_PROGRESS, deleting=True, deletionPolicy="DeletePending"), operation=op()
        ).with_outcome(PendingDeleted()),
        ["Emit"],
        None,
        id="finishes once the pending operation is deleted",
    ),
    pytest.param(
        make(body(COMPLETED, deleting=True, deletionPolicy="Delete")),
        ["ReadCertificate"],
        None,
        id="reads the certificate's tags before deleting it",
    ),
    pytest.param(
        make(body(COMPLETED, deleting=True, deletionPolicy="Delete"), certificate=cert()),
        ["DeleteCertificate"],
        None,
        id="soft-deletes a certificate it manages",
    ),
    pytest.param(
        make(
            body(COMPLETED, deleting=True, deletionPolicy="Delete"), certificate=cert(tags=FOREIGN)
        ),
        ["Emit"],
        None,
        id="never deletes a certificate it does not manage",
    ),
    pytest.param(
        make(body(COMPLETED, deleting=True, deletionPolicy="Delete"), certificate=NOT_FOUND),
        [],
        None,
        id="finishes when the certificate is already gone",
    ),
    pytest.param(
        make(
            body(COMPLETED, deleting=True, deletionPolicy="Delete"), certificate=cert()
        ).with_outcome(CertificateDeleted()),
        ["Emit"],
        None,
        id="finishes once the certificate is soft-deleted",
    ),
    pytest.param(
        make(body(COMPLETED, deleting=True, deletionPolicy="Delete")).with_outcome(
            Failed("ReadCertificate", CallError(503))
        ),
        ["Emit"],
        2.0,
        id="keeps the finalizer, says why in an event and retries after a transient failure",
    ),
    pytest.param(
        make(
            body(COMPLETED, deleting=True, deletionPolicy="Delete"),
            vault=VaultFacts.absent("KeyVault main not found"),
        ),
        ["Emit"],
        None,
        id="lets go with a warning when the vault is gone",
    ),
    pytest.param(
        make(
            body(COMPLETED, deleting=True, deletionPolicy="Delete"), vault=VaultFacts(ready=False)
        ),
        [],
        2.0,
        id="waits for a vault that is not ready rather than leak",
    ),
]


@pytest.mark.parametrize(("inp", "expected", "requeue"), DELETE_CASES)
def test_deletion_transition(inp: Any, expected: list[str], requeue: float | None) -> None:
    decision = reconcile(inp)
    assert kinds(decision) == expected
    assert decision.status_patch == {}
    assert decision.requeue_after == requeue


def test_a_deletion_denied_by_key_vault_names_the_permission_to_grant() -> None:
    denied = CallError(403, "Forbidden", "no delete permission", inner_code="AccessDenied")
    inp = make(body(COMPLETED, deleting=True, deletionPolicy="Delete")).with_outcome(
        Failed("DeleteCertificate", denied)
    )
    decision = reconcile(inp)
    (event,) = decision.events
    assert (event.type, event.reason) == ("Warning", "AccessDenied")
    assert "certificates/delete" in event.message
    assert decision.requeue_after is not None
