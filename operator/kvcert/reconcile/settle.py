"""`settle`: the one loop that turns decisions into a settled round, for production and tests.

    decide -> perform the step's actions in order, folding each outcome into the input ->
    decide again ... until a decision is final (no effects left).

The operator (kvcert.runtime.loop) drives it with real Kubernetes and Key Vault calls, the table
tests (tests/unit/reconcile/support.py) with a fake world: the same loop and the same step limit
(issue #18 §6). Nothing here does I/O: `perform` is given, and awaited.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from kvcert.reconcile.actions import Action
from kvcert.reconcile.decide import reconcile
from kvcert.reconcile.decision import Decision
from kvcert.reconcile.inputs import Input
from kvcert.reconcile.outcomes import outcome_of, proceeds

MAX_STEPS = 24
"""More steps than any round needs (a Self completion takes five, a renewal with a merge about
ten); reaching it is a bug in the ladder, reported as `Unsettled`."""

Perform = Callable[[Decision, Action], Awaitable[object]]
"""`perform(decision, action)`: do one action of `decision`; its result is the call's value, or a
CallError when the call failed (kvcert.reconcile.outcomes.outcome_of reads either). An `Emit`
is performed too (an event is posted); its outcome is None."""
Around = Callable[[Decision], AbstractAsyncContextManager[object]]
"""What a step's actions run inside (the operator: a create slot for a decision that creates)."""


@dataclass(frozen=True)
class Settled:
    """A settled round: its final `decision`, the `inp` with every outcome of the round folded
    in (what the caller reads, e.g. whether a call failed), and the number of `steps` decided."""

    decision: Decision
    inp: Input
    steps: int


class Unsettled(RuntimeError):
    """The ladder did not reach a final decision in `MAX_STEPS` steps: a bug, never an input
    the ladder may legitimately loop on. `rung` names the last decision's rung."""

    def __init__(self, steps: int, rung: str) -> None:
        super().__init__(f"reconcile did not settle in {steps} steps (last rung: {rung})")
        self.steps = steps
        self.rung = rung


def _nothing(_: Decision) -> AbstractAsyncContextManager[object]:
    return contextlib.nullcontext()


async def settle(
    inp: Input, perform: Perform, *, around: Around = _nothing, max_steps: int = MAX_STEPS
) -> Settled:
    """Decide and perform until a decision is final; raises Unsettled after `max_steps`.

    Within a step, an outcome that does not proceed (anything but a durable status write or an
    event: kvcert.reconcile.outcomes.proceeds) ends the step: above all, no create is sent
    unless the write of its intent succeeded. Exceptions from `perform` propagate unchanged
    (the round is abandoned, as a crash would abandon it)."""
    decision: Decision | None = None
    for steps in range(1, max_steps + 1):
        decision = reconcile(inp)
        async with around(decision):
            for action in decision.actions:
                outcome = outcome_of(action, await perform(decision, action))
                inp = inp.with_outcome(outcome)
                if not proceeds(outcome):
                    break
        if decision.final:
            return Settled(decision, inp, steps)
    raise Unsettled(max_steps, decision.rung if decision is not None else "")
