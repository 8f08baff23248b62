"""One reconcile of one Certificate: gather the input, let reconcile decide, perform, repeat.

This is the whole of the operator's control flow; `handlers.py` only decides *when* to call it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client.exceptions import ApiException

from kvcert.api.certificate import CertificateSpec, DeletionPolicy
from kvcert.keyvault import KeyVaultClient
from kvcert.reconcile import Emit, Input, VaultFacts, outcome_of, reconcile
from kvcert.reconcile.actions import CreateCertificate, ImportCertificate
from kvcert.reconcile.decision import Decision
from kvcert.reconcile.observed import CallError
from kvcert.reconcile.outcomes import Failed, proceeds
from kvcert.runtime import crashpoints
from kvcert.runtime.cache import KEEP_BODY_SECONDS, LatestBodies, OutputSecrets
from kvcert.runtime.clock import Clock
from kvcert.runtime.events import EventRecorder
from kvcert.runtime.kube import FINALIZER, Kube, Owner
from kvcert.runtime.metrics import Metrics
from kvcert.runtime.perform import Performer
from kvcert.runtime.vaults import VaultClients, VaultUnavailable

log = logging.getLogger("kvcert.reconcile")
CREATES = (CreateCertificate, ImportCertificate)
CREATES_IN_FLIGHT = 16
"""Decisions that create or import in one vault at a time (the intent write and the call).
Finishing work (polling, reading the certificate, writing the Secret) never waits for this
slot: under a batch of a thousand new Certificates, one whose operation has completed is done
while the others queue here, not behind them (issue #17 §3). Key Vault's create rate limit
(kvcert.keyvault.retry.VaultRateLimiter) still applies inside the slot."""
MAX_STEPS = 24
"""A reconcile that has not settled after this many steps is a bug; back off and say so."""
UNSETTLED_DELAY = 60.0


@dataclass
class Context:
    """What every reconcile shares: clients, the operator's clock (reconcile's `now`), the
    metrics (kvcert.runtime.metrics), and per-object bookkeeping kept in memory."""

    kube: Kube
    vaults: VaultClients
    events: EventRecorder
    clock: Clock = field(default_factory=Clock)
    metrics: Metrics = field(default_factory=Metrics)
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    bodies: LatestBodies = field(default_factory=LatestBodies)
    outputs: OutputSecrets = field(default_factory=OutputSecrets)
    create_slots: dict[str, asyncio.Semaphore] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)

    @contextlib.asynccontextmanager
    async def exclusive(self, uid: str) -> AsyncIterator[None]:
        """Hold the object's lock: one round at a time per Certificate. The lock exists only
        while a round holds or awaits it, so an idle Certificate keeps none (issue #17 §4);
        `uid in locks` still tells a round whether a DELETED event forgot the object. `users`
        counts the rounds holding or awaiting the current lock (forget drops both)."""
        lock = self.locks.setdefault(uid, asyncio.Lock())
        self.users[uid] = self.users.get(uid, 0) + 1
        try:
            async with lock:
                yield
        finally:
            if self.locks.get(uid) is lock:  # else forgotten: its count went with it
                left = self.users.pop(uid, 1) - 1
                if left > 0:
                    self.users[uid] = left
                else:
                    del self.locks[uid]

    def create_slot(
        self, vault: KeyVaultClient | None, decision: Decision
    ) -> AbstractAsyncContextManager[object]:
        """The vault's create slot when `decision` creates or imports, else no wait at all."""
        if vault is None or not any(isinstance(a, CREATES) for a in decision.actions):
            return contextlib.nullcontext()
        return self.create_slots.setdefault(vault.vault_url, asyncio.Semaphore(CREATES_IN_FLIGHT))

    def forget(self, uid: str) -> None:
        self.locks.pop(uid, None)
        self.users.pop(uid, None)
        self.attempts.pop(uid, None)
        self.bodies.forget(uid)


def wants_finalizer(body: Mapping[str, Any]) -> bool:
    """Only a deletionPolicy that acts in Key Vault needs to hold the object's deletion."""
    policy = body.get("spec", {}).get("deletionPolicy", DeletionPolicy.RETAIN.value)
    return bool(policy != DeletionPolicy.RETAIN.value)


async def _sync_finalizer(ctx: Context, body: Mapping[str, Any]) -> bool:
    """Add or drop our finalizer to match deletionPolicy; True when it is (now) present."""
    meta = body["metadata"]
    finalizers = list(meta.get("finalizers") or [])
    present = FINALIZER in finalizers
    if meta.get("deletionTimestamp"):
        return present
    if wants_finalizer(body) and not present:
        await ctx.kube.set_finalizer(meta["namespace"], meta["name"], [*finalizers, FINALIZER])
        return True
    if not wants_finalizer(body) and present:
        finalizers.remove(FINALIZER)
        await ctx.kube.set_finalizer(meta["namespace"], meta["name"], finalizers)
        return False
    return present


async def _vault(ctx: Context, inp: Input) -> tuple[KeyVaultClient | None, VaultFacts]:
    if not isinstance(inp.spec, CertificateSpec):
        return None, VaultFacts()  # reconcile reports the invalid spec itself
    try:
        return await ctx.vaults.for_ref(inp.meta.namespace or "", inp.spec.vault_ref), VaultFacts()
    except VaultUnavailable as unavailable:
        return None, unavailable.facts()


async def reconcile_certificate(
    ctx: Context, body: Mapping[str, Any], *, fresh_reads: bool = False
) -> float | None:
    """Bring one Certificate one round closer to its spec; returns seconds until the next round.

    Counted in kvcert_reconcile_total: `error` when it raises or does not settle, `requeue`
    when it asks for a next round, `ok` otherwise; timed in kvcert_reconcile_duration_seconds."""
    started = time.perf_counter()
    result = "error"
    try:
        delay, settled = await _reconcile_round(ctx, body, fresh_reads)
        if settled:
            result = "ok" if delay is None else "requeue"
        return delay
    finally:
        ctx.metrics.reconciled(result, time.perf_counter() - started)


async def _reconcile_round(
    ctx: Context, body: Mapping[str, Any], fresh_reads: bool
) -> tuple[float | None, bool]:
    """(seconds until the next round or None, whether the round settled); `fresh_reads`: read
    the output Secret rather than trust what the watch said (a start-up or re-list round)."""
    meta = body["metadata"]
    uid, namespace, name = meta["uid"], meta["namespace"], meta["name"]
    deleting = bool(meta.get("deletionTimestamp"))
    has_finalizer = await _sync_finalizer(ctx, body)
    if deleting and not has_finalizer:
        ctx.forget(uid)
        ctx.metrics.forget_certificate(namespace, name)
        return None, True  # not ours to hold: Kubernetes removes it
    inp = Input.from_body(
        body,
        now=ctx.clock.now(),
        marker=uuid.uuid4().hex,
        jitter=random.random(),  # noqa: S311 - spreading requeues, not security
        attempt=ctx.attempts.get(uid, 0),
    )
    vault, vault_facts = await _vault(ctx, inp)  # the spec as Input parsed it, not again
    inp = dataclasses.replace(inp, vault=vault_facts)
    performer = Performer(
        kube=ctx.kube,
        vault=vault,
        namespace=namespace,
        owner=Owner(name=name, uid=uid),
        resource_version=meta.get("resourceVersion"),
        outputs=ctx.outputs,
        delivered=bool((body.get("status") or {}).get("certificate")),
        fresh_reads=fresh_reads,
    )
    decision: Decision | None = None
    for _ in range(MAX_STEPS):
        decision = reconcile(inp)
        async with ctx.create_slot(vault, decision):
            inp = await _perform(ctx, body, decision, performer, inp)
        if decision.final:
            break
    else:
        log.error("%s/%s: reconcile did not settle in %d steps", namespace, name, MAX_STEPS)
        return UNSETTLED_DELAY, False
    assert decision is not None
    log.debug("%s/%s: %s", namespace, name, decision.rung)
    return await _conclude(ctx, body, decision, performer, inp)


async def _perform(
    ctx: Context,
    body: Mapping[str, Any],
    decision: Decision,
    performer: Performer,
    inp: Input,
) -> Input:
    """Perform one decision's actions in order; the input with every outcome folded in."""
    for action in decision.actions:
        if isinstance(action, Emit):
            operation = decision.status_patch.get("operation") or {}
            await ctx.events.emit(
                body,
                action.type,
                action.reason,
                action.message,
                "Certificate",
                request_id=operation.get("requestId"),
            )
            continue
        result = await performer.perform(action)
        if isinstance(result, CallError) and result.status == 401 and performer.vault:
            await ctx.vaults.forget(performer.vault)
        outcome = outcome_of(action, result)
        inp = inp.with_outcome(outcome)
        if not proceeds(outcome):
            break  # above all: no create unless its intent is on record
    return inp


async def _conclude(
    ctx: Context,
    body: Mapping[str, Any],
    decision: Decision,
    performer: Performer,
    inp: Input,
) -> tuple[float | None, bool]:
    """Write the final status, drop the finalizer of a finished deletion, keep what the next
    round starts from; (seconds until the next round or None, True)."""
    meta = body["metadata"]
    uid, namespace, name = meta["uid"], meta["namespace"], meta["name"]
    deleting = bool(meta.get("deletionTimestamp"))
    latest = performer.latest_body
    try:
        if decision.status_patch:
            # The stored object is parsed only when the next round will start from it.
            delay = decision.requeue_after
            soon = delay is not None and delay <= KEEP_BODY_SECONDS
            crashpoints.reached("before:status")
            written = await ctx.kube.patch_certificate_status(
                namespace, name, decision.status_patch, want_body=soon
            )
            crashpoints.reached("after:status")
            latest = written or latest
        failed = inp.last(Failed) is not None
        if failed:
            ctx.attempts[uid] = ctx.attempts.get(uid, 0) + 1
        else:
            ctx.attempts.pop(uid, None)  # nothing kept for a Certificate that did not fail
        if deleting and decision.requeue_after is None:
            finalizers = [f for f in meta.get("finalizers") or [] if f != FINALIZER]
            crashpoints.reached("before:finalizer")
            await ctx.kube.set_finalizer(namespace, name, finalizers)
            crashpoints.reached("after:finalizer")
            ctx.forget(uid)
            ctx.metrics.forget_certificate(namespace, name)
        elif uid in ctx.locks:  # not forgotten by a DELETED event meanwhile (stale series)
            ctx.metrics.observe_certificate(body, decision.status_patch)
            # The next round starts from the newest body, not a GET (kvcert.runtime.cache);
            # after a failure it reads: the body may be why (a 409 on a stale resourceVersion).
            if failed:
                ctx.bodies.forget(uid)
            else:
                ctx.bodies.keep(
                    latest if latest is not None else dict(body), decision.requeue_after
                )
    except ApiException as error:
        if error.status != 404:
            raise
        # Deleted while it was being reconciled: nothing is left to report on or to requeue.
        log.debug("%s/%s: gone before its status was written", namespace, name)
        ctx.forget(uid)
        ctx.metrics.forget_certificate(namespace, name)
        return None, True
    return decision.requeue_after, True
