"""kopf handlers: when to reconcile. What to do is decided in kvcert.reconcile and done in
kvcert.runtime.

Only low-level `on.event` handlers are used, so kopf writes no progress or diff-base
annotations of its own (DESIGN §5's write budget). A Certificate is reconciled when it is first
seen (start-up lists every object: a restart re-derives everything), when its spec changed
(generation ahead of status.observedGeneration), when it is being deleted, and again after the
delay a decision asks for (polling an operation in progress, backing off after a failure).
Echoes of the operator's own status writes are skipped. An idle, Ready certificate holds no
timer and costs nothing.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException

from kvcert.runtime import kube as kube_api
from kvcert.runtime.events import EventRecorder
from kvcert.runtime.loop import Context, reconcile_certificate
from kvcert.runtime.probe import probe_vault
from kvcert.runtime.readiness import ListFailed, ListProbe, Readiness, watched_lists
from kvcert.runtime.settings import OperatorSettings
from kvcert.runtime.vaults import VaultClients

log = logging.getLogger("kvcert.handlers")


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """Build the clients once; memo.settings (OperatorSettings) is set by `kvcert operator run`."""
    ours: OperatorSettings = memo.get("settings") or OperatorSettings.load()
    settings.posting.enabled = False  # events are posted deliberately, with our reasons
    # The resources are known: no watch on CRDs and namespaces, hence no RBAC for them (#13).
    settings.scanning.disabled = True
    settings.watching.server_timeout = 300
    settings.networking.request_timeout = 60
    # Kubernetes calls run in threads; the default pool (cores + 4) queues them under load.
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=32))
    api = kube_api.load_api_client()
    kube = kube_api.Kube(api)
    memo.context = Context(kube=kube, vaults=VaultClients(kube, ours), events=EventRecorder(api))
    memo.requeues = {}
    memo.readiness = None
    if ours.readiness:
        memo.readiness = Readiness(watched_lists(ours.namespaces), _list_probe(kube))
        await memo.readiness.serve(ours.readiness)


def _list_probe(kube: kube_api.Kube) -> ListProbe:
    async def probe(plural: str, namespace: str | None) -> None:
        try:
            await kube.list_one(plural, namespace)
        except ApiException as error:
            raise ListFailed(error.status, str(error.reason or "")) from None

    return probe


@kopf.on.cleanup()
async def close(memo: kopf.Memo, **_: Any) -> None:
    for handle in memo.requeues.values():
        handle.cancel()
    if memo.get("readiness") is not None:
        await memo.readiness.close()
    await memo.context.vaults.close()


def _needs_reconcile(event_type: str | None, body: Mapping[str, Any]) -> bool:
    if event_type == "DELETED":
        return False
    if event_type is None:  # listed at start-up or after a re-list: re-derive everything
        return True
    meta, status = body.get("metadata", {}), body.get("status") or {}
    if meta.get("deletionTimestamp"):
        return True
    return bool(meta.get("generation") != status.get("observedGeneration"))


async def _run(
    memo: kopf.Memo, namespace: str, name: str, uid: str, body: Mapping[str, Any]
) -> None:
    """Reconcile under the object's lock, then schedule the next round if one is asked for."""
    ctx: Context = memo.context
    requeues: dict[str, asyncio.TimerHandle] = memo.requeues
    if (pending := requeues.pop(uid, None)) is not None:
        pending.cancel()
    async with ctx.lock(uid):
        try:
            delay = await reconcile_certificate(ctx, body)
        except ApiException as error:
            # Status and reason only: an API error body can echo what was sent.
            log.error(
                "%s/%s: reconcile failed: Kubernetes answered %s %s",
                namespace,
                name,
                error.status,
                error.reason,
            )
            delay = 30.0
        except Exception:
            log.exception("%s/%s: reconcile failed", namespace, name)
            delay = 30.0
    if delay is not None:
        loop = asyncio.get_running_loop()
        requeues[uid] = loop.call_later(
            delay, lambda: asyncio.ensure_future(_requeue(memo, namespace, name, uid))
        )


async def _requeue(memo: kopf.Memo, namespace: str, name: str, uid: str) -> None:
    """A scheduled round reads the object afresh: the body from the last event may be stale."""
    ctx: Context = memo.context
    memo.requeues.pop(uid, None)
    try:
        body = await ctx.kube.get_certificate(namespace, name)
    except Exception:
        log.exception("%s/%s: could not read for a scheduled reconcile", namespace, name)
        body = None
    if body is None or body.get("metadata", {}).get("uid") != uid:
        ctx.forget(uid)
        return
    await _run(memo, namespace, name, uid, body)


@kopf.on.event(kube_api.GROUP, kube_api.VERSION, kube_api.CERTIFICATES)
async def certificate_event(
    event: Mapping[str, Any], body: kopf.Body, memo: kopf.Memo, **_: Any
) -> None:
    meta = body.get("metadata", {})
    if event.get("type") == "DELETED":
        if (pending := memo.requeues.pop(meta.get("uid"), None)) is not None:
            pending.cancel()
        memo.context.forget(meta.get("uid"))
        return
    if not _needs_reconcile(event.get("type"), body):
        return
    snapshot = _plain(body)
    await _run(memo, meta["namespace"], meta["name"], meta["uid"], snapshot)


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


def _plain(body: Mapping[str, Any]) -> dict[str, Any]:
    """A detached deep copy: kopf's body is a live view that changes under an await."""
    return copy.deepcopy(dict(body))
