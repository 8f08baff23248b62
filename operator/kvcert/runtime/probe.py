"""KeyVault / ClusterKeyVault: can the operator reach the vault, and the vault's contacts.

Ready: one cheap read of a certificate name that should not exist; a 404 proves TLS, the URL and
the credential all work. ContactsApplied (issue #19 §2): when `spec.contacts` is set and the vault
answered, the vault's certificate contacts are read and written only when they differ, so a
restart or a re-list costs one GET and no write. A contacts failure leaves Ready alone (Ready is
about reaching the vault). The probe runs when a vault object is first seen or its spec changes,
never on a timer: a failed contacts write is tried again at the next spec change or restart.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from kvcert.api.base import InvalidResource
from kvcert.api.keyvault import ClusterKeyVault, KeyVault
from kvcert.api.status import Condition
from kvcert.keyvault.client import KeyVaultClient
from kvcert.keyvault.convert import Contact
from kvcert.keyvault.errors import (
    BadParameter,
    CertificateNotFound,
    Forbidden,
    KeyVaultError,
    KeyVaultTransportError,
    Unauthorized,
)
from kvcert.reconcile.conditions import set_condition
from kvcert.runtime.loop import Context
from kvcert.runtime.vaults import VaultUnavailable

log = logging.getLogger("kvcert.vault")
PROBE_NAME = "kvcert-readiness-probe"
READY = "Ready"
CONTACTS_APPLIED = "ContactsApplied"


class ContactsReason(enum.StrEnum):
    """Reasons of the ContactsApplied condition and of its events (shared strings are the same
    as kvcert.reconcile.reasons.Reason's)."""

    SET = "ContactsSet"  # the vault's contacts were replaced with spec.contacts (PUT)
    DELETED = "ContactsDeleted"  # spec.contacts is []: the vault's contacts were deleted
    UP_TO_DATE = "ContactsUpToDate"  # the vault already had exactly spec.contacts: no write
    VAULT_NOT_READY = "VaultNotReady"  # the vault is not Ready (see Ready): contacts not read
    ACCESS_DENIED = "AccessDenied"  # the credential may not read or manage contacts
    REJECTED = "ContactsRejected"  # Key Vault refused the list as invalid (400)
    KEY_VAULT_ERROR = "KeyVaultError"  # no usable answer (transport, 429, 5xx, unexpected)


CONTACTS_EVENTS = {
    ContactsReason.SET: "Normal",
    ContactsReason.DELETED: "Normal",
    ContactsReason.ACCESS_DENIED: "Warning",
    ContactsReason.REJECTED: "Warning",
    ContactsReason.KEY_VAULT_ERROR: "Warning",
}
"""The event type per reason: a write is Normal, a failure a Warning. UpToDate and VaultNotReady
post none (nothing happened; the Ready event already tells why)."""


@dataclass(frozen=True)
class Verdict:
    """The Ready verdict, and the client that reached the vault (None when it did not)."""

    ready: bool
    reason: str
    message: str
    client: KeyVaultClient | None = None


@dataclass(frozen=True)
class ContactsOutcome:
    applied: bool
    reason: ContactsReason
    message: str


async def _verdict(ctx: Context, body: Mapping[str, Any], cluster: bool) -> Verdict:
    try:
        client = await ctx.vaults.for_body(body, cluster=cluster)
    except VaultUnavailable as unavailable:
        return Verdict(False, "InvalidConfiguration", unavailable.message)
    try:
        await client.get_certificate(PROBE_NAME)
    except CertificateNotFound:
        url = client.vault_url
        return Verdict(True, "Reachable", f"{url} answered and accepted the credential", client)
    except (Unauthorized, Forbidden) as error:
        await ctx.vaults.forget(client)
        return Verdict(False, "AccessDenied", f"{client.vault_url}: {error}")
    except KeyVaultTransportError as error:
        return Verdict(False, "Unreachable", f"{client.vault_url}: {error}")
    except KeyVaultError as error:
        return Verdict(False, "KeyVaultError", f"{client.vault_url}: {error}")
    return Verdict(True, "Reachable", f"{client.vault_url} answered", client)


def desired_contacts(body: Mapping[str, Any], *, cluster: bool) -> tuple[Contact, ...] | None:
    """`spec.contacts` as Key Vault contacts; None when unset (or the spec does not parse:
    Ready then says why, InvalidConfiguration)."""
    try:
        spec = (ClusterKeyVault if cluster else KeyVault).from_body(body).spec
    except InvalidResource:
        return None
    if spec.contacts is None:
        return None
    return tuple(Contact(email=c.email, name=c.name, phone=c.phone) for c in spec.contacts)


def same_contacts(left: Sequence[Contact], right: Sequence[Contact]) -> bool:
    """Equal as Key Vault uses them: order and e-mail case do not matter (Contact.key)."""
    return sorted(c.key() for c in left) == sorted(c.key() for c in right)


async def apply_contacts(client: KeyVaultClient, desired: Sequence[Contact]) -> ContactsOutcome:
    """Make the vault's contacts `desired` (issue #19 §2): GET, then PUT (a list) or DELETE
    (`[]`) only when they differ. Never raises a KeyVaultError: failures are outcomes."""
    url = client.vault_url
    try:
        current = await client.get_contacts()
        if same_contacts(current, desired):
            return ContactsOutcome(
                True, ContactsReason.UP_TO_DATE, f"{url} has these {len(desired)} contact(s)"
            )
        if not desired:
            await client.delete_contacts()
            return ContactsOutcome(
                True, ContactsReason.DELETED, f"deleted the {len(current)} contact(s) of {url}"
            )
        await client.set_contacts(desired)
    except (Unauthorized, Forbidden) as error:
        return ContactsOutcome(
            False,
            ContactsReason.ACCESS_DENIED,
            f"{url}: {error} (contacts need the certificate permissions getcontacts and"
            " managecontacts)",
        )
    except BadParameter as error:
        return ContactsOutcome(False, ContactsReason.REJECTED, f"{url}: {error}")
    except KeyVaultError as error:
        return ContactsOutcome(
            False,
            ContactsReason.KEY_VAULT_ERROR,
            f"{url}: {error} (tried again when the spec changes or the operator restarts)",
        )
    return ContactsOutcome(
        True,
        ContactsReason.SET,
        f"set {len(desired)} contact(s) in {url} (it had {len(current)})",
    )


def _conditions(body: Mapping[str, Any]) -> tuple[Condition, ...]:
    """The conditions in status, each parsed; one of a stale shape is dropped (rewritten)."""
    found = []
    for item in (body.get("status") or {}).get("conditions") or []:
        try:
            found.append(Condition.model_validate(item))
        except ValidationError:
            continue
    return tuple(found)


async def probe_vault(ctx: Context, body: Mapping[str, Any], *, cluster: bool) -> None:
    """Probe the vault, apply `spec.contacts`, and patch status (observedGeneration and the
    conditions Ready and ContactsApplied, others kept; lastTransitionTime moves only when a
    status flips); then post an event for Ready and one when contacts were written or failed."""
    meta = body.get("metadata", {})
    generation = int(meta.get("generation") or 0)
    now = ctx.clock.now()
    verdict = await _verdict(ctx, body, cluster)
    conditions = set_condition(
        _conditions(body),
        READY,
        "True" if verdict.ready else "False",
        verdict.reason,
        verdict.message,
        generation=generation,
        now=now,
    )
    desired = desired_contacts(body, cluster=cluster)
    contacts: ContactsOutcome | None = None
    if desired is None:
        conditions = tuple(c for c in conditions if c.type != CONTACTS_APPLIED)
    else:
        if verdict.client is None:
            contacts = ContactsOutcome(
                False, ContactsReason.VAULT_NOT_READY, "the vault is not Ready: see Ready"
            )
        else:
            contacts = await apply_contacts(verdict.client, desired)
        conditions = set_condition(
            conditions,
            CONTACTS_APPLIED,
            "True" if contacts.applied else "False",
            contacts.reason,
            contacts.message,
            generation=generation,
            now=now,
        )
    patch = {
        "observedGeneration": meta.get("generation"),
        "conditions": [c.to_wire() for c in conditions],
    }
    namespace = None if cluster else meta.get("namespace")
    await ctx.kube.patch_vault_status(namespace, str(meta.get("name")), patch)
    kind = "ClusterKeyVault" if cluster else "KeyVault"
    ready_type = "Normal" if verdict.ready else "Warning"
    await ctx.events.emit(body, ready_type, verdict.reason, verdict.message, kind)
    if contacts is not None and contacts.reason in CONTACTS_EVENTS:
        event_type = CONTACTS_EVENTS[contacts.reason]
        await ctx.events.emit(body, event_type, contacts.reason, contacts.message, kind)
