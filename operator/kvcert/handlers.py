"""kopf handlers: when to reconcile. What to do is decided in kvcert.reconcile and done in
kvcert.runtime.

Only low-level `on.event` handlers are used, so kopf writes no progress or diff-base
annotations of its own (DESIGN §5's write budget). A Certificate is reconciled when it is first
seen (start-up lists every object: a restart re-derives everything), when its spec changed
(generation ahead of status.observedGeneration), when it is being deleted, and again after the
delay a decision asks for (polling an operation in progress, backing off after a failure;
kvcert.runtime.schedule, in the operator's clock time). Echoes of the operator's own status
writes are skipped. An idle, Ready certificate holds no timer and costs nothing.

Outputs and sources are level-triggered too, through two watches on Secrets, each narrowed by a
server-side label selector (never every Secret in the cluster, DESIGN §5):
- output Secrets (`app.kubernetes.io/managed-by=kvcert,kvcert.io/certificate`, kopf's watch):
  a deleted one, or one whose data no longer matches its `kvcert.io/data-hash`, reconciles its
  Certificate now; the echo of the operator's own write is intact and costs no API call;
- source Secrets labelled `kvcert.io/source=true` (kvcert.runtime.sourcewatch): any change
  reconciles the Certificates whose mergeFrom/importFrom names them (kvcert.runtime.index).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import aiohttp
import kopf
from kubernetes.client.exceptions import ApiException

from kvcert.api.lifecycle import RENEW_ANNOTATION, RETRY_ANNOTATION
from kvcert.runtime import kube as kube_api
from kvcert.runtime import kubeconfig
from kvcert.runtime.cache import newer
from kvcert.runtime.clock import Clock
from kvcert.runtime.events import EventRecorder
from kvcert.runtime.index import CertificateIndex
from kvcert.runtime.issuers import IssuerRounds
from kvcert.runtime.loop import Context, reconcile_certificate, round_failed
from kvcert.runtime.metrics import Metrics, MetricsServer
from kvcert.runtime.probe import probe_vault
from kvcert.runtime.readiness import ListFailed, ListProbe, Readiness, watched_lists
from kvcert.runtime.schedule import Requeues
from kvcert.runtime.settings import OperatorSettings
from kvcert.runtime.sources import intact
from kvcert.runtime.sourcewatch import SourceWatch
from kvcert.runtime.vaults import VaultClients

log = logging.getLogger("kvcert.handlers")
RETRY_READ_DELAY = 30.0
"""Seconds before a scheduled reconcile that could not read its Certificate tries again."""


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """Build the clients once; memo.settings (OperatorSettings) is set by `kvcert operator run`."""
    ours: OperatorSettings = memo.get("settings") or OperatorSettings.load()
    settings.posting.enabled = False  # events are posted deliberately, with our reasons
    # The resources are known: no watch on CRDs and namespaces, hence no RBAC for them (#13).
    settings.scanning.disabled = True
    settings.watching.server_timeout = 300
    settings.persistence.diffbase_storage = NoDiffBase()
    select_output_secrets(settings)
    settings.networking.request_timeout = 60
    # Key material work runs in threads (asyncio.to_thread); Kubernetes calls do not.
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=8))
    api = kubeconfig.load_api_client()  # the source Secret watch's threads
    memo.async_api = await kubeconfig.load_async_api_client()  # the reconcile path's
    metrics = memo.metrics = Metrics()  # memo.metrics.set_leader(...) once elections run
    metrics.set_leader(True)  # this process reconciles from here on
    kube = kube_api.Kube(memo.async_api, metrics.kubernetes_request)
    clock = Clock(ours.clock_file)
    memo.context = Context(
        kube=kube,
        vaults=VaultClients(kube, ours, metrics.keyvault_request),
        events=EventRecorder(memo.async_api, metrics.kubernetes_request),
        clock=clock,
        metrics=metrics,
    )
    memo.metrics_server = None
    if ours.metrics:
        memo.metrics_server = MetricsServer(metrics)
        await memo.metrics_server.serve(ours.metrics)
    memo.index = CertificateIndex()
    memo.requeues = Requeues(clock, functools.partial(_requeue, memo))
    memo.requeues.start()
    memo.clock_task = None
    if ours.clock_file is not None:  # test-only: follow the clock file, re-evaluate deadlines
        log.warning("test clock in use: offset from %s", ours.clock_file)
        memo.clock_task = asyncio.create_task(clock.follow(memo.requeues.wake))
    memo.issuers = IssuerRounds(memo.context, ours)
    memo.issuers.start()
    memo.sources = SourceWatch(api, ours.namespaces, functools.partial(_source_changed, memo))
    memo.sources.start()
    memo.readiness = None
    if ours.readiness:
        memo.readiness = Readiness(watched_lists(ours.namespaces), _list_probe(kube))
        await memo.readiness.serve(ours.readiness)


class NoDiffBase(kopf.DiffBaseStorage):
    """No diff-base: kopf's change detection serves its high-level (create/update) handlers,
    and kvcert has only `on.event` ones, which get no diff. kopf still builds the essence of
    every event's body for it (a deep copy, Secrets' data included) unless the storage says
    there is none: a few percent of the operator's CPU per event (issue #17)."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


