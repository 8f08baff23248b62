"""Pure decisions for Certificates: gather an `Input`, `reconcile` it, act on the `Decision`.

No I/O, no clock, no randomness and no kopf/kubernetes/httpx/asyncio imports here (checked by
import-linter), so every transition is a table test. One round is `settle` (settle.py), the same
loop for the operator (kvcert.runtime.loop) and the table tests (tests/unit/reconcile/support.py):

    inp = Input.from_body(body, now=..., marker=uuid4().hex, jitter=random(), vault=...)
    settled = await settle(inp, perform)   # decide, perform each step's actions, fold, repeat
    patch status with settled.decision.status_patch; requeue after its requeue_after

`RecordIntent(patch)` is performed as a merge patch of status. A final decision's
`requeue_after` is the next poll or retry (None: nothing to wait for; for a deletion, the
finalizer may go).
"""

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
    WriteCsrConfigMap,
    WriteSecret,
)
from kvcert.reconcile.decide import reconcile
from kvcert.reconcile.decision import Decision
from kvcert.reconcile.facts import SecretFacts, SourceFacts, VaultFacts
from kvcert.reconcile.inputs import Input, InvalidSpec
from kvcert.reconcile.observed import (
    NOT_FOUND,
    CallError,
    ObservedCertificate,
    ObservedOperation,
    OperationError,
    OperationStatus,
)
from kvcert.reconcile.outcomes import Outcome, outcome_of, proceeds
from kvcert.reconcile.reasons import Reason
from kvcert.reconcile.settle import MAX_STEPS, Settled, Unsettled, settle

__all__ = [
    "MAX_STEPS",
    "NOT_FOUND",
    "Action",
    "CallError",
    "CancelOperation",
    "CreateCertificate",
    "Decision",
    "DeleteCertificate",
    "DeletePendingOperation",
    "Emit",
    "ImportCertificate",
    "Input",
    "InvalidSpec",
    "MergeChain",
    "ObservedCertificate",
    "ObservedOperation",
    "OperationError",
    "OperationStatus",
    "Outcome",
    "ReadCertificate",
    "ReadImportSecret",
    "ReadMergeSecret",
    "ReadOperation",
    "ReadSecret",
    "Reason",
    "RecordIntent",
    "RecoverCertificate",
    "SecretFacts",
    "Settled",
    "SourceFacts",
    "Unsettled",
    "VaultFacts",
    "WriteCsrConfigMap",
    "WriteSecret",
    "outcome_of",
    "proceeds",
    "reconcile",
    "settle",
]
