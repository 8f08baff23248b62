"""Certificate lifetime actions: Key Vault renews a certificate or e-mails its contacts by itself.

A policy's `lifetime_actions` (one at most) say when and what: the trigger is a
`lifetime_percentage` of the current version's validity (`nbf` + (`exp` - `nbf`) x p / 100) or
`days_before_expiry` (`exp` - d x 86400 s), both in Unix seconds of the vault's clock; the
action is `AutoRenew` or `EmailContacts` (the Trigger, Action and CertificatePolicyAction
definitions of the 2026-04-01 REST API).

- `AutoRenew` makes a new version through the policy's issuer, as a create would (Self: at
  once; a provider: an inProgress operation that the simulated CA completes after its delay).
  Key Vault does not renew a certificate whose issuer is `Unknown` ("auto-renewal capability
  isn't applicable for certificates from CAs that don't partner with Key Vault", Key Vault's
  certificate renewal overview): the vault e-mails the contacts instead, as the portal offers
  for such certificates.
- `EmailContacts` records one notification listing the vault's certificate contacts' e-mails
  (`GET /_kvcert/notifications`): nothing is sent.

An action fires at most once per version, recorded in the store in the same transaction as its
effect, so neither a restart nor a second tick repeats it; a renewal makes a new version, whose
own trigger is later. Nothing fires for a disabled current version, and `AutoRenew` waits while
an operation is inProgress (a create or a renewal already under way). A clock move past several
lifetimes renews once, from the vault's new now.

The decisions are pure functions of the stored records and `now`; `Lifetime` applies them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kvcert.vault import issuers
from kvcert.vault.errors import VaultError
from kvcert.vault.operation import Operation
from kvcert.vault.store import Doc

if TYPE_CHECKING:
    from kvcert.vault.service import VaultService

AUTO_RENEW = "AutoRenew"
EMAIL_CONTACTS = "EmailContacts"
ACTIONS = (AUTO_RENEW, EMAIL_CONTACTS)
DAY = 86400.0

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Due:
    """An action to perform for a version: what the vault does, and when it became due."""

    action: str
    at: float


def trigger_time(trigger: dict[str, Any], nbf: float, exp: float) -> float:
    """When a trigger fires for a version valid from `nbf` to `exp` (Unix seconds)."""
    percentage = trigger.get("lifetime_percentage")
    if percentage is not None:
        return nbf + (exp - nbf) * float(percentage) / 100
    return exp - float(trigger["days_before_expiry"]) * DAY


def performed(action_type: str, issuer_name: str) -> str:
    """What the vault does for a policy action: `AutoRenew` with issuer `Unknown` e-mails."""
    if action_type == AUTO_RENEW and issuers.classify(issuer_name) == "manual":
        return EMAIL_CONTACTS
    return action_type


def pending(policy: Doc, version: Doc, fired: Iterable[str]) -> list[Due]:
    """The actions of the policy not yet performed for this version, earliest first.

    A disabled version has none: Key Vault acts for the certificate in use.
    """
    if not version.get("enabled", True):
        return []
    done = set(fired)
    out = []
    for item in policy.get("lifetime_actions") or []:
        action = performed(item["action"]["action_type"], policy["issuer"]["name"])
        if action not in done:
            out.append(Due(action, trigger_time(item["trigger"], version["nbf"], version["exp"])))
    return sorted(out, key=lambda due: due.at)


def due_now(actions: list[Due], op: Operation | None, now: float) -> list[Due]:
    """Those whose trigger has passed; `AutoRenew` not while an operation is inProgress."""
    busy = op is not None and op.in_progress
    return [d for d in actions if d.at <= now and not (d.action == AUTO_RENEW and busy)]


class Lifetime:
    """Performs due lifetime actions over the service's store (ticker, reads, clock moves)."""

    def __init__(self, service: VaultService) -> None:
        self.service = service
        self.store = service.store
        self.listeners: list[Callable[[str], None]] = []
        self._running: dict[str, asyncio.Task[None]] = {}
        self._scanned: tuple[int, float] | None = None  # (store generation, next trigger)

    async def run(self, name: str) -> None:
        """Perform what is due for one certificate (once, even when reads and the ticker race)."""
        task = self._running.get(name)
        if task is None:
            task = asyncio.ensure_future(self._run(name))
            self._running[name] = task
            task.add_done_callback(lambda _: self._running.pop(name, None))
        await asyncio.shield(task)

    async def run_due(self) -> None:
        """Perform what is due for every certificate.

        A full scan only when the store changed or the earliest known trigger has passed:
        otherwise nothing can have become due (the ticker calls this five times a second).
        """
        now = self.service.clock()
        if self._scanned is not None:
            generation, next_at = self._scanned
            if generation == self.store.generation and now < next_at:
                return
        generation = self.store.generation
        next_at = float("inf")
        for name, cert in self.store.list_certificates(deleted=False):
            actions = self._pending(name, cert)
            if any(due.at <= now for due in actions):
                await self.run(name)  # a renewal waiting for an operation counts when it ends
            else:
                next_at = min([next_at, *(due.at for due in actions)])
        self._scanned = (generation if self.store.generation == generation else -1, next_at)

    def _pending(self, name: str, cert: Doc | None = None) -> list[Due]:
        """The actions not yet performed for the current version of a live certificate."""
        if cert is None:
            found = self.store.get_certificate(name)
            if found is None or found[1]:
                return []
            cert = found[0]
        latest = self.store.get_version(name, None)
        if latest is None:
            return []
        version, doc = latest
        return pending(cert["policy"], doc, self.store.lifetime_fired(name, version))

    async def _run(self, name: str) -> None:
        latest = self.store.get_version(name, None)
        if latest is None:
            return
        now = self.service.clock()
        for due in due_now(self._pending(name), self.service.operation(name), now):
            if due.action == EMAIL_CONTACTS:
                self._email(name, latest[0], now)
            else:
                await self._renew(name, latest[0], latest[1], now)

    def _email(self, name: str, version: str, now: float) -> None:
        contacts = (self.store.get_contacts() or {}).get("contacts", [])
        self.store.record_lifetime(
            name,
            version,
            EMAIL_CONTACTS,
            {
                "certificate": name,
                "version": version,
                "action": EMAIL_CONTACTS,
                "contacts": [c["email"] for c in contacts if c.get("email")],
                "at": now,
            },
        )
        self._fired(EMAIL_CONTACTS)

    async def _renew(self, name: str, version: str, doc: Doc, now: float) -> None:
        """A new version through the issuer, keeping the policy and the version's tags."""
        service = self.service
        record = {"certificate": name, "version": version, "action": AUTO_RENEW, "at": now}
        cert = service.certificate(name)
        try:
            op, key_pem = await service.prepare_operation(
                name, cert["policy"], renewing=True, enabled=True, tags=doc.get("tags") or {}
            )
        except VaultError as exc:  # e.g. the issuer object was deleted: no retry every tick
            log.warning("lifetime renewal of %s not started: %s", name, exc.code)
            self.store.record_lifetime(name, version, AUTO_RENEW, {**record, "error": exc.code})
            return
        latest = self.store.get_version(name, None)
        current = service.operation(name)
        live = self.store.get_certificate(name)
        if (
            live is None
            or live[1]
            or latest is None
            or latest[0] != version
            or AUTO_RENEW in self.store.lifetime_fired(name, version)
            or (current is not None and current.in_progress)
        ):
            return  # the state changed while the key was being made
        with self.store.transaction():
            self.store.put_operation(name, op.to_doc(), key_pem, op.due)
            self.store.record_lifetime(
                name, version, AUTO_RENEW, {**record, "requestId": op.request_id}
            )
        self._fired(AUTO_RENEW)
        if op.kind == "self":
            await service.advance(name)

    def _fired(self, action: str) -> None:
        for listener in self.listeners:
            listener(action)

    def notifications(self, name: str | None = None) -> list[Doc]:
        """The EmailContacts notifications recorded, oldest first."""
        return self.store.lifetime_records(EMAIL_CONTACTS, name)
