"""The contacts calls against the local vault's app in-process (httpx.ASGITransport), in both
profiles, and the probe's apply step (GET, then PUT or DELETE only when they differ) counted
by the vault's own request counters (issue #19 §2)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from kvcert.keyvault import KeyVaultClient, StaticToken
from kvcert.keyvault.convert import Contact
from kvcert.runtime.probe import ContactsReason, apply_contacts, same_contacts
from kvcert.vault.app import Vault, create_app
from kvcert.vault.profiles import DOCUMENTED, SERVICE, Profile
from kvcert.vault.service import VaultService
from kvcert.vault.store import Store

TOKEN = "contacts-test-token"
ROUTE = "/certificates/contacts"
PKI = Contact(email="pki@example.com", name="PKI team", phone="+1 555 0100")
OPS = Contact(email="ops@example.com")


@dataclass
class Served:
    client: KeyVaultClient
    vault: Vault

    def count(self, method: str) -> int:
        return self.vault.stats.requests[f"{method} {ROUTE}"]


@pytest.fixture(params=[DOCUMENTED, SERVICE], ids=lambda p: p.name)
async def served(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Served]:
    profile: Profile = request.param
    store = Store(tmp_path / "vault.sqlite3")
    app = create_app(VaultService(store, profile), token=TOKEN, tick_interval=None)
    client = KeyVaultClient(
        "https://kv.vault.test", StaticToken(TOKEN), transport=httpx.ASGITransport(app=app)
    )
    async with client:
        yield Served(client, app.state.vault)
    store.close()


async def test_a_vault_without_contacts_reads_as_none(served: Served) -> None:
    assert await served.client.get_contacts() == ()
    assert served.count("GET") == 1


async def test_set_replaces_the_whole_list_and_reads_back(served: Served) -> None:
    assert await served.client.set_contacts([PKI, OPS]) == (PKI, OPS)
    assert await served.client.get_contacts() == (PKI, OPS)
    assert await served.client.set_contacts([OPS]) == (OPS,)
    assert await served.client.get_contacts() == (OPS,)


async def test_delete_empties_the_list_and_a_second_delete_is_done(served: Served) -> None:
    await served.client.set_contacts([PKI])
    assert await served.client.delete_contacts() is True
    assert await served.client.get_contacts() == ()
    assert await served.client.delete_contacts() is False  # 404 ContactsNotFound: done


async def test_set_with_no_contacts_is_a_caller_error(served: Served) -> None:
    with pytest.raises(ValueError, match="delete_contacts"):
        await served.client.set_contacts([])
    assert served.count("PUT") == 0


SAME = [
    pytest.param([PKI, OPS], [OPS, PKI], True, id="the same contacts in another order"),
    pytest.param(
        [PKI],
        [Contact(email="PKI@Example.com", name="PKI team", phone="+1 555 0100")],
        True,
        id="the same address in another case",
    ),
    pytest.param([PKI], [Contact(email=PKI.email)], False, id="a name and phone dropped"),
    pytest.param([PKI], [PKI, OPS], False, id="a contact added"),
    pytest.param([], [], True, id="none and none"),
    pytest.param([OPS], [], False, id="some and none"),
    pytest.param(
        [Contact(email="a@example.com", name=None)],
        [Contact(email="a@example.com", name="")],
        True,
        id="an empty name is no name",
    ),
]


@pytest.mark.parametrize(("left", "right", "same"), SAME)
def test_same_contacts(left: list[Contact], right: list[Contact], same: bool) -> None:
    assert same_contacts(left, right) is same


async def test_apply_sets_once_and_then_only_reads(served: Served) -> None:
    first = await apply_contacts(served.client, [PKI, OPS])
    assert (first.applied, first.reason) == (True, ContactsReason.SET)
    again = await apply_contacts(served.client, [OPS, PKI])
    assert (again.applied, again.reason) == (True, ContactsReason.UP_TO_DATE)
    assert (served.count("GET"), served.count("PUT"), served.count("DELETE")) == (2, 1, 0)
    assert await served.client.get_contacts() == (PKI, OPS)


async def test_apply_an_empty_list_deletes_once(served: Served) -> None:
    await served.client.set_contacts([PKI])
    deleted = await apply_contacts(served.client, [])
    assert (deleted.applied, deleted.reason) == (True, ContactsReason.DELETED)
    assert await served.client.get_contacts() == ()
    nothing = await apply_contacts(served.client, [])
    assert nothing.reason is ContactsReason.UP_TO_DATE
    assert served.count("DELETE") == 1


async def test_apply_reports_a_refused_credential_as_access_denied(tmp_path: Path) -> None:
    store = Store(tmp_path / "vault.sqlite3")
    app = create_app(VaultService(store, SERVICE), token=TOKEN, tick_interval=None)
    client = KeyVaultClient(
        "https://kv.vault.test",
        StaticToken("not-the-token-7f3a"),
        transport=httpx.ASGITransport(app=app),
    )
    async with client:
        outcome = await apply_contacts(client, [PKI])
    store.close()
    assert (outcome.applied, outcome.reason) == (False, ContactsReason.ACCESS_DENIED)
    assert "managecontacts" in outcome.message
    assert "not-the-token-7f3a" not in outcome.message
