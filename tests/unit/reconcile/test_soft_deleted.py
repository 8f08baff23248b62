"""A name soft-deleted in Key Vault (409 ObjectIsDeletedButRecoverable), one transition per row:
reported as NameSoftDeleted by default, recovered with spec.onSoftDeleted: Recover."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from kvcert.reconcile import (
    NOT_FOUND,
    CallError,
    CreateCertificate,
    Input,
    RecordIntent,
    SourceFacts,
    reconcile,
)
from kvcert.reconcile.operation import INTENT_TAG
from kvcert.reconcile.outcomes import (
    CertificateRead,
    Created,
    Failed,
    Recovered,
    SoftDeleted,
    StatusWritten,
)

from .support import (
    FOREIGN,
    NOW,
    World,
    assert_transition,
    body,
    cert,
    condition,
    events,
    intent,
    make,
    op,
)

REFUSED = CallError(
    409,
    "Conflict",
    "Certificate web is currently in a deleted but recoverable state",
    inner_code="ObjectIsDeletedButRecoverable",
)
RECOVER = {"onSoftDeleted": "Recover"}
PFX = SourceFacts(exists=True, fingerprint="pfx-1", format="pfx")


def _intent_recorded(**spec: Any) -> Input:
    """A fresh Certificate right after its intent write (the create is next)."""
    first = reconcile(make(body(**spec), certificate=NOT_FOUND))
    record = first.actions[0]
    assert isinstance(record, RecordIntent)
    return make(body(**spec), certificate=NOT_FOUND).with_outcome(StatusWritten(record.patch))


def _refused(**spec: Any) -> Input:
    return _intent_recorded(**spec).with_outcome(SoftDeleted("create", REFUSED))


def _reported(generation: int = 1, **spec: Any) -> dict[str, Any]:
    status = {
        "operation": {
            "intent": intent(),
            "error": {"code": "NameSoftDeleted", "message": "web is soft-deleted in Key Vault"},
        },
        "conditions": [{"type": "Ready", "status": "False", "reason": "NameSoftDeleted"}],
    }
    return body(status, generation=generation, **spec)


def _recovering(**spec: Any) -> dict[str, Any]:
    status = {
        "operation": {"intent": intent()},
        "conditions": [{"type": "Ready", "status": "False", "reason": "Recovering"}],
    }
    return body(status, **spec)


def _importing(
    status: dict[str, Any] | None = None, generation: int = 1, **spec: Any
) -> dict[str, Any]:
    return body(
        status, generation=generation, policy=None, importFrom={"secretName": "web-pfx"}, **spec
    )


IMPORT_INTENT = intent(action="import", policyHash=None, sourceFingerprint="pfx-1")

CASES = [
    pytest.param(
        _refused(),
        ["Emit"],
        ("False", "NameSoftDeleted"),
        id="reports a create refused for a soft-deleted name as NameSoftDeleted, stalled",
    ),
    pytest.param(
        make(_reported()),
        [],
        ("False", "NameSoftDeleted"),
        id="keeps a reported NameSoftDeleted stalled without a new create",
    ),
    pytest.param(
        make(_reported(generation=2, **RECOVER)),
        ["RecordIntent", "CreateCertificate"],
        ("False", "Issuing"),
        id="asks again under a new intent after a spec edit such as onSoftDeleted: Recover",
    ),
    pytest.param(
        _refused(**RECOVER),
        ["RecoverCertificate"],
        None,
        id="recovers the soft-deleted certificate when onSoftDeleted is Recover",
    ),
    pytest.param(
        _refused(**RECOVER).with_outcome(Recovered()),
        ["ReadCertificate"],
        None,
        id="reads the certificate after recovering it",
    ),
    pytest.param(
        _refused(**RECOVER).with_outcome(Recovered()).with_outcome(CertificateRead(NOT_FOUND)),
        ["Emit", "Emit"],
        ("False", "Recovering"),
        id="waits while Key Vault is still recovering, without creating",
    ),
    pytest.param(
        _refused(**RECOVER)
        .with_outcome(Recovered())
        .with_outcome(CertificateRead(cert(tags=FOREIGN))),
        ["CreateCertificate"],
        None,
        id="creates under the recorded intent once the certificate reads back",
    ),
    pytest.param(
        _refused(**RECOVER)
        .with_outcome(Recovered())
        .with_outcome(CertificateRead(cert(tags=FOREIGN)))
        .with_outcome(SoftDeleted("create", REFUSED)),
        ["Emit", "Emit"],
        ("False", "NameSoftDeleted"),
        id="reports a name deleted again during its recovery instead of recovering twice",
    ),
    pytest.param(
        _refused(**RECOVER)
        .with_outcome(Recovered())
        .with_outcome(CertificateRead(cert(tags=FOREIGN)))
        .with_outcome(Created(op())),
        ["Emit", "Emit"],
        ("False", "Issuing"),
        id="follows the operation the create started after the recovery",
    ),
    pytest.param(
        make(_recovering(**RECOVER)),
        ["ReadCertificate"],
        None,
        id="a recovery left unfinished by an earlier round is checked first",
    ),
    pytest.param(
        make(_recovering(**RECOVER), certificate=NOT_FOUND),
        ["RecoverCertificate"],
        None,
        id="a name still deleted after an earlier round is recovered again, never created",
    ),
    pytest.param(
        make(_recovering(**RECOVER), certificate=NOT_FOUND)
        .with_outcome(Recovered(found=False))
        .with_outcome(CertificateRead(NOT_FOUND)),
        [],
        ("False", "Recovering"),
        id="keeps waiting while the recover answers that nothing is deleted any more",
    ),
    pytest.param(
        make(_recovering(**RECOVER), certificate=cert(tags=FOREIGN)),
        ["ReadOperation"],
        None,
        id="once recovered in an earlier round the create goes on as usual",
    ),
    pytest.param(
        _intent_recorded(**RECOVER).with_outcome(
            Failed(
                "RecoverCertificate",
                CallError(403, "Forbidden", "denied", inner_code="ForbiddenByRbac"),
            )
        ),
        ["Emit"],
        ("False", "AccessDenied"),
        id="a recover denied by RBAC is retried with backoff",
    ),
    pytest.param(
        make(_importing({"operation": {"intent": IMPORT_INTENT}}), import_secret=PFX).with_outcome(
            SoftDeleted("import", REFUSED)
        ),
        ["Emit"],
        ("False", "NameSoftDeleted"),
        id="reports an import refused for a soft-deleted name as NameSoftDeleted",
    ),
    pytest.param(
        make(
            _importing(
                {
                    "operation": {
                        "intent": IMPORT_INTENT,
                        "error": {"code": "NameSoftDeleted", "message": "soft-deleted"},
                    }
                }
            ),
            import_secret=PFX,
        ),
        ["Emit"],
        ("False", "NameSoftDeleted"),
        id="keeps a reported import NameSoftDeleted stalled without a new import",
    ),
    pytest.param(
        make(
            _importing(
                {
                    "operation": {
                        "intent": IMPORT_INTENT,
                        "error": {"code": "NameSoftDeleted", "message": "soft-deleted"},
                    }
                },
                generation=2,
                **RECOVER,
            ),
            import_secret=PFX,
        ),
        ["RecordIntent", "ImportCertificate"],
        ("False", "Issuing"),
        id="asks again for a refused import after a spec edit",
    ),
    pytest.param(
        make(_importing({"operation": {"intent": IMPORT_INTENT}}, **RECOVER), import_secret=PFX)
        .with_outcome(SoftDeleted("import", REFUSED))
        .with_outcome(Recovered())
        .with_outcome(CertificateRead(cert(tags=FOREIGN))),
        ["ImportCertificate"],
        None,
        id="imports under the recorded intent once the certificate is recovered",
    ),
]


@pytest.mark.parametrize(("inp", "expected", "ready"), CASES)
def test_transition(inp: Input, expected: list[str], ready: tuple[str, str] | None) -> None:
    assert_transition(inp, expected, ready)


def test_the_report_says_to_recover_or_purge_and_names_the_field_that_does_it() -> None:
    decision = reconcile(_refused())
    ready = condition(dict(decision.status_patch)) or {}
    message = ready["message"]
    assert "soft-deleted in Key Vault" in message
    assert "recover or purge the deleted certificate" in message
    assert "spec.onSoftDeleted: Recover" in message
    assert "pending operation" not in message
    error = decision.status_patch["operation"]["error"]
    assert error["code"] == "NameSoftDeleted"
    assert events(decision) == [("Warning", "NameSoftDeleted")]


def test_the_create_after_recovery_carries_the_recorded_intent() -> None:
    inp = (
        _refused(**RECOVER)
        .with_outcome(Recovered())
        .with_outcome(CertificateRead(cert(tags=FOREIGN)))
    )
    create = reconcile(inp).actions[0]
    assert isinstance(create, CreateCertificate)
    assert inp.status.operation is not None
    assert inp.status.operation.intent is not None
    assert create.tags[INTENT_TAG] == inp.status.operation.intent.marker


def test_access_denied_names_the_permission_to_grant() -> None:
    denied = CallError(403, "Forbidden", "denied", inner_code="ForbiddenByRbac")
    inp = _intent_recorded(**RECOVER).with_outcome(Failed("RecoverCertificate", denied))
    ready = condition(dict(reconcile(inp).status_patch)) or {}
    assert "certificates/recover" in ready["message"]


def test_fail_costs_one_create_and_no_retry() -> None:
    world = World(body(), soft_deleted=True)
    first = world.reconcile_once()
    second = world.reconcile_once(marker="m2")
    assert world.calls["CreateCertificate"] == 1
    assert world.calls["RecoverCertificate"] == 0
    assert second.actions == ()
    ready = condition(world.raw["status"]) or {}
    assert ready["reason"] == "NameSoftDeleted"
    assert first.requeue_after is None
    assert second.requeue_after is None


def test_recover_recovers_once_then_issues() -> None:
    world = World(body(**RECOVER), soft_deleted=True)
    first = world.reconcile_once()
    world.reconcile_once(now=NOW + timedelta(seconds=first.requeue_after or 0))
    assert world.calls["RecoverCertificate"] == 1
    assert world.calls["CreateCertificate"] == 2  # the refused one, then one Key Vault accepts
    assert world.requests == 1
    ready = condition(world.raw["status"]) or {}
    assert (ready["status"], ready["reason"]) == ("True", "Issued")
    assert "Recovered" in [event.reason for event in world.emitted]


def test_fail_then_edit_to_recover_issues() -> None:
    world = World(body(), soft_deleted=True)
    world.reconcile_once()
    world.raw["spec"]["onSoftDeleted"] = "Recover"
    world.raw["metadata"]["generation"] = 2
    second = world.reconcile_once(marker="m2")
    world.reconcile_once(now=NOW + timedelta(seconds=second.requeue_after or 0), marker="m3")
    assert world.calls["RecoverCertificate"] == 1
    assert world.requests == 1
    ready = condition(world.raw["status"]) or {}
    assert (ready["status"], ready["reason"]) == ("True", "Issued")
