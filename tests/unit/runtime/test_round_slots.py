"""Per-round bookkeeping of kvcert.runtime.loop.Context: an object's lock exists only while a
round needs it, and only a decision that creates or imports waits for the vault's create slot
(issue #17: completions before creates; an idle Certificate keeps nothing)."""

from __future__ import annotations

import asyncio
from typing import Any

from kvcert.reconcile.actions import CreateCertificate, ReadOperation, RecordIntent
from kvcert.reconcile.decision import Decision
from kvcert.runtime import loop


def _context() -> loop.Context:
    return loop.Context(kube=None, vaults=None, events=None)  # type: ignore[arg-type]


class _Vault:
    vault_url = "https://kv.vault.local:8443"


def _decision(*actions: Any) -> Decision:
    return Decision(actions=tuple(actions), rung="test")


async def test_an_objects_lock_lives_only_while_rounds_hold_or_await_it() -> None:
    ctx = _context()
    entered, release = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with ctx.rounds.exclusive("u"):
            entered.set()
            await release.wait()

    holder = asyncio.create_task(first())
    await entered.wait()
    waiter = asyncio.create_task(_enter(ctx, "u"))
    await asyncio.sleep(0)  # let the waiter queue on the lock
    assert "u" in ctx.rounds
    release.set()
    await asyncio.gather(holder, waiter)
    assert ctx.rounds.locks == {}
    assert ctx.rounds.users == {}


async def _enter(ctx: loop.Context, uid: str) -> None:
    async with ctx.rounds.exclusive(uid):
        pass


async def test_only_creates_wait_for_the_vaults_create_slot() -> None:
    ctx = _context()
    vault: Any = _Vault()
    create = _decision(RecordIntent({}), CreateCertificate("web", None, {}))  # type: ignore[arg-type]
    poll = _decision(ReadOperation("web"))
    held = [ctx.create_slot(vault, create) for _ in range(loop.CREATES_IN_FLIGHT)]
    for slot in held:
        await slot.__aenter__()
    blocked = asyncio.create_task(_hold(ctx.create_slot(vault, create)))
    async with ctx.create_slot(vault, poll):  # a poll never waits behind creates
        pass
    await asyncio.sleep(0)
    assert not blocked.done()  # the ninth create waits for a slot
    await held[0].__aexit__(None, None, None)
    await asyncio.wait_for(blocked, 5)
    for slot in held[1:]:
        await slot.__aexit__(None, None, None)


async def _hold(slot: Any) -> None:
    async with slot:
        pass
