"""`settle`, the loop the operator and these table tests share (issue #18 §6)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from kvcert.reconcile import (
    MAX_STEPS,
    Action,
    CallError,
    CreateCertificate,
    Decision,
    Input,
    RecordIntent,
    Settled,
    Unsettled,
    settle,
)
from kvcert.reconcile.settle import Perform
from tests.unit.reconcile.support import NOW, World, body


def _run(world: World, perform: Perform, **kwargs: Any) -> Settled:
    inp = Input.from_body(world.raw, now=NOW, marker="m1")
    return asyncio.run(settle(inp, perform, **kwargs))


def test_a_round_that_needs_more_steps_than_allowed_is_unsettled_and_names_its_rung() -> None:
    world = World(body())

    async def perform(_: Decision, action: Action) -> object:
        return world.perform(action)

    with pytest.raises(Unsettled) as raised:
        _run(world, perform, max_steps=1)
    assert raised.value.steps == 1
    assert raised.value.rung
    assert "did not settle in 1 steps" in str(raised.value)


def test_the_production_step_limit_settles_a_whole_self_issuance() -> None:
    world = World(body())
    performed: list[str] = []

    async def perform(_: Decision, action: Action) -> object:
        performed.append(type(action).__name__)
        return world.perform(action)

    settled = _run(world, perform)
    assert settled.decision.final
    assert 1 < settled.steps <= MAX_STEPS
    assert "CreateCertificate" in performed


def test_a_failed_intent_write_ends_the_step_before_the_create() -> None:
    world = World(body())
    performed: list[str] = []

    async def perform(_: Decision, action: Action) -> object:
        performed.append(type(action).__name__)
        if isinstance(action, RecordIntent):
            return CallError(status=503, code="ServiceUnavailable", message="down")
        return world.perform(action)

    settled = _run(world, perform)
    assert "RecordIntent" in performed
    assert not any(isinstance(a, CreateCertificate) for a in settled.decision.actions)
    assert "CreateCertificate" not in performed
    assert settled.decision.requeue_after is not None


def test_every_step_runs_inside_around() -> None:
    world = World(body())
    entered: list[str] = []

    @contextlib.asynccontextmanager
    async def around(decision: Decision) -> AsyncIterator[None]:
        entered.append(decision.rung)
        yield

    async def perform(_: Decision, action: Action) -> object:
        return world.perform(action)

    settled = _run(world, perform, around=around)
    assert len(entered) == settled.steps