def select_output_secrets(settings: kopf.OperatorSettings) -> None:
    """kopf's watch on core v1 Secrets asks the API server for output Secrets only (the labels
    WriteSecret puts on them): a server-side selector, so no other Secret ever reaches us."""
    settings.watching.label_selectors["v1", "secrets"] = kube_api.OUTPUT_SELECTOR


def _list_probe(kube: kube_api.Kube) -> ListProbe:
    async def probe(plural: str, namespace: str | None) -> None:
        try:
            await kube.list_one(plural, namespace)
        except ApiException as error:
            raise ListFailed(error.status, str(error.reason or "")) from None

    return probe


@kopf.on.cleanup()
async def close(memo: kopf.Memo, **_: Any) -> None:
    await memo.requeues.close()
    await memo.issuers.close()
    if memo.get("clock_task") is not None:
        memo.clock_task.cancel()
    await memo.sources.close()
    if memo.get("readiness") is not None:
        await memo.readiness.close()
    await memo.context.vaults.close()
    await memo.async_api.close()
    if memo.get("metrics_server") is not None:
        await memo.metrics_server.close()


def _needs_reconcile(event_type: str | None, body: Mapping[str, Any]) -> bool:
    if event_type == "DELETED":
        return False
    if event_type is None:  # listed at start-up or after a re-list: re-derive everything
        return True
    meta, status = body.get("metadata", {}), body.get("status") or {}
    if meta.get("deletionTimestamp"):
        return True
    if _request_pending(meta, status):
        return True
    return bool(meta.get("generation") != status.get("observedGeneration"))


