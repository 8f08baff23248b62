"""The `Decision` type and the composition of a final status patch.

A decision is either a *step* (it holds effects: perform them, fold their outcomes, decide
again; its status patch is empty) or *final* (no effects: emit its events, write its status
patch, requeue after `requeue_after` if set). Keeping patches on final decisions only is what
makes one reconcile cost at most one status write, plus the `RecordIntent` write before a create.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kvcert.api.certificate import CertificateSpec
from kvcert.api.status import OperationError, OperationState
from kvcert.reconcile import lifecycle, operation, readiness
from kvcert.reconcile.actions import Action, Emit
from kvcert.reconcile.inputs import Input
from kvcert.reconcile.observed import ObservedCertificate
from kvcert.reconcile.operation import OperationView
from kvcert.reconcile.outcomes import (
    CancelRefused,
    CancelRequested,
    Created,
    Failed,
    Imported,
    Merged,
    Recovered,
    UpdatedInPlace,
)
from kvcert.reconcile.patch import merge_patch_diff
from kvcert.reconcile.readiness import Verdict
from kvcert.reconcile.reasons import Reason
from kvcert.reconcile.schedule import poll_delay

OWNED_KEYS = (
    "observedGeneration",
    "conditions",
    "operation",
    "certificate",
    "renewalTime",
    "handledRequests",
    "appliedUpdate",
    "failedAttempts",
    "lastFailureTime",
)
FAILURE_KEYS = ("failedAttempts", "lastFailureTime")
RETRIED_REASONS = frozenset(
    {
        Reason.VAULT_NOT_READY,
        Reason.KEY_VAULT_ERROR,
        Reason.THROTTLED,
        Reason.ACCESS_DENIED,
        Reason.OUTPUT_REFUSED,
    }
)
"""Verdicts of a round that failed and is retried with backoff: each one counts in
status.failedAttempts, so the next retry waits twice as long (issue #18 §3)."""


@dataclass(frozen=True)
class Decision:
    """What to do now. `rung` names the ladder rung that decided (for logs and tests)."""

    actions: tuple[Action, ...] = ()
    status_patch: Mapping[str, Any] = field(default_factory=dict)
    requeue_after: float | None = None
    """Seconds until the next reconcile (poll or retry); None: nothing to wait for (for a
    deletion: clean-up is complete and the finalizer may go)."""
    rung: str = ""
    failed: bool = False
    """This round failed and is retried with backoff: the operator counts it (Input.attempt of
    the next round, status.failedAttempts), and forgets the count after a round that did not."""

    def __post_init__(self) -> None:
        if self.status_patch and not self.final:
            raise ValueError("a step decision carries no status patch: it is decided again")

    @property
    def final(self) -> bool:
        return not any(action.effect for action in self.actions)

    @property
    def events(self) -> tuple[Emit, ...]:
        return tuple(action for action in self.actions if isinstance(action, Emit))


def step(rung: str, *actions: Action) -> Decision:
    """A step: perform these effects, fold their outcomes, decide again."""
    return Decision(actions=tuple(actions), rung=rung)


def desired_status(
    inp: Input,
    verdict: Verdict,
    current: OperationView,
    error: OperationError | None = None,
    *,
    failed: bool = False,
) -> dict[str, Any]:
    """The owned part of status after this reconcile, camelCase, JSON types. A `failed` round
    counts in failedAttempts (Input.attempt + 1) and stamps lastFailureTime; a round that did
    not fail drops failedAttempts and keeps the last failure's time."""
    state = operation.desired(inp, current, error)
    info = readiness.certificate_info(inp, verdict)
    renewal, handled, applied = (
        inp.status.renewal_time,
        inp.status.handled_requests,
        inp.status.applied_update,
    )
    if isinstance(inp.spec, CertificateSpec):
        renewal = lifecycle.renewal_time(inp, inp.spec, info)
        handled = lifecycle.handled(inp, current)
        applied = lifecycle.applied_update(inp, inp.spec)
    return {
        "observedGeneration": inp.generation,
        "conditions": [item.to_wire() for item in readiness.conditions(inp, verdict)],
        "operation": state.to_wire() if state is not None else None,
        "certificate": info.to_wire() if info is not None else None,
        "renewalTime": _timestamp(renewal),
        "handledRequests": handled.to_wire() if handled is not None else None,
        "appliedUpdate": applied,
        **failures(inp, failed=failed),
    }


def failures(inp: Input, *, failed: bool) -> dict[str, Any]:
    """failedAttempts and lastFailureTime after this round (see `desired_status`)."""
    if failed:
        return {"failedAttempts": inp.attempt + 1, "lastFailureTime": _timestamp(inp.now)}
    return {"failedAttempts": None, "lastFailureTime": _timestamp(inp.status.last_failure_time)}


def _timestamp(value: datetime | None) -> str | None:
    """RFC 3339 with a Z, as the API server writes times."""
    if value is None:
        return None
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def final(
    inp: Input,
    verdict: Verdict,
    current: OperationView,
    *,
    rung: str,
    requeue_after: float | None = None,
    events: Sequence[Emit] = (),
    error: OperationError | None = None,
) -> Decision:
    """A final decision: the status patch is the difference to the desired status. The round
    failed (Decision.failed) when a call failed transiently or the verdict is RETRIED_REASONS."""
    failed = inp.last(Failed) is not None or verdict.reason in RETRIED_REASONS
    verdict = readiness.serving(inp, verdict)
    recorded = inp.status.to_wire()
    have = {key: recorded[key] for key in OWNED_KEYS if key in recorded}
    patch = merge_patch_diff(have, desired_status(inp, verdict, current, error, failed=failed))
    emitted = list(events)
    event = readiness.event_for(inp, verdict)
    if event is not None and all(item.reason != event.reason for item in emitted):
        emitted.append(event)  # one event per reason and round
    return Decision(
        actions=tuple(emitted),
        status_patch=patch,
        requeue_after=requeue_after,
        rung=rung,
        failed=failed,
    )


def conclude(
    inp: Input,
    verdict: Verdict,
    current: OperationView,
    *,
    rung: str,
    requeue_after: float | None = None,
    events: Sequence[Emit] = (),
    error: OperationError | None = None,
) -> Decision:
    """A final decision, with the events this round's outcomes deserve."""
    return final(
        inp,
        verdict,
        current,
        rung=rung,
        requeue_after=requeue_after,
        events=(*round_events(inp, current), *events),
        error=error,
    )


def round_events(inp: Input, current: OperationView) -> list[Emit]:
    """One Normal event per thing that happened in Key Vault in this round."""
    events: list[Emit] = []
    name = inp.certificate_name
    op = current.op
    known = inp.status.operation or OperationState()
    if (recovered := inp.last(Recovered)) is not None and recovered.found:
        text = f"recovered the soft-deleted certificate {name} (spec.onSoftDeleted: Recover)"
        events.append(Emit("Normal", Reason.RECOVERED, text))
    if (created := inp.last(Created)) is not None:
        issuer = created.operation.issuer_name or "?"
        text = f"Key Vault accepted the create of {name} (request {created.operation.request_id}"
        events.append(Emit("Normal", Reason.CREATED, f"{text}, issuer {issuer})"))
    elif op is not None and known.request_id is None:
        text = f"adopted the pending operation {op.request_id} of {name}"
        events.append(Emit("Normal", Reason.ADOPTED, text))
    if inp.last(CancelRequested) is not None:
        events.append(Emit("Normal", Reason.CANCELLING, f"requested cancellation of {name}"))
    if (refused := inp.last(CancelRefused)) is not None:
        text = f"Key Vault refused the cancellation of {name}: {describe(refused.error)}"
        events.append(Emit("Warning", Reason.CANCEL_REFUSED, text))
    if inp.last(Merged) is not None:
        events.append(Emit("Normal", Reason.MERGED, f"merged the signed chain into {name}"))
    elif operation.merged_unseen(inp, current):
        text = f"found the chain of mergeFrom merged into {name} (its answer was not recorded)"
        events.append(Emit("Normal", Reason.MERGED, text))
    if inp.last(UpdatedInPlace) is not None and lifecycle.adopting(inp, current):
        cert = inp.certificate
        adopted = cert.version if isinstance(cert, ObservedCertificate) else "?"
        text = (
            f"adopted Key Vault certificate {name} at its current version {adopted}: tagged"
            " managed-by: kvcert, spec.policy applied for the next version; no version was"
            " created"
        )
        events.append(Emit("Normal", Reason.ADOPTED, text))
    elif inp.last(UpdatedInPlace) is not None:
        text = f"applied lifetimeActions and tags to {name} in place (no new version)"
        events.append(Emit("Normal", Reason.UPDATED, text))
    if (imported := inp.last(Imported)) is not None:
        text = f"imported {name} version {imported.certificate.version}"
        events.append(Emit("Normal", Reason.IMPORTED, text))
    elif (version := operation.import_unrecorded(inp, current)) is not None:
        text = f"adopted version {version} of {name}, imported under this Certificate's intent"
        events.append(Emit("Normal", Reason.ADOPTED, text))
    return events


def describe(error: object) -> str:
    """`code: message` of a CallError for humans (messages arrive scrubbed by the client)."""
    code = getattr(error, "code", "") or f"HTTP {getattr(error, 'status', '?')}"
    message = getattr(error, "message", "")
    return f"{code}: {message}" if message else str(code)


def poll(inp: Input, current: OperationView) -> float:
    """Next poll of an in-progress operation: from its age (the intent's time) and Retry-After."""
    started = current.intent.recorded_at if current.intent is not None else None
    retry_after = current.op.retry_after if current.op is not None else None
    return poll_delay(started, inp.now, inp.jitter, retry_after)
