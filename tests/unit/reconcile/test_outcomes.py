"""The mapping from what a call returned to the outcome fed back into reconcile."""

from __future__ import annotations

import pytest

from kvcert.api.certificate import Policy
from kvcert.reconcile import (
    NOT_FOUND,
    CallError,
    CancelOperation,
    CreateCertificate,
    DeleteCertificate,
    DeletePendingOperation,
    Emit,
    ImportCertificate,
    MergeChain,
    ReadCertificate,
    ReadMergeSecret,
    ReadOperation,
    ReadSecret,
    RecordIntent,
    SecretFacts,
    SourceFacts,
    WriteCsrConfigMap,
    WriteSecret,
    outcome_of,
)
from kvcert.reconcile.actions import RecoverCertificate
from kvcert.reconcile.outcomes import (
    CancelRefused,
    CancelRequested,
    CertificateDeleted,
    CertificateRead,
    Conflict,
    Created,
    CsrPublished,
    Failed,
    Imported,
    Merged,
    MergeRefused,
    MergeSecretRead,
    OperationRead,
    Outcome,
    PendingDeleted,
    Recovered,
    Rejected,
    SecretConflict,
    SecretRead,
    SecretWritten,
    SoftDeleted,
    StatusWritten,
)

from .support import cert, op

SOFT_DELETED = CallError(409, "Conflict", inner_code="ObjectIsDeletedButRecoverable")
BEING_DELETED = CallError(409, "Conflict", inner_code="ObjectIsBeingDeleted")
RBAC = CallError(403, "Forbidden", "Caller is not authorized", inner_code="ForbiddenByRbac")
POLICY_DENIED = CallError(
    403, "Forbidden", "no certificates update permission", inner_code="AccessDenied"
)

POLICY = Policy.model_validate({"issuer": {"name": "Self"}, "subject": "CN=x"})
CREATE = CreateCertificate("web", POLICY)
IMPORT = ImportCertificate("web", "web-pfx", "fp")
MERGE = MergeChain("web", "web-signed", "fp-1")
WRITE = WriteSecret("web-tls", "web", "v1", "x5t-1")

