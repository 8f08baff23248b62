"""Results of actions, and the one mapping from a call's result to an outcome.

The handler's part is mechanical: perform the action, then
`inp = inp.with_outcome(outcome_of(action, result_or_call_error))`. Which HTTP statuses mean
"adopt", "report" or "retry later" is decided here, next to the decisions that depend on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from kvcert.reconcile.actions import (
    Action,
    CancelOperation,
    CreateCertificate,
    DeleteCertificate,
    DeletePendingOperation,
    Emit,
    ImportCertificate,
    MergeChain,
    ReadCertificate,
    ReadImportSecret,
    ReadMergeSecret,
    ReadOperation,
    ReadSecret,
    RecordIntent,
    RecoverCertificate,
    UpdateInPlace,
    WriteCsrConfigMap,
    WriteSecret,
)
from kvcert.reconcile.facts import SecretFacts, SourceFacts
from kvcert.reconcile.observed import (
    NOT_FOUND,
    CallError,
    NotFound,
    ObservedCertificate,
    ObservedOperation,
)


@dataclass(frozen=True)
class StatusWritten:
    patch: Mapping[str, Any]


@dataclass(frozen=True)
class Created:
    operation: ObservedOperation


@dataclass(frozen=True)
class Imported:
    certificate: ObservedCertificate


@dataclass(frozen=True)
class Merged:
    certificate: ObservedCertificate


@dataclass(frozen=True)
class OperationRead:
    operation: ObservedOperation | NotFound


@dataclass(frozen=True)
class CertificateRead:
    certificate: ObservedCertificate | NotFound


@dataclass(frozen=True)
class SecretRead:
    facts: SecretFacts


@dataclass(frozen=True)
class MergeSecretRead:
    facts: SourceFacts


@dataclass(frozen=True)
class ImportSecretRead:
    facts: SourceFacts


@dataclass(frozen=True)
class SecretWritten:
    x5t: str
    version: str
    output_hash: str | None = None


@dataclass(frozen=True)
class OutputRefused:
    """The Secret could not be shaped as asked (the PKCS12 password Secret is missing or empty);
    `error.message` names the Secret and key, never a value."""

    error: CallError


@dataclass(frozen=True)
class UpdatedInPlace:
    """Key Vault applied lifetimeActions and tags in place; `digest` is what was applied."""

    digest: str


@dataclass(frozen=True)
class UpdateRefused:
    """Key Vault refused the in-place update as invalid (4xx other than 401/403/404/429)."""

    error: CallError


@dataclass(frozen=True)
class CsrPublished:
    name: str


@dataclass(frozen=True)
class CancelRequested:
    operation: ObservedOperation


@dataclass(frozen=True)
class PendingDeleted:
    pass


@dataclass(frozen=True)
class CertificateDeleted:
    pass


@dataclass(frozen=True)
class Conflict:
    """409 on create or import: a pending operation is in progress (ours or not)."""

    action: Literal["create", "import"]
    error: CallError


@dataclass(frozen=True)
class SoftDeleted:
    """409 ObjectIsDeletedButRecoverable on create or import: the name is soft-deleted in Key
    Vault; nothing was created, and nothing can be until it is recovered or purged."""

    action: Literal["create", "import"]
    error: CallError


@dataclass(frozen=True)
class Recovered:
    """The recover call returned: `found` False when nothing of that name was deleted any more
    (purged, or recovered by someone else). Either way the certificate is read again."""

    found: bool = True


@dataclass(frozen=True)
class Rejected:
    """Key Vault refused a create or import for good (400 and the like)."""

    action: Literal["create", "import"]
    error: CallError


@dataclass(frozen=True)
class MergeRefused:
    """403 (an issuer's request is in progress) or 400 (bad chain, key mismatch)."""

    fingerprint: str
    forbidden: bool
    error: CallError


@dataclass(frozen=True)
class CancelRefused:
    error: CallError


@dataclass(frozen=True)
class SecretConflict:
    """The output Secret exists and is not ours: it is never overwritten."""

    error: CallError


@dataclass(frozen=True)
class Failed:
    """A call that may succeed if repeated unchanged later: backoff, keep everything recorded."""

    action: str
    error: CallError


Outcome = (
    StatusWritten
    | Created
    | Imported
    | Merged
    | OperationRead
    | CertificateRead
    | SecretRead
    | MergeSecretRead
    | ImportSecretRead
    | SecretWritten
    | OutputRefused
    | CsrPublished
    | UpdatedInPlace
    | UpdateRefused
    | CancelRequested
    | PendingDeleted
    | CertificateDeleted
    | Conflict
    | SoftDeleted
    | Recovered
    | Rejected
    | MergeRefused
    | CancelRefused
    | SecretConflict
    | Failed
)

_T = TypeVar("_T")

OUTPUT_REFUSED = "OutputRefused"
"""The code of a WriteSecret `CallError` that an output format could not be built."""
DELETED_BUT_RECOVERABLE = "objectisdeletedbutrecoverable"
BEING_DELETED = "objectisbeingdeleted"
ACCESS_DENIED_CODES = frozenset(
    {"accessdenied", "forbiddenbyrbac", "forbiddenbypolicy", "forbiddenbyfirewall"}
)
"""Inner codes of Key Vault's 403s that refuse the caller, not the request (folded case)."""


def _expect(result: object, kind: type[_T]) -> _T:
    if not isinstance(result, kind):
        raise TypeError(f"expected {kind.__name__}, got {type(result).__name__}")
    return result


def outcome_of(action: Action, result: object) -> Outcome | None:
    """Map what performing `action` returned (its value, or a `CallError`) to an outcome.

    Success values: RecordIntent, DeleteCertificate, WriteCsrConfigMap, Emit -> None;
    CreateCertificate, ReadOperation, CancelOperation -> ObservedOperation;
    DeletePendingOperation, RecoverCertificate -> anything; ImportCertificate, ReadCertificate,
    MergeChain -> ObservedCertificate; ReadSecret -> SecretFacts; ReadMergeSecret,
    ReadImportSecret -> SourceFacts; WriteSecret -> None. `None` is returned only for Emit.
    """
    if isinstance(result, CallError):
        return _failure(action, result)
    match action:
        case RecordIntent():
            return StatusWritten(action.patch)
        case CreateCertificate():
            return Created(_expect(result, ObservedOperation))
        case ImportCertificate():
            return Imported(_expect(result, ObservedCertificate))
        case ReadOperation():
            return OperationRead(_expect(result, ObservedOperation))
        case ReadCertificate():
            return CertificateRead(_expect(result, ObservedCertificate))
        case CancelOperation():
            return CancelRequested(_expect(result, ObservedOperation))
        case DeletePendingOperation():
            return PendingDeleted()
        case MergeChain():
            return Merged(_expect(result, ObservedCertificate))
        case DeleteCertificate():
            return CertificateDeleted()
        case RecoverCertificate():
            return Recovered()
        case ReadSecret():
            return SecretRead(_expect(result, SecretFacts))
        case ReadMergeSecret():
            return MergeSecretRead(_expect(result, SourceFacts))
        case ReadImportSecret():
            return ImportSecretRead(_expect(result, SourceFacts))
        case WriteSecret():
            return SecretWritten(
                x5t=action.x5t, version=action.version, output_hash=action.output_hash
            )
        case WriteCsrConfigMap():
            return CsrPublished(action.name)
        case UpdateInPlace():
            return UpdatedInPlace(action.digest)
        case Emit():
            return None


def _failure(action: Action, error: CallError) -> Outcome | None:
    """Classify a failed call. Anything not recognised is `Failed`: retried with backoff."""
    if isinstance(action, Emit):
        return None
    if error.transient or access_denied(error) or being_deleted(error):
        return Failed(type(action).__name__, error)
    status = error.status
    match action:
        case CreateCertificate() | ImportCertificate():
            kind: Literal["create", "import"] = (
                "create" if isinstance(action, CreateCertificate) else "import"
            )
            if status == 409 and error.inner_code.casefold() == DELETED_BUT_RECOVERABLE:
                return SoftDeleted(kind, error)
            if status == 409:
                return Conflict(kind, error)
            if status in (400, 404, 413, 422):  # 413: too large, never accepted as it is
                return Rejected(kind, error)
        case ReadOperation() if status == 404:
            return OperationRead(NOT_FOUND)
        case ReadCertificate() if status == 404:
            return CertificateRead(NOT_FOUND)
        case CancelOperation():
            if status in (400, 403, 409):
                return CancelRefused(error)
            if status == 404:
                return OperationRead(NOT_FOUND)
        case DeletePendingOperation() if status == 404:
            return PendingDeleted()
        case UpdateInPlace() if status == 404:
            return CertificateRead(NOT_FOUND)
        case UpdateInPlace() if status in (400, 409, 422):
            return UpdateRefused(error)
        case DeleteCertificate() if status == 404:
            return CertificateDeleted()
        case RecoverCertificate() if status == 404:
            return Recovered(found=False)
        case MergeChain():
            if status == 404:
                return OperationRead(NOT_FOUND)
            if status is not None and 400 <= status < 500:
                return MergeRefused(action.fingerprint, forbidden=status == 403, error=error)
        case WriteSecret() if status == 409:
            return SecretConflict(error)
        case WriteSecret() if status in (403, 422) and error.code == OUTPUT_REFUSED:
            return OutputRefused(error)
        case ReadSecret() if status == 404:
            return SecretRead(SecretFacts.absent())
        case ReadMergeSecret() if status == 404:
            return MergeSecretRead(SourceFacts.absent())
        case ReadImportSecret() if status == 404:
            return ImportSecretRead(SourceFacts.absent())
        case _:
            pass
    return Failed(type(action).__name__, error)


def access_denied(error: CallError) -> bool:
    """403 because of who asks (an access policy, RBAC, the firewall), not of the object's
    state: Key Vault says so in the inner code. A permission can be granted later, so such a
    call is retried with backoff, never recorded as a refusal."""
    return error.status == 403 and error.inner_code.casefold() in ACCESS_DENIED_CODES


def being_deleted(error: CallError) -> bool:
    """409 ObjectIsBeingDeleted: a soft delete (or recovery) of the name is still running."""
    return error.status == 409 and error.inner_code.casefold() == BEING_DELETED


def proceeds(outcome: Outcome | None) -> bool:
    """Whether the rest of a step may run after this outcome.

    Only a durable status write (the intent) or an event lets the next action of the same step
    run; after anything else, and above all after a failed intent write, the handler decides
    again. This is what guarantees that no create is ever sent without its intent on record.
    """
    return outcome is None or isinstance(outcome, StatusWritten)
