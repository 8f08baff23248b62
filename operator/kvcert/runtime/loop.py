"""One reconcile of one Certificate: gather the input, let reconcile decide, perform, repeat.

This is the whole of the operator's control flow; `handlers.py` only decides *when* to call it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import random
import time
import uuid
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes.client.exceptions import ApiException

from kvcert.api.certificate import CertificateSpec, DeletionPolicy
from kvcert.keyvault import KeyVaultClient
from kvcert.reconcile import Action, Emit, Input, Unsettled, VaultFacts, settle
from kvcert.reconcile.actions import CreateCertificate, ImportCertificate
from kvcert.reconcile.decision import Decision
from kvcert.reconcile.observed import CallError
from kvcert.reconcile.outcomes import CertificateRead, Failed
from kvcert.reconcile.schedule import ERROR_CAP, backoff
from kvcert.runtime import crashpoints
from kvcert.runtime.cache import KEEP_BODY_SECONDS, LatestBodies, OutputSecrets
from kvcert.runtime.clock import Clock
from kvcert.runtime.events import EventRecorder
from kvcert.runtime.kube import FINALIZER, Kube, Owner
from kvcert.runtime.metrics import Metrics
from kvcert.runtime.perform import Performer
from kvcert.runtime.schedule import Rounds
from kvcert.runtime.vaults import VaultClients, VaultUnavailable

log = logging.getLogger("kvcert.reconcile")
CREATES = (CreateCertificate, ImportCertificate)
CREATES_IN_FLIGHT = 16
"""Decisions that create or import in one vault at a time (the intent write and the call).
Finishing work (polling, reading the certificate, writing the Secret) never waits for this
slot: under a batch of a thousand new Certificates, one whose operation has completed is done
while the others queue here, not behind them (issue #17 §3). Key Vault's create rate limit
(kvcert.keyvault.retry.VaultRateLimiter) still applies inside the slot."""
UNSETTLED_DELAY = 60.0
"""Seconds before a round that did not settle (kvcert.reconcile.Unsettled: a bug) is tried again."""


@dataclass
class Context:
    """What every reconcile shares: clients, the operator's clock (reconcile's `now`), the
    metrics (kvcert.runtime.metrics), and per-object bookkeeping kept in memory."""

    kube: Kube
    vaults: VaultClients
    events: EventRecorder
    clock: Clock = field(default_factory=Clock)
    metrics: Metrics = field(default_factory=Metrics)
    rounds: Rounds = field(default_factory=Rounds)
    bodies: LatestBodies = field(default_factory=LatestBodies)
    outputs: OutputSecrets = field(default_factory=OutputSecrets)
    create_slots: dict[str, asyncio.Semaphore] = field(default_factory=dict)
    looks: dict[str, datetime] = field(default_factory=dict)
    """When each Certificate's Key Vault certificate was last read by a round that ended well
    (Input.last_look): a source Existing certificate looks again on its schedule only."""

    def create_slot(
        self, vault: KeyVaultClient | None, decision: Decision
    ) -> AbstractAsyncContextManager[object]:
        """The vault's create slot when `decision` creates or imports, else no wait at all."""
        if vault is None or not any(isinstance(a, CREATES) for a in decision.actions):
            return contextlib.nullcontext()
        return self.create_slots.setdefault(vault.vault_url, asyncio.Semaphore(CREATES_IN_FLIGHT))

    def forget(self, uid: str) -> None:
        self.rounds.forget(uid)
        self.bodies.forget(uid)
        self.looks.pop(uid, None)


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


async def round_failed(ctx: Context, body: Mapping[str, Any]) -> float:
    """After a round raised (an unexpected error, or a Kubernetes error it could not handle):
    count the failure, record it in status.failedAttempts and lastFailureTime (best effort: the
    API server may be why), forget the kept body (the next round reads), and return the seconds
    until the next round: exponential backoff per object, 2 s doubling to 300 s with ±20 %
    jitter (kvcert.reconcile.schedule.backoff; issue #18 §3 replaced a flat 30 s)."""
    meta = body["metadata"]
    uid, namespace, name = meta["uid"], meta["namespace"], meta["name"]
    attempt = ctx.rounds.attempt(uid, body)
    count = ctx.rounds.ended(uid, failed=True, attempt=attempt)
    ctx.rounds.failed_on(uid, body)  # the echo of the write below must not run a round at once
    ctx.bodies.forget(uid)
    now = ctx.clock.now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        await ctx.kube.patch_certificate_status(
            namespace, name, {"failedAttempts": count, "lastFailureTime": now}
        )
    except Exception as error:
        log.debug("%s/%s: could not record the failed round: %s", namespace, name, type(error))
    return backoff(attempt, random.random())  # noqa: S311 - spreading retries, not security


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
        attempt=ctx.rounds.attempt(uid, body),
        # A start-up or re-list round re-derives everything: a source Existing one looks.
        last_look=None if fresh_reads else ctx.looks.get(uid),
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

    async def perform(decision: Decision, action: Action) -> object:
        return await _perform(ctx, body, decision, action, performer)

    around = functools.partial(ctx.create_slot, vault)
    try:
        settled = await settle(inp, perform, around=around)
    except Unsettled as error:
        log.error("%s/%s: %s", namespace, name, error)
        return UNSETTLED_DELAY, False
    log.debug("%s/%s: %s", namespace, name, settled.decision.rung)
    return await _conclude(ctx, body, settled.decision, performer, settled.inp)


async def _perform(
    ctx: Context,
    body: Mapping[str, Any],
    decision: Decision,
    action: Action,
    performer: Performer,
) -> object:
    """Perform one action of `decision` (kvcert.reconcile.settle.Perform): an event is posted
    with the request id the decision records; a 401 from Key Vault drops the vault's client so
    that the next round authenticates afresh."""
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
        return None
    result = await performer.perform(action)
    if isinstance(result, CallError) and result.status == 401 and performer.vault:
        await ctx.vaults.forget(performer.vault)
    return result


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
        failed_call = inp.last(Failed)
        failed = decision.failed or failed_call is not None
        ctx.rounds.ended(uid, failed=failed, attempt=inp.attempt)
        if inp.last(CertificateRead) is not None and not failed:
            ctx.looks[uid] = inp.now
        if failed:
            ctx.rounds.failed_on(uid, body)  # its own status write's echo waits for the retry
        if failed_call is not None and failed_call.error.retry_after:
            # Whatever starts the next round, not before this (capped: a proxy's Retry-After
            # of a day must not silence a Certificate, its deletion included).
            wait = min(failed_call.error.retry_after, ERROR_CAP)
            ctx.rounds.hold(uid, ctx.clock.now() + timedelta(seconds=wait))
        if deleting and decision.requeue_after is None:
            finalizers = [f for f in meta.get("finalizers") or [] if f != FINALIZER]
            crashpoints.reached("before:finalizer")
            await ctx.kube.set_finalizer(namespace, name, finalizers)
            crashpoints.reached("after:finalizer")
            ctx.forget(uid)
            ctx.metrics.forget_certificate(namespace, name)
        elif uid in ctx.rounds:  # not forgotten by a DELETED event meanwhile (stale series)
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