FAILURES = [
    pytest.param(
        CREATE,
        SOFT_DELETED,
        SoftDeleted("create", SOFT_DELETED),
        id="create answered 409 ObjectIsDeletedButRecoverable is a soft-deleted name",
    ),
    pytest.param(
        IMPORT,
        SOFT_DELETED,
        SoftDeleted("import", SOFT_DELETED),
        id="import answered 409 ObjectIsDeletedButRecoverable is a soft-deleted name too",
    ),
    pytest.param(
        CREATE,
        BEING_DELETED,
        Failed("CreateCertificate", BEING_DELETED),
        id="create answered 409 ObjectIsBeingDeleted is retried once the deletion is over",
    ),
    pytest.param(
        RecoverCertificate("web"),
        CallError(404, "CertificateNotFound"),
        Recovered(found=False),
        id="recover answered 404 means nothing of that name is deleted any more",
    ),
    pytest.param(
        RecoverCertificate("web"),
        RBAC,
        Failed("RecoverCertificate", RBAC),
        id="recover denied by RBAC is retried with backoff",
    ),
    pytest.param(
        CancelOperation("web"),
        POLICY_DENIED,
        Failed("CancelOperation", POLICY_DENIED),
        id="cancel denied by an access policy is retried, not recorded as refused",
    ),
    pytest.param(
        MERGE,
        RBAC,
        Failed("MergeChain", RBAC),
        id="merge denied by RBAC is retried, not recorded as a refused chain",
    ),
    pytest.param(
        CREATE,
        CallError(409, "Conflict"),
        Conflict("create", CallError(409, "Conflict")),
        id="create answered 409 is a conflict to adopt or report",
    ),
    pytest.param(
        IMPORT,
        CallError(409, "Forbidden"),
        Conflict("import", CallError(409, "Forbidden")),
        id="import answered 409 is a conflict too",
    ),
    pytest.param(
        CREATE,
        CallError(400, "BadParameter"),
        Rejected("create", CallError(400, "BadParameter")),
        id="create answered 400 is rejected for good",
    ),
    pytest.param(
        CREATE,
        CallError(500),
        Failed("CreateCertificate", CallError(500)),
        id="create answered 500 is retried later",
    ),
    pytest.param(
        CREATE,
        CallError(None),
        Failed("CreateCertificate", CallError(None)),
        id="create without an answer is retried later",
    ),
    pytest.param(
        CREATE,
        CallError(403, "Forbidden"),
        Failed("CreateCertificate", CallError(403, "Forbidden")),
        id="create denied by access policy is retried with backoff",
    ),
    pytest.param(
        ReadOperation("web"),
        CallError(404, "PendingCertificateNotFound"),
        OperationRead(NOT_FOUND),
        id="pending operation answered 404 is an observation",
    ),
    pytest.param(
        ReadOperation("web"),
        CallError(429, "Throttled", retry_after=5.0),
        Failed("ReadOperation", CallError(429, "Throttled", retry_after=5.0)),
        id="throttled read is retried later",
    ),
    pytest.param(
        ReadCertificate("web"),
        CallError(404, "CertificateNotFound"),
        CertificateRead(NOT_FOUND),
        id="certificate answered 404 is an observation",
    ),
    pytest.param(
        CancelOperation("web"),
        CallError(400, "BadParameter"),
        CancelRefused(CallError(400, "BadParameter")),
        id="cancel answered 400 is refused (documented profile)",
    ),
    pytest.param(
        CancelOperation("web"),
        CallError(403, "Forbidden"),
        CancelRefused(CallError(403, "Forbidden")),
        id="cancel answered 403 is refused (service profile)",
    ),
    pytest.param(
        DeletePendingOperation("web"),
        CallError(404),
        PendingDeleted(),
        id="deleting a pending operation already gone is done",
    ),
    pytest.param(
        DeleteCertificate("web"),
        CallError(404),
        CertificateDeleted(),
        id="deleting a certificate already gone is done",
    ),
    pytest.param(
        MERGE,
        CallError(403, "Forbidden"),
        MergeRefused("fp-1", forbidden=True, error=CallError(403, "Forbidden")),
        id="merge answered 403 is forbidden while an issuer works",
    ),
    pytest.param(
        MERGE,
        CallError(400, "BadParameter"),
        MergeRefused("fp-1", forbidden=False, error=CallError(400, "BadParameter")),
        id="merge answered 400 is a rejected chain",
    ),
    pytest.param(
        MERGE,
        CallError(404),
        OperationRead(NOT_FOUND),
        id="merge answered 404 means the pending operation is gone",
    ),
    pytest.param(
        WRITE,
        CallError(409, "NotOwned"),
        SecretConflict(CallError(409, "NotOwned")),
        id="writing a Secret that is not ours is a conflict",
    ),
    pytest.param(
        ReadSecret("web-tls"),
        CallError(404),
        SecretRead(SecretFacts.absent()),
        id="output Secret answered 404 is absent",
    ),
    pytest.param(
        ReadMergeSecret("web-signed"),
        CallError(404),
        MergeSecretRead(SourceFacts.absent()),
        id="merge Secret answered 404 is absent",
    ),
    pytest.param(
        Emit("Normal", "Issued", "x"), CallError(500), None, id="a failed event is ignored"
    ),
]


@pytest.mark.parametrize(("action", "error", "expected"), FAILURES)
def test_failure_maps_to(action: object, error: CallError, expected: Outcome | None) -> None:
    assert outcome_of(action, error) == expected  # type: ignore[arg-type]


SUCCESSES = [
    pytest.param(
        RecordIntent({"a": 1}),
        None,
        StatusWritten({"a": 1}),
        id="a recorded intent is a status write",
    ),
    pytest.param(CREATE, op(), Created(op()), id="a create returns the operation"),
    pytest.param(IMPORT, cert(), Imported(cert()), id="an import returns the certificate"),
    pytest.param(ReadOperation("web"), op(), OperationRead(op()), id="a read operation"),
    pytest.param(
        CancelOperation("web"),
        op(cancellation_requested=True),
        CancelRequested(op(cancellation_requested=True)),
        id="a cancellation",
    ),
    pytest.param(MERGE, cert(), Merged(cert()), id="a merge returns the certificate"),
    pytest.param(
        WRITE,
        None,
        SecretWritten("x5t-1", "v1"),
        id="a written Secret holds the version it was asked for",
    ),
    pytest.param(
        WriteCsrConfigMap("web-csr", "web", "CSR"),
        None,
        CsrPublished("web-csr"),
        id="a published CSR",
    ),
    pytest.param(DeleteCertificate("web"), None, CertificateDeleted(), id="a soft delete"),
    pytest.param(RecoverCertificate("web"), cert(), Recovered(), id="a recovery"),
]


@pytest.mark.parametrize(("action", "result", "expected"), SUCCESSES)
def test_success_maps_to(action: object, result: object, expected: Outcome) -> None:
    assert outcome_of(action, result) == expected  # type: ignore[arg-type]


def test_a_wrong_result_type_is_a_handler_bug() -> None:
    with pytest.raises(TypeError):
        outcome_of(CREATE, cert())
