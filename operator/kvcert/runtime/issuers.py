"""CertificateIssuer / ClusterCertificateIssuer rounds: gather, decide (kvcert.reconcile.issuer),
act (issue #19 §2).

A round runs when the object is first seen (start-up, re-list: Key Vault is read and compared
with the spec, and written only when they differ), when its spec changes or it is being deleted,
when its password Secret changes (only a Secret labelled `kvcert.io/source=true` is watched:
kvcert.runtime.sourcewatch; any other is re-read on the next round, i.e. the next edit or
restart), and after a failure with backoff (a `Requeues` of its own, keyed by uid: an idle,
configured issuer holds no timer).

Echoes (issue #19 §2 review): handlers.py skips events whose generation status already
observed; an event that asks for nothing the running or scheduled round does not already cover
(the same generation, the same deletion: `trigger`) starts no round either, so the echo of a
failed round's status write never bypasses its backoff. A failed round writes status only when
its reason or message changes; the count of failures in a row is kept here.

Ownership across resources: `claims` (kvcert.runtime.issuer_claims) maps (vault URL, issuer
name) to the uid of the live resource that manages it; another resource naming the same issuer
in the same vault gets NotOwned, adopt or not.

Writes per round, in order: status.managed and status.vaultURL (before the first Key Vault
write: the ownership record), the finalizer (deletionPolicy Delete only), the one Key Vault
write, the status, the finalizer's removal, the events. The password is read from its Secret
each round; it is never logged, put in status or an event. The value last applied to each issuer
is kept in this process's memory only (never a digest of it in status), so that a Secret edit
that leaves it alone (a label) is not sent again; a restart forgets it and re-applies once when
the Secret's resourceVersion moved meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
from collections.abc import Mapping
from typing import Any

from kubernetes.client.exceptions import ApiException

from kvcert.api.base import InvalidResource
from kvcert.api.certificate import VaultKind, VaultRef
from kvcert.api.issuer import IssuerResource, parse_issuer, parse_issuer_status
from kvcert.keyvault import KeyVaultClient
from kvcert.keyvault.errors import (
    KeyVaultError,
    NotFound,
    Unauthorized,
)
from kvcert.reconcile.issuer import (
    IssuerDecision,
    IssuerInput,
    Write,
    backoff,
    decide,
    owned,
    record,
)
from kvcert.runtime.issuer_calls import error_text, read_password, safe, write_issuer
from kvcert.runtime.issuer_claims import IssuerClaims, claim_key
from kvcert.runtime.kube import CERTIFICATEISSUERS, CLUSTERCERTIFICATEISSUERS, FINALIZER
from kvcert.runtime.loop import Context
from kvcert.runtime.schedule import Requeues
from kvcert.runtime.settings import OperatorSettings
from kvcert.runtime.vaults import VaultUnavailable

log = logging.getLogger("kvcert.issuers")
RETRY_READ_DELAY = 30.0
"""Seconds before a scheduled round that could not read its object tries again."""


def kind_of(cluster: bool) -> tuple[str, str]:
    """(kind, plural) of the namespaced or the cluster-scoped issuer."""
    if cluster:
        return "ClusterCertificateIssuer", CLUSTERCERTIFICATEISSUERS
    return "CertificateIssuer", CERTIFICATEISSUERS


class IssuerRounds:
    """One round at a time per issuer (by uid), their retries, and which issuers read which
    password Secret. Built at start-up (handlers.configure) and kept in kopf's memo."""

    def __init__(self, ctx: Context, settings: OperatorSettings) -> None:
        self.ctx = ctx
        self.settings = settings
        self.requeues = Requeues(ctx.clock, self._fire)
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}
        self._attempts: dict[str, int] = {}
        self._readers: dict[str, tuple[str, str]] = {}
        """uid -> (namespace of the password Secret, its name)."""
        self._entries: dict[str, tuple[str, str]] = {}
        """uid -> (namespace, name) of every issuer seen ("" namespace: cluster-scoped)."""
        self._covered: dict[str, tuple[object, ...]] = {}
        """uid -> `trigger` of the last round started."""
        self.claims = IssuerClaims(self._describe)
        self._applied: dict[str, str] = {}
        """uid -> the password last applied to its issuer (memory only, never stored)."""

    def start(self) -> None:
        self.requeues.start()

    async def close(self) -> None:
        await self.requeues.close()

    # --- events -----------------------------------------------------------------------------

    async def on_event(
        self, event_type: str | None, body: Mapping[str, Any], *, cluster: bool, needed: bool
    ) -> None:
        """A watch event; `needed` is handlers' verdict on whether it calls for a round."""
        meta = body.get("metadata") or {}
        uid = str(meta.get("uid", ""))
        if event_type == "DELETED":
            self.forget(uid)
            return
        self._remember_password(uid, body, cluster)
        self.claims.seen(uid, body)
        if not needed or (event_type is not None and self.covered(uid, body)):
            return
        await self.run(body, cluster=cluster)

    def covered(self, uid: str, body: Mapping[str, Any]) -> bool:
        """Whether a round that runs or is scheduled already answers `body`'s trigger (the echo
        of a failed round's status write, backing off): then the event starts none. A re-list
        (event type None) always runs a round."""
        running = uid in self._users or uid in self.requeues
        return running and self._covered.get(uid) == trigger(body)

    def secret_changed(self, namespace: str, secret: str) -> None:
        """A labelled Secret changed: a round now for every issuer whose password it holds."""
        for uid, (where, name) in list(self._readers.items()):
            if (where, name) == (namespace, secret):
                entry = self._entries.get(uid)
                if entry is not None:
                    log.info("%s: password Secret %s/%s changed", entry[1], namespace, secret)
                    self.requeues.soon(uid, *entry)

    def forget(self, uid: str) -> None:
        self.requeues.cancel(uid)
        self._attempts.pop(uid, None)
        self._readers.pop(uid, None)
        self._entries.pop(uid, None)
        self._covered.pop(uid, None)
        self._applied.pop(uid, None)
        self.claims.release(uid)

    def _describe(self, uid: str) -> str:
        """A live issuer by kind and name ("" when not live: its claim is void)."""
        entry = self._entries.get(uid)
        if entry is None:
            return ""
        namespace, name = entry
        if namespace:
            return f"CertificateIssuer {namespace}/{name}"
        return f"ClusterCertificateIssuer {name}"

    def _remember_password(self, uid: str, body: Mapping[str, Any], cluster: bool) -> None:
        meta, spec = body.get("metadata") or {}, body.get("spec") or {}
        self._entries[uid] = (str(meta.get("namespace") or ""), str(meta.get("name", "")))
        ref = spec.get("passwordSecretRef") if isinstance(spec, Mapping) else None
        if not isinstance(ref, Mapping) or not isinstance(ref.get("name"), str):
            self._readers.pop(uid, None)
            return
        namespace = (ref.get("namespace") or self.settings.operator_namespace) if cluster else None
        self._readers[uid] = (str(namespace or meta.get("namespace") or ""), ref["name"])

    # --- rounds -----------------------------------------------------------------------------

    async def _fire(self, namespace: str, name: str, uid: str) -> None:
        """A scheduled round: the object is read afresh (namespace "": cluster-scoped)."""
        cluster = not namespace
        _, plural = kind_of(cluster)
        try:
            body = await self.ctx.kube.get_custom(plural, namespace or None, name)
        except ApiException as error:
            log.error("%s %s: could not read: Kubernetes answered %s", plural, name, error.status)
            self.requeues.schedule(uid, namespace, name, RETRY_READ_DELAY, keep_earlier=True)
            return
        if body is None or (body.get("metadata") or {}).get("uid") != uid:
            self.forget(uid)
            return
        await self.run(body, cluster=cluster)

    async def run(self, body: Mapping[str, Any], *, cluster: bool) -> None:
        """One round under the object's lock; failures back off (never raise)."""
        meta = body.get("metadata") or {}
        uid, name = str(meta.get("uid", "")), str(meta.get("name", ""))
        namespace = str(meta.get("namespace") or "")
        lock = self._locks.setdefault(uid, asyncio.Lock())
        self._users[uid] = self._users.get(uid, 0) + 1
        try:
            async with lock:
                self.requeues.cancel(uid)
                self._covered[uid] = trigger(body)
                retry = await self._round(body, cluster=cluster)
        except Exception as error:  # reported by type and status only: no body, no secret
            detail = f"{error.status} {error.reason}" if isinstance(error, ApiException) else ""
            log.error(
                "%s %s: round failed: %s %s",
                kind_of(cluster)[0],
                name,
                type(error).__name__,
                detail,
            )
            retry = self._failed(uid, body)
        finally:
            # The lock lives while a round holds or awaits it: an idle issuer keeps none.
            left = self._users.pop(uid, 1) - 1
            if left > 0:
                self._users[uid] = left
            elif self._locks.get(uid) is lock:
                del self._locks[uid]
        if retry is not None:
            self.requeues.schedule(uid, namespace, name, retry, keep_earlier=True)

    def _failed(self, uid: str, body: Mapping[str, Any]) -> float:
        attempt = self._attempt(uid, body)
        self._attempts[uid] = attempt + 1
        return backoff(attempt, random.random())  # noqa: S311 - jitter, not a secret

    def _attempt(self, uid: str, body: Mapping[str, Any]) -> int:
        recorded = (body.get("status") or {}).get("failedAttempts")
        return max(self._attempts.get(uid, 0), recorded if isinstance(recorded, int) else 0)

    async def _round(self, body: Mapping[str, Any], *, cluster: bool) -> float | None:
        """Gather, decide, act; the delay before the next round (None: none needed)."""
        meta = body.get("metadata") or {}
        uid = str(meta.get("uid", ""))
        kind, _ = kind_of(cluster)
        inp = IssuerInput(
            kind=kind,
            name=str(meta.get("name", "")),
            issuer_name=str((body.get("spec") or {}).get("issuerName") or meta.get("name", "")),
            generation=int(meta.get("generation") or 0),
            now=self.ctx.clock.now(),
            status=parse_issuer_status(body.get("status") or {}),
            deleting=bool(meta.get("deletionTimestamp")),
            has_finalizer=FINALIZER in (meta.get("finalizers") or []),
            attempt=self._attempt(uid, body),
            jitter=random.random(),  # noqa: S311 - jitter, not a secret
        )
        resource: IssuerResource | None = None
        try:
            resource = parse_issuer(body, cluster=cluster)
        except InvalidResource as error:
            inp = _replace(inp, invalid=error.message)
        client: KeyVaultClient | None = None
        password: str | None = None
        if resource is not None and not (inp.deleting and not inp.has_finalizer):
            inp = _replace(inp, spec=resource.spec, issuer_name=resource.issuer_name)
            ref = VaultRef(
                name=resource.spec.vault_ref.name,
                kind=VaultKind.CLUSTER_KEY_VAULT if cluster else VaultKind.KEY_VAULT,
            )
            try:
                client = await self.ctx.vaults.for_ref(str(meta.get("namespace") or ""), ref)
            except VaultUnavailable as unavailable:
                inp = _replace(
                    inp, vault_problem=unavailable.message, vault_missing=unavailable.missing
                )
            if client is not None:
                inp = _replace(inp, vault_url=client.vault_url)
                if not inp.deleting:
                    inp, password = await self._gather(uid, inp, resource, client, cluster)
        # No await from here to the claim: two resources cannot both take one issuer.
        key = claim_key(inp.vault_url, inp.issuer_name) if inp.vault_url else None
        if key is not None:
            inp = _replace(inp, claimed_by=self.claims.held_by_other(uid, key))
        decision = decide(inp)
        ours = decision.write is Write.PUT or owned(inp.status, inp.vault_url)
        if key is not None and not inp.claimed_by and ours:
            self.claims.claim(uid, key)
        final = await self._act(
            body, inp, decision, cluster=cluster, client=client, password=password
        )
        self._after(uid, inp, decision, final, password)
        if final.retry_after is None:
            self._attempts.pop(uid, None)
        else:
            self._attempts[uid] = inp.attempt + 1
        return final.retry_after

    def _after(
        self,
        uid: str,
        inp: IssuerInput,
        decision: IssuerDecision,
        final: IssuerDecision,
        password: str | None,
    ) -> None:
        """What this process keeps after a round: the claim (released once the resource lets
        go of its issuer) and the password now in Key Vault."""
        status = final.body or {}
        let_go = inp.deleting and (decision.remove_finalizer or final.remove_finalizer)
        if let_go or (status and not status.get("managed")):
            self.claims.release(uid)
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in status.get("conditions") or []
        )
        if ready and password is not None:
            self._applied[uid] = password
        elif ready:
            self._applied.pop(uid, None)

    async def _gather(
        self,
        uid: str,
        inp: IssuerInput,
        resource: IssuerResource,
        client: KeyVaultClient,
        cluster: bool,
    ) -> tuple[IssuerInput, str | None]:
        """The password Secret (its facts, and its value for a write) and Key Vault's issuer."""
        password: str | None = None
        ref = resource.spec.password_secret_ref
        if ref is not None:
            namespace = (
                (ref.namespace or self.settings.operator_namespace)
                if cluster
                else str(resource.metadata.namespace)
            )
            facts, password = await read_password(self.ctx.kube, namespace, ref.name, ref.key)
            if password is not None and self._applied.get(uid) == password:
                facts = dataclasses.replace(facts, applied=True)
            inp = _replace(inp, password=facts)
            if facts.problem:
                return inp, None
        try:
            found = await client.get_issuer(inp.issuer_name)
        except NotFound:
            return inp, password
        except KeyVaultError as error:
            if isinstance(error, Unauthorized):
                await self.ctx.vaults.forget(client)
            return _replace(inp, read_error=error_text(error, password)), password
        return _replace(inp, observed=found.observed()), password

    async def _act(
        self,
        body: Mapping[str, Any],
        inp: IssuerInput,
        decision: IssuerDecision,
        *,
        cluster: bool,
        client: KeyVaultClient | None,
        password: str | None,
    ) -> IssuerDecision:
        """Perform `decision` (and the decision on its write's outcome); the last decision."""
        meta = body.get("metadata") or {}
        kind, plural = kind_of(cluster)
        namespace, name = meta.get("namespace") or None, str(meta.get("name", ""))
        kube = self.ctx.kube
        finalizers = list(meta.get("finalizers") or [])
        if decision.record_managed:
            patch = {"status": record(inp)}
            await kube.patch_custom(plural, namespace, name, patch, status=True)
            inp = dataclasses.replace(inp, recorded=True)
        if decision.add_finalizer:
            finalizers = [*finalizers, FINALIZER]
            await kube.patch_custom(
                plural, namespace, name, {"metadata": {"finalizers": finalizers}}
            )
        events = list(decision.events)
        final = decision
        if decision.write is not Write.NONE and client is not None and inp.spec is not None:
            outcome = await write_issuer(
                self.ctx.vaults,
                decision.write,
                client=client,
                inp=inp,
                spec=inp.spec,
                password=password,
            )
            final = decide(inp.with_outcome(outcome))
            events.extend(final.events)
        if final.status is not None:
            await kube.patch_custom(plural, namespace, name, {"status": final.status}, status=True)
        if final.remove_finalizer or decision.remove_finalizer:
            kept = [item for item in finalizers if item != FINALIZER]
            with contextlib.suppress(ApiException):  # already gone: nothing is held
                await kube.patch_custom(plural, namespace, name, {"metadata": {"finalizers": kept}})
        for event_type, reason, message in events:
            await self.ctx.events.emit(body, event_type, reason, safe(message, password), kind)
        return final


def _replace(inp: IssuerInput, **changes: Any) -> IssuerInput:
    return dataclasses.replace(inp, **changes)


def trigger(body: Mapping[str, Any]) -> tuple[object, ...]:
    """What in an issuer's body asks for a round: its generation and its deletion."""
    meta = body.get("metadata") or {}
    return (meta.get("generation"), bool(meta.get("deletionTimestamp")))