def _request_pending(meta: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    """A request annotation (kvcert.io/renew, kvcert.io/retry) has a value not acted on yet:
    annotations change no generation, so this is how such an edit reaches reconcile (#15)."""
    annotations = meta.get("annotations") or {}
    handled = status.get("handledRequests") or {}
    return any(
        annotations.get(key) and annotations.get(key) != handled.get(field)
        for key, field in ((RENEW_ANNOTATION, "renew"), (RETRY_ANNOTATION, "retry"))
    )


async def _run(
    memo: kopf.Memo,
    namespace: str,
    name: str,
    uid: str,
    body: dict[str, Any] | None,
    *,
    listed: bool = False,
) -> None:
    """Reconcile under the object's lock, then schedule the next round if one is asked for.

    The round starts from the newest body known once the lock is held: the event's (None for a
    scheduled round), or the one kept by the previous round or a watch event meanwhile
    (kvcert.runtime.cache.LatestBodies); with neither, the object is read. `listed` (a start-up
    or re-list event) makes the round read the output Secret instead of trusting the cache.
    The pending requeue is cancelled once the lock is held: this round supersedes it. One asked
    for while this round runs (a Secret event) is kept when it is earlier than this round's."""
    ctx: Context = memo.context
    requeues: Requeues = memo.requeues
    async with ctx.rounds.exclusive(uid):
        requeues.cancel(uid)
        kept = ctx.bodies.take(uid)
        if kept is not None and (body is None or newer(kept, body)):
            body = kept
        if body is None:
            body = await _read(memo, namespace, name, uid)
            if body is None:
                return
        memo.index.remember(body)
        if (wait := ctx.rounds.held_for(uid, ctx.clock.now())) > 0:
            # Key Vault asked for Retry-After: this round (a Secret's change, an edit) waits.
            if listed:
                ctx.rounds.fresh.add(uid)  # a re-list round stays one when it runs
            ctx.bodies.keep(body, wait)
            requeues.schedule(uid, namespace, name, wait, keep_earlier=True)
            return
        if uid in ctx.rounds.fresh:
            ctx.rounds.fresh.discard(uid)
            listed = True
        try:
            delay = await reconcile_certificate(ctx, body, fresh_reads=listed)
        except ApiException as error:
            # Status and reason only: an API error body can echo what was sent.
            log.error(
                "%s/%s: reconcile failed: Kubernetes answered %s %s",
                namespace,
                name,
                error.status,
                error.reason,
            )
            delay = await round_failed(ctx, body)
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            # The API server (or the network to it) is away for a moment, e.g. restarted: one
            # line, no traceback; the round backs off like any failed one (issue #18 §3).
            log.error(
                "%s/%s: reconcile failed: the API server did not answer (%s)",
                namespace,
                name,
                type(error).__name__,
            )
            delay = await round_failed(ctx, body)
        except Exception:
            log.exception("%s/%s: reconcile failed", namespace, name)
            delay = await round_failed(ctx, body)
    if delay is not None:
        requeues.schedule(uid, namespace, name, delay, keep_earlier=True)


async def _read(memo: kopf.Memo, namespace: str, name: str, uid: str) -> dict[str, Any] | None:
    """The object afresh for a scheduled round; None (and the round dropped) when it is gone,
    replaced by another object of the same name, or could not be read (retried later)."""
    ctx: Context = memo.context
    try:
        body = await ctx.kube.get_certificate(namespace, name)
    except ApiException as error:
        log.error(
            "%s/%s: could not read for a scheduled reconcile: Kubernetes answered %s %s",
            namespace,
            name,
            error.status,
            error.reason,
        )
        memo.requeues.schedule(uid, namespace, name, RETRY_READ_DELAY, keep_earlier=True)
        return None
    except Exception:
        log.exception("%s/%s: could not read for a scheduled reconcile", namespace, name)
        memo.requeues.schedule(uid, namespace, name, RETRY_READ_DELAY, keep_earlier=True)
        return None
    if body is None or body.get("metadata", {}).get("uid") != uid:
        _forget(memo, namespace, name, uid)
        return None
    return body


async def _requeue(memo: kopf.Memo, namespace: str, name: str, uid: str) -> None:
    """A scheduled round: from the kept body when there is one, else read (see `_run`)."""
    await _run(memo, namespace, name, uid, None)


def _forget(memo: kopf.Memo, namespace: str, name: str, uid: str) -> None:
    """Everything kept for the Certificate `uid`: it was deleted (or replaced under its name)."""
    memo.requeues.cancel(uid)
    memo.metrics.forget_certificate(namespace, name)
    memo.context.forget(uid)
    memo.index.forget(namespace, name, uid)


@kopf.on.event(kube_api.GROUP, kube_api.VERSION, kube_api.CERTIFICATES)
async def certificate_event(
    event: Mapping[str, Any], body: kopf.Body, memo: kopf.Memo, **_: Any
) -> None:
    # The event's own parsed JSON, read directly: kopf's Body view resolves every lookup.
    raw = _plain(event.get("object") or body)
    meta = raw.get("metadata", {})
    namespace, name, uid = meta.get("namespace", ""), meta.get("name", ""), meta.get("uid", "")
    if event.get("type") == "DELETED":
        _forget(memo, namespace, name, uid)
        return
    previous = memo.index.get(namespace, name)
    if previous is not None and previous.uid != uid:
        # Deleted and created again under the same name while the watch was away (a re-list
        # sends no DELETED): nothing kept for the old object may act on the new one.
        _forget(memo, namespace, name, previous.uid)
    memo.index.remember(raw)  # before any reconcile: a Secret event during it finds the owner
    listed = event.get("type") is None
    if not _needs_reconcile(event.get("type"), raw) or (
        not listed and memo.context.rounds.backing_off(uid, raw)
    ):
        # Kept when a round is due soon or running, so that it starts from the newest body.
        memo.context.bodies.offer(raw, running=memo.context.rounds.running(uid))
        return
    await _run(memo, namespace, name, uid, raw, listed=listed)


def _output_needs_reconcile(
    event_type: str | None, body: Mapping[str, Any], data_intact: bool | None = None
) -> bool:
    """Whether an output Secret event calls for its Certificate: deleted, or its data is not
    what the operator wrote (edited, or its tls.crt gone). `data_intact` when already known
    (kvcert.runtime.cache.OutputSecrets.seen), else computed. No side effects, no API call."""
    if event_type == "DELETED":
        return True
    data = body.get("data") or {}
    if data_intact is None:
        data_intact = intact(body.get("metadata", {}).get("annotations") or {}, data)
    return not data_intact or not data.get("tls.crt")


@kopf.on.event("v1", "secrets")
async def output_secret_event(
    event: Mapping[str, Any], body: kopf.Body, memo: kopf.Memo, **_: Any
) -> None:
    """An output Secret changed (kopf's watch sees only those, by the server-side selector set
    in `configure`): reconcile its Certificate now when it was deleted or edited."""
    raw = _plain(event.get("object") or body)
    known = memo.context.outputs.seen(raw, deleted=event.get("type") == "DELETED")
    if event.get("type") == "DELETED" and known is not None:
        return  # an older state deleted by the operator's own replace (a type change)
    if not _output_needs_reconcile(event.get("type"), raw, known.intact if known else None):
        return
    meta = raw.get("metadata", {})
    namespace, secret = meta.get("namespace", ""), meta.get("name", "")
    certificate = (meta.get("labels") or {}).get(kube_api.CERTIFICATE_LABEL, "")
    owner = memo.index.owner(namespace, certificate, secret)
    if owner is None:
        # Not (yet) known: a Certificate's first event always reconciles and reads its Secret;
        # a deleted Certificate's Secret needs nothing.
        return
    log.info("%s/%s: output Secret %s changed, reconciling", namespace, certificate, secret)
    memo.requeues.soon(owner.uid, namespace, certificate)


def _source_changed(memo: kopf.Memo, namespace: str, secret: str) -> None:
    """A labelled source Secret changed: reconcile every Certificate that reads it, and every
    issuer whose password it holds, now."""
    for name, uid in memo.index.readers(namespace, secret):
        log.info("%s/%s: source Secret %s changed, reconciling", namespace, name, secret)
        memo.requeues.soon(uid, namespace, name)
    memo.issuers.secret_changed(namespace, secret)


@kopf.on.event(kube_api.GROUP, kube_api.VERSION, kube_api.KEYVAULTS)
async def keyvault_event(
    event: Mapping[str, Any], body: kopf.Body, memo: kopf.Memo, **_: Any
) -> None:
    await _vault_event(event, body, memo, cluster=False)


@kopf.on.event(kube_api.GROUP, kube_api.VERSION, kube_api.CLUSTERKEYVAULTS)
async def clusterkeyvault_event(
    event: Mapping[str, Any], body: kopf.Body, memo: kopf.Memo, **_: Any
) -> None:
    await _vault_event(event, body, memo, cluster=True)


async def _vault_event(
    event: Mapping[str, Any], body: kopf.Body, memo: kopf.Memo, *, cluster: bool
) -> None:
    """Keep the vault object for Certificates (no GET per reconcile); probe it on change."""
    snapshot = _plain(body)
    memo.context.vaults.remember(snapshot, cluster=cluster, deleted=event.get("type") == "DELETED")
    if _needs_reconcile(event.get("type"), snapshot):
        await probe_vault(memo.context, snapshot, cluster=cluster)


@kopf.on.event(kube_api.GROUP, kube_api.VERSION, kube_api.CERTIFICATEISSUERS)
async def certificateissuer_event(
    event: Mapping[str, Any], body: kopf.Body, memo: kopf.Memo, **_: Any
) -> None:
    await _issuer_event(event, body, memo, cluster=False)


@kopf.on.event(kube_api.GROUP, kube_api.VERSION, kube_api.CLUSTERCERTIFICATEISSUERS)
async def clustercertificateissuer_event(
    event: Mapping[str, Any], body: kopf.Body, memo: kopf.Memo, **_: Any
) -> None:
    await _issuer_event(event, body, memo, cluster=True)


async def _issuer_event(
    event: Mapping[str, Any], body: kopf.Body, memo: kopf.Memo, *, cluster: bool
) -> None:
    """Write the issuer to Key Vault when first seen, changed or deleted (kvcert.runtime.issuers);
    the echoes of our own status and finalizer writes change no generation and are skipped, and
    while it is being deleted, an event that a running or scheduled round already covers (the
    echo of a failed delete's status) is skipped there: the retry keeps its backoff."""
    raw = _plain(event.get("object") or body)
    kind = event.get("type")
    await memo.issuers.on_event(kind, raw, cluster=cluster, needed=_needs_reconcile(kind, raw))


def _plain(body: Mapping[str, Any]) -> dict[str, Any]:
    """The event's body as a plain dict (a shallow copy). kopf changes a body under an await
    only for objects with daemons or timers (its "live fresh body"), and kvcert has neither;
    nothing in kvcert mutates a body. No deep copy per event (issue #17)."""
    return dict(body)
