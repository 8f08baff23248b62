"""Pure decisions for Certificates: gather an `Input`, `reconcile` it, act on the `Decision`.

No I/O, no clock, no randomness and no kopf/kubernetes/httpx/asyncio imports here (checked by
import-linter), so every transition is a table test. The handler's loop:

    inp = Input.from_body(body, now=..., marker=uuid4().hex, jitter=random(), vault=...)
    for _ in range(MAX_STEPS):                   # a guard; a reconcile settles in a few steps
        decision = reconcile(inp)
        for action in decision.actions:          # in order; Emit is fire-and-forget
            result = perform(action)             # its value, or a CallError when it failed
            outcome = outcome_of(action, result)
            inp = inp.with_outcome(outcome)
            if not proceeds(outcome):
                break                            # e.g. the intent write failed: no create
        if not decision.final:
            continue                             # effects were performed: decide again
        patch status with decision.status_patch (if any); requeue after decision.requeue_after
        break

`RecordIntent(patch)` is performed as a merge patch of status. A final decision's
`requeue_after` is the next poll or retry (None: nothing to wait for; for a deletion, the
finalizer may go). tests/unit/reconcile/support.py `World.reconcile_once` is this loop, run
against a fake Key Vault.
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

MAX_STEPS = 16
"""More steps than any reconcile needs (a Self completion takes five); a guard against a bug."""

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
    "SourceFacts",
    "VaultFacts",
    "WriteCsrConfigMap",
    "WriteSecret",
    "outcome_of",
    "proceeds",
    "reconcile",
]
