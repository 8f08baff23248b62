"""The certificates service: pending operations and certificate versions over the store.

Decisions about an operation are made by the pure functions of `operation.py`; this module reads
the store, runs key work in a thread, re-checks the state after every `await` (another request
may have changed it meanwhile), then writes in one transaction. Outcomes that are due (Self
issuance, a simulated CA's answer, a cancellation) are applied lazily on every read of the
operation or certificate, and by the server's ticker, so results never depend on the ticker;
so are due lifetime actions (`lifetime.py`). Time is the vault's clock (`clock.py`), which tests
move forward.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from kvcert.vault import bundles, crypto, imports, issuers, lifetime, views
from kvcert.vault import operation as ops
from kvcert.vault import policy as policies
from kvcert.vault.clock import VaultClock
from kvcert.vault.errors import (
    bad_parameter,
    certificate_not_found,
    deleted_but_recoverable,
    pending_not_found,
    version_not_found,
)
from kvcert.vault.operation import Operation, new_id
from kvcert.vault.profiles import Profile
from kvcert.vault.store import Doc, Store
from kvcert.vault.views import Ctx
from kvcert.vault.wire import CreateIn, MergeIn, PolicyIn, UpdateIn

P = ParamSpec("P")
T = TypeVar("T")
Clock = Callable[[], float]


class VaultService:
    """Certificate create/import/merge/read/update and the pending-operation lifecycle."""

    def __init__(
        self,
        store: Store,
        profile: Profile,
        *,
        clock: Clock = time.time,
        ca_delay: float = 20.0,
        ca: issuers.SimulatedCA | None = None,
    ) -> None:
        self.store = store
        self.profile = profile
        self.clock = VaultClock(store, clock)
        self.ca_delay = ca_delay
        self.ca = ca or issuers.SimulatedCA.load_or_create(store, self.clock())
        self.lifetime = lifetime.Lifetime(self)
        self._issuing: dict[str, asyncio.Task[None]] = {}

    async def blocking(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run CPU-bound key work off the event loop."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    # reading state ---------------------------------------------------------------------------
    def certificate(self, name: str) -> Doc:
        """The live (not deleted) certificate object, or CertificateNotFound."""
        found = self.store.get_certificate(name)
        if found is None or found[1]:
            raise certificate_not_found(name)
        return found[0]

    def operation(self, name: str) -> Operation | None:
        found = self.store.get_operation(name)
        return Operation.from_doc(found[0]) if found else None

    def check_writable(self, name: str) -> Doc | None:
        """Before a create/import: not soft-deleted, no operation inProgress."""
        found = self.store.get_certificate(name)
        if found is not None and found[1]:
            raise deleted_but_recoverable(name)
        ops.ensure_replaceable(self.operation(name), self.profile)
        return found[0] if found else None

    def render_current(self, ctx: Ctx, name: str, cert: Doc) -> dict[str, Any]:
        """The latest version, or the pending-only shape, or a bare object (deleted view)."""
        op = self.operation(name)
        latest = self.store.get_version(name, None)
        if latest is not None:
            return views.bundle(ctx, name, cert, latest[0], latest[1], op=op)
        if op is not None:
            return views.pending_only(ctx, name, cert, op)
        return {
            "id": ctx.cert_url(name),
            "policy": views.policy(ctx, name, cert),
            "attributes": {
                "enabled": False,
                "created": int(cert["created"]),
                "updated": int(cert["updated"]),
                "recoveryLevel": views.RECOVERY_LEVEL,
            },
        }

    # the operation's own progress ------------------------------------------------------------
    async def advance(self, name: str) -> Operation | None:
        """Apply whatever is due to the operation (issue or cancel) and return it."""
        op = self.operation(name)
        if op is None:
            return None
        event = ops.next_event(op, self.clock())
        if event == "cancel":
            self.save_operation(ops.cancelled(op))
        elif event == "issue":
            await self._issue_once(op)
        return self.operation(name)

    async def _issue_once(self, op: Operation) -> None:
        """Sign at most once per request even when reads and the ticker race."""
        task = self._issuing.get(op.request_id)
        if task is None:
            task = asyncio.ensure_future(self._issue(op))
            self._issuing[op.request_id] = task
            task.add_done_callback(lambda _: self._issuing.pop(op.request_id, None))
        await asyncio.shield(task)

    async def _issue(self, op: Operation) -> None:
        found = self.store.get_operation(op.name)
        cert = self.store.get_certificate(op.name)
        if found is None or cert is None:
            return
        key_pem = found[1]
        spec = policies.cert_spec(cert[0]["policy"])
        leaf, chain = await self.blocking(
            issuers.issue,
            op.kind,
            self.ca,
            crypto.b64decode_strict(op.csr),
            key_pem,
            spec,
            now=self.clock(),
        )
        current = self.operation(op.name)
        if current is None or current.request_id != op.request_id or not current.in_progress:
            return
        self._complete(current, leaf, chain, key_pem, enabled=op.enabled, tags=op.tags)

    def _complete(
        self,
        op: Operation,
        leaf: bytes,
        chain: tuple[bytes, ...],
        key_pem: bytes,
        *,
        enabled: bool,
        tags: dict[str, str] | None,
        leaf_index: int = 0,
    ) -> None:
        """Issue the operation's version; it keeps the create's `preserveCertOrder`, and with
        it `leaf_index`, the leaf's place in a merged x5c."""
        cert = self.certificate(op.name)
        content_type = cert["policy"]["secret_props"]["contentType"]
        doc = bundles.version_doc(
            leaf,
            chain,
            enabled=enabled,
            tags=tags,
            content_type=content_type,
            now=self.clock(),
            preserve_order=op.preserve_order,
            leaf_index=leaf_index,
        )
        with self.store.transaction():
            self.store.put_version(op.name, op.version, doc, key_pem)
            self.store.put_operation(op.name, ops.completed(op).to_doc(), key_pem, None)

    def save_operation(self, op: Operation) -> None:
        """Store a changed operation, keeping its key."""
        found = self.store.get_operation(op.name)
        if found is None:
            raise pending_not_found(op.name)
        self.store.put_operation(op.name, op.to_doc(), found[1], op.due)

    async def settle(self, name: str) -> Operation | None:
        """Apply what is due to a certificate: its operation's outcome, then lifetime actions."""
        await self.advance(name)
        await self.lifetime.run(name)
        return self.operation(name)

    async def tick(self) -> None:
        """Apply whatever is due: operations' outcomes, then lifetime actions (the server's
        ticker calls this periodically, and a clock move before it answers)."""
        for name in self.store.due_operations(self.clock()):
            await self.advance(name)
        await self.lifetime.run_due()

    # create / import / merge -----------------------------------------------------------------
    async def create(self, ctx: Ctx, name: str, body: CreateIn) -> tuple[Operation, Doc]:
        imports.refuse_unsupported(body.policy)
        preserve = imports.preserve_order(ctx, body.preserve_cert_order)
        existing = self.check_writable(name)
        if body.policy is not None:
            policy = policies.merge(None, body.policy)
        elif existing is not None:
            policy = existing["policy"]
        else:
            raise bad_parameter("Property policy is required for a new certificate.")
        policies.require_subject(policy)
        attributes = body.attributes
        op, key_pem = await self.prepare_operation(
            name,
            policy,
            renewing=existing is not None,
            enabled=attributes.enabled if attributes and attributes.enabled is not None else True,
            tags=body.tags,
            preserve=preserve,
        )
        existing = self.check_writable(name)
        cert = self.cert_doc(existing, policy, op.created)
        with self.store.transaction():
            self.store.put_certificate(name, cert)
            self.store.put_operation(name, op.to_doc(), key_pem, op.due)
        return op, views.operation(ctx, op, created=True)

    async def prepare_operation(
        self,
        name: str,
        policy: Doc,
        *,
        renewing: bool,
        enabled: bool,
        tags: dict[str, str] | None,
        preserve: bool = False,
    ) -> tuple[Operation, bytes]:
        """The key (new, or the latest version's with `reuse_key`) and the inProgress operation
        of a create or an AutoRenew, with its issuer's first action scheduled; not stored."""
        issuer_name = policy["issuer"]["name"]
        if not issuers.is_builtin(issuer_name) and self.store.get_issuer(issuer_name) is None:
            raise bad_parameter(f"Issuer not found: {issuer_name}")
        reuse = None
        if policy["key_props"]["reuse_key"] and renewing:
            latest = self.store.get_version(name, None)
            if latest is not None:
                reuse = self.store.version_key(name, latest[0])
        try:
            key_pem, csr = await self.blocking(
                bundles.key_and_csr, policies.key_spec(policy), policies.cert_spec(policy), reuse
            )
        except ValueError as exc:  # CryptoInputError, or cryptography refusing a SAN value
            raise bad_parameter(
                "The policy's subject or subject alternative names cannot be used in a "
                "certificate request."
            ) from exc
        op = ops.start(
            name=name,
            request_id=new_id(),
            version=new_id(),
            issuer_name=issuer_name,
            kind=issuers.classify(issuer_name),
            csr=crypto.b64(csr),
            now=self.clock(),
            ca_delay=self.ca_delay,
            enabled=enabled,
            tags=tags,
            preserve_order=preserve,
        )
        return op, key_pem

    def cert_doc(self, existing: Doc | None, policy: Doc, now: float) -> Doc:
        created = existing["created"] if existing else now
        return {"policy": policy, "created": created, "updated": now, "policy_updated": now}

    async def merge(self, ctx: Ctx, name: str, body: MergeIn) -> Doc:
        op = await self.advance(name)
        if op is None:
            raise pending_not_found(name)
        ops.check_merge(op)
        certs = bundles.parse_x5c(body.x5c)
        found = self.store.get_operation(name)
        assert found is not None
        try:
            leaf, chain, leaf_index = await self.blocking(
                bundles.locate_leaf, certs, found[1], anywhere=op.preserve_order
            )
        except crypto.CryptoInputError as exc:
            raise bad_parameter(str(exc)) from exc
        current = self.operation(name)
        if current is None or current.request_id != op.request_id:
            raise pending_not_found(name)
        ops.check_merge(current)
        enabled = body.attributes.enabled if body.attributes else None
        self._complete(
            current,
            leaf,
            chain,
            found[1],
            enabled=op.enabled if enabled is None else enabled,
            tags=op.tags if body.tags is None else body.tags,
            leaf_index=leaf_index,
        )
        cert = self.certificate(name)
        version = self.store.get_version(name, op.version)
        assert version is not None
        return views.bundle(ctx, name, cert, op.version, version[1], op=self.operation(name))

    # pending operation endpoints -------------------------------------------------------------
    async def get_operation(self, name: str, request_id: str | None) -> Operation:
        op = await self.settle(name)
        if op is None or not ops.matches(op, request_id):
            raise pending_not_found(name)
        return op

    async def cancel(self, name: str, requested: bool) -> Operation:
        op = await self.get_operation(name, None)
        if not requested:
            return op
        updated = ops.request_cancel(op, self.clock(), self.profile)
        self.save_operation(updated)
        return updated

    async def delete_operation(self, name: str) -> Operation:
        """Drop the pending object; a certificate that never got a version goes with it."""
        op = await self.get_operation(name, None)
        with self.store.transaction():
            self.store.delete_operation(name)
            if self.store.get_version(name, None) is None:
                self.store.purge_certificate(name)
        return op

    # certificates ----------------------------------------------------------------------------
    async def get_certificate(self, ctx: Ctx, name: str, version: str | None) -> Doc:
        live = self.store.get_certificate(name)
        if live is None or live[1]:
            raise certificate_not_found(f"{name}/{version}" if version else name)
        cert = live[0]
        op = await self.settle(name)
        if version is None:
            return self.render_current(ctx, name, cert)
        found = self.store.get_version(name, version.lower())
        if found is not None:
            return views.bundle(ctx, name, cert, found[0], found[1], op=op)
        if op is not None and op.version == version.lower():
            return views.pending_only(ctx, name, cert, op)
        raise version_not_found(name, version)

    def update_certificate(self, ctx: Ctx, name: str, version: str | None, body: UpdateIn) -> Doc:
        imports.refuse_unsupported(body.policy)
        cert = self.certificate(name)
        found = self.store.get_version(name, version.lower() if version else None)
        if found is None:
            raise version_not_found(name, version or "")
        now = self.clock()
        doc = dict(found[1])
        if body.attributes is not None and body.attributes.enabled is not None:
            doc["enabled"] = body.attributes.enabled
        if body.tags is not None:
            doc["tags"] = body.tags
        doc["updated"] = now
        if body.policy is not None:
            cert = {
                **cert,
                "policy": policies.merge(cert["policy"], body.policy),
                "policy_updated": now,
                "updated": now,
            }
        with self.store.transaction():
            self.store.put_certificate(name, cert)
            self.store.put_version(name, found[0], doc, None)
        return views.bundle(ctx, name, cert, found[0], doc, op=self.operation(name))

    def get_policy(self, ctx: Ctx, name: str) -> Doc:
        return views.policy(ctx, name, self.certificate(name))

    def update_policy(self, ctx: Ctx, name: str, update: PolicyIn) -> Doc:
        imports.refuse_unsupported(update)
        cert = self.certificate(name)
        now = self.clock()
        cert = {
            **cert,
            "policy": policies.merge(cert["policy"], update),
            "policy_updated": now,
            "updated": now,
        }
        self.store.put_certificate(name, cert)
        return views.policy(ctx, name, cert)
