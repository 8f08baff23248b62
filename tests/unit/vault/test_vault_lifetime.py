"""Lifetime actions and the vault clock: pure decisions as tables, then the app in-process.

The in-process vault has no ticker (`tick_interval=None`): what a test sees is applied either by
`POST /_kvcert/clock` before it answers, or lazily by a read after the fake clock moved.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from kvcert.vault import lifetime
from kvcert.vault.app import create_app
from kvcert.vault.lifetime import AUTO_RENEW, EMAIL_CONTACTS, Due
from kvcert.vault.operation import Operation
from kvcert.vault.profiles import DOCUMENTED
from kvcert.vault.service import VaultService
from kvcert.vault.store import Store

API = "?api-version=7.6"
DAY = 86400.0
NBF, EXP = 1_000_000.0, 1_000_000.0 + 100 * DAY


def _policy(action: str, issuer: str = "Self", **trigger: int) -> dict[str, Any]:
    return {
        "issuer": {"name": issuer},
        "lifetime_actions": [{"trigger": trigger, "action": {"action_type": action}}],
    }


def _version(enabled: bool = True) -> dict[str, Any]:
    return {"nbf": NBF, "exp": EXP, "enabled": enabled}


def _op(status: str) -> Operation:
    return Operation("n", "r", "v", "Self", "self", "csr", 0.0, status=status)


@pytest.mark.parametrize(
    ("trigger", "expected"),
    [
        pytest.param({"lifetime_percentage": 80}, NBF + 80 * DAY, id="80 % of 100 days"),
        pytest.param({"lifetime_percentage": 1}, NBF + DAY, id="1 %"),
        pytest.param({"days_before_expiry": 30}, EXP - 30 * DAY, id="30 days before expiry"),
    ],
)
def test_a_trigger_is_a_point_in_the_versions_validity(
    trigger: dict[str, int], expected: float
) -> None:
    assert lifetime.trigger_time(trigger, NBF, EXP) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("action", "issuer", "performed"),
    [
        pytest.param(AUTO_RENEW, "Self", AUTO_RENEW, id="Self renews"),
        pytest.param(AUTO_RENEW, "digicert-1", AUTO_RENEW, id="a provider renews"),
        pytest.param(AUTO_RENEW, "Unknown", EMAIL_CONTACTS, id="Unknown is never renewed"),
        pytest.param(EMAIL_CONTACTS, "Self", EMAIL_CONTACTS, id="e-mail stays e-mail"),
    ],
)
def test_what_the_vault_performs_for_a_policy_action(
    action: str, issuer: str, performed: str
) -> None:
    assert lifetime.performed(action, issuer) == performed


AT_80 = NBF + 80 * DAY


@pytest.mark.parametrize(
    ("version", "fired", "op", "now", "expected"),
    [
        pytest.param(_version(), set(), None, AT_80 - 1, [], id="nothing before the trigger"),
        pytest.param(
            _version(), set(), None, AT_80, [Due(AUTO_RENEW, AT_80)], id="due at the trigger"
        ),
        pytest.param(_version(), {AUTO_RENEW}, None, EXP, [], id="once per version"),
        pytest.param(_version(enabled=False), set(), None, EXP, [], id="not for a disabled one"),
        pytest.param(
            _version(), set(), _op("inProgress"), EXP, [], id="not while an operation is running"
        ),
        pytest.param(
            _version(),
            set(),
            _op("failed"),
            AT_80,
            [Due(AUTO_RENEW, AT_80)],
            id="after a failed operation",
        ),
    ],
)
def test_when_auto_renew_is_due(
    version: dict[str, Any],
    fired: set[str],
    op: Operation | None,
    now: float,
    expected: list[Due],
) -> None:
    actions = lifetime.pending(_policy(AUTO_RENEW, lifetime_percentage=80), version, fired)
    assert lifetime.due_now(actions, op, now) == expected


def test_an_email_is_due_even_while_an_operation_is_running() -> None:
    actions = lifetime.pending(_policy(EMAIL_CONTACTS, days_before_expiry=10), _version(), set())
    due = lifetime.due_now(actions, _op("inProgress"), EXP)
    assert due == [Due(EMAIL_CONTACTS, EXP - 10 * DAY)]


# the app in-process -------------------------------------------------------------------------
class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def client(tmp_path: Path, clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    store = Store(tmp_path / "vault.sqlite3")
    service = VaultService(store, DOCUMENTED, clock=clock, ca_delay=20)
    app = create_app(service, token=None, tick_interval=None)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="https://kv.vault.test",
        headers={"Authorization": "Bearer anything"},
    ) as c:
        yield c
    store.close()


async def _create(
    client: httpx.AsyncClient, name: str, issuer: str = "Self", **policy: Any
) -> dict[str, Any]:
    body = {"x509_props": {"subject": "CN=a"}, "issuer": {"name": issuer}, **policy}
    response = await client.post(f"/certificates/{name}/create{API}", json={"policy": body})
    assert response.status_code == 202, response.text
    result: dict[str, Any] = response.json()
    return result


def _actions(action: str, **trigger: int) -> dict[str, Any]:
    return {"lifetime_actions": [{"trigger": trigger, "action": {"action_type": action}}]}


async def _advance(client: httpx.AsyncClient, seconds: float) -> dict[str, Any]:
    response = await client.post("/_kvcert/clock", json={"advanceSeconds": seconds})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _get(client: httpx.AsyncClient, path: str) -> dict[str, Any]:
    response = await client.get(f"{path}{'&' if '?' in path else '?'}api-version=7.6")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _versions(client: httpx.AsyncClient, name: str) -> list[dict[str, Any]]:
    return list((await _get(client, f"/certificates/{name}/versions"))["value"])


async def test_the_clock_moves_forward_only_and_says_where_it_is(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    assert await _get(client, "/_kvcert/clock") == {"now": clock.now, "offset": 0.0}
    assert await _advance(client, 90.5) == {"now": clock.now + 90.5, "offset": 90.5}
    assert await _advance(client, 0) == {"now": clock.now + 90.5, "offset": 90.5}
    for bad in (-1, "10", None, 1e300):
        refused = await client.post("/_kvcert/clock", json={"advanceSeconds": bad})
        assert refused.status_code == 400, bad
        assert refused.json()["error"]["code"] == "BadParameter"
    assert (await _get(client, "/_kvcert/clock"))["offset"] == 90.5


async def test_new_versions_are_dated_by_the_vault_clock(client: httpx.AsyncClient) -> None:
    moved = await _advance(client, 1000 * DAY)
    await _create(client, "web")
    attributes = (await _get(client, "/certificates/web/"))["attributes"]
    assert attributes["created"] == int(moved["now"])
    assert attributes["nbf"] == int(moved["now"]) - 300  # issued 5 minutes back, as always


@pytest.mark.parametrize(
    ("policy", "before", "after"),
    [
        pytest.param(
            _actions(AUTO_RENEW, lifetime_percentage=50), 150 * DAY, 40 * DAY, id="at 50 percent"
        ),
        pytest.param(
            _actions(AUTO_RENEW, days_before_expiry=30), 300 * DAY, 40 * DAY, id="30 days before"
        ),
        pytest.param({}, 280 * DAY, 20 * DAY, id="the default policy renews at 80 percent"),
    ],
)
async def test_a_self_signed_certificate_is_renewed_when_the_clock_passes_its_trigger(
    client: httpx.AsyncClient, policy: dict[str, Any], before: float, after: float
) -> None:
    body = {"x509_props": {"subject": "CN=a"}, "issuer": {"name": "Self"}, **policy}
    created = await client.post(
        f"/certificates/web/create{API}", json={"policy": body, "tags": {"team": "a"}}
    )
    assert created.status_code == 202
    first = await _get(client, "/certificates/web/")
    await _advance(client, before)
    assert (await _get(client, "/certificates/web/"))["id"] == first["id"]
    await _advance(client, after)
    renewed = await _get(client, "/certificates/web/")
    assert renewed["id"] != first["id"]
    assert renewed["x5t"] != first["x5t"]
    assert renewed["tags"] == {"team": "a"}
    assert renewed["policy"]["lifetime_actions"] == first["policy"]["lifetime_actions"]
    assert len(await _versions(client, "web")) == 2
    pending = await _get(client, "/certificates/web/pending")
    assert pending["status"] == "completed"
    assert pending["request_id"] != created.json()["request_id"]
    stats = await _get(client, "/_kvcert/stats")
    assert stats["lifetimeActions"] == {"AutoRenew": 1, "EmailContacts": 0}


async def test_a_renewal_is_applied_lazily_by_a_read_after_the_time_passed(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await _create(client, "web")
    first = await _get(client, "/certificates/web/")
    clock.now += 300 * DAY  # the host's time moves: no clock call, no ticker
    assert (await _get(client, "/certificates/web/"))["id"] != first["id"]


async def test_a_renewal_fires_once_per_version(client: httpx.AsyncClient) -> None:
    await _create(client, "web", **_actions(AUTO_RENEW, lifetime_percentage=50))
    await _advance(client, 200 * DAY)
    await _advance(client, 1)
    await _get(client, "/certificates/web/")
    assert len(await _versions(client, "web")) == 2
    await _advance(client, 200 * DAY)  # the renewed version's own trigger
    assert len(await _versions(client, "web")) == 3


def _public_key(bundle: dict[str, Any]) -> bytes:
    cert = x509.load_der_x509_certificate(base64.b64decode(bundle["cer"]))
    return cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


@pytest.mark.parametrize("reuse", [True, False], ids=["reuse_key keeps it", "else a new key"])
async def test_a_renewal_makes_a_new_key_unless_reuse_key(
    client: httpx.AsyncClient, reuse: bool
) -> None:
    policy = {"key_props": {"reuse_key": reuse}, **_actions(AUTO_RENEW, lifetime_percentage=50)}
    await _create(client, "web", **policy)
    first = await _get(client, "/certificates/web/")
    await _advance(client, 200 * DAY)
    second = await _get(client, "/certificates/web/")
    assert second["id"] != first["id"]
    assert (_public_key(second) == _public_key(first)) is reuse


async def test_a_provider_renewal_waits_for_the_simulated_ca(client: httpx.AsyncClient) -> None:
    await client.put(f"/certificates/issuers/dc{API}", json={"provider": "DigiCert"})
    await _create(client, "web", issuer="dc")
    await _advance(client, 20)
    first = await _get(client, "/certificates/web/pending")
    assert first["status"] == "completed"
    await _advance(client, 300 * DAY)
    renewal = await _get(client, "/certificates/web/pending")
    assert (renewal["status"], renewal["issuer"]["name"]) == ("inProgress", "dc")
    assert renewal["request_id"] != first["request_id"]
    assert [v["attributes"]["enabled"] for v in await _versions(client, "web")] == [True, False]
    await _advance(client, 19)
    assert (await _get(client, "/certificates/web/pending"))["status"] == "inProgress"
    await _advance(client, 1)
    assert (await _get(client, "/certificates/web/pending"))["status"] == "completed"
    assert [v["attributes"]["enabled"] for v in await _versions(client, "web")] == [True, True]


async def test_email_contacts_records_one_notification_per_version(
    client: httpx.AsyncClient,
) -> None:
    contacts = [{"email": "a@example.com", "name": "A"}, {"name": "no mail"}]
    await client.put(f"/certificates/contacts{API}", json={"contacts": contacts})
    await _create(client, "web", **_actions(EMAIL_CONTACTS, days_before_expiry=10))
    version = (await _get(client, "/certificates/web/"))["id"].rsplit("/", 1)[1]
    moved = await _advance(client, 360 * DAY)
    await _advance(client, 1)
    notes = (await _get(client, "/_kvcert/notifications"))["value"]
    assert notes == [
        {
            "certificate": "web",
            "version": version,
            "action": "EmailContacts",
            "contacts": ["a@example.com"],
            "at": moved["now"],
        }
    ]
    assert len(await _versions(client, "web")) == 1
    assert (await _get(client, "/_kvcert/notifications?certificate=other"))["value"] == []
    stats = await _get(client, "/_kvcert/stats")
    assert stats["lifetimeActions"] == {"AutoRenew": 0, "EmailContacts": 1}
    assert stats["total"] == sum(stats["requests"].values())


async def test_an_unknown_issuer_certificate_is_never_renewed_but_mailed(
    client: httpx.AsyncClient,
) -> None:
    await _create(
        client, "manual", issuer="Unknown", **_actions(AUTO_RENEW, lifetime_percentage=50)
    )
    assert (await client.post("/_kvcert/certificates/manual/pending/complete")).status_code == 200
    await _advance(client, 300 * DAY)
    assert len(await _versions(client, "manual")) == 1
    notes = (await _get(client, "/_kvcert/notifications?certificate=manual"))["value"]
    assert [n["action"] for n in notes] == ["EmailContacts"]


async def test_a_disabled_certificate_is_not_renewed(client: httpx.AsyncClient) -> None:
    await _create(client, "web")
    await client.patch(f"/certificates/web/{API}", json={"attributes": {"enabled": False}})
    await _advance(client, 300 * DAY)
    assert len(await _versions(client, "web")) == 1
    await client.patch(f"/certificates/web/{API}", json={"attributes": {"enabled": True}})
    await _get(client, "/certificates/web/")  # re-enabled past its trigger: renewed at once
    assert len(await _versions(client, "web")) == 2


async def test_a_running_operation_holds_the_renewal_back(client: httpx.AsyncClient) -> None:
    await _create(client, "web")
    body = {"policy": {"x509_props": {"subject": "CN=a"}, "issuer": {"name": "Unknown"}}}
    manual = await client.post(f"/certificates/web/create{API}", json=body)
    assert manual.status_code == 202
    await _advance(client, 300 * DAY)
    assert (await _get(client, "/certificates/web/pending"))["request_id"] == (
        manual.json()["request_id"]
    )


async def test_an_imported_certificate_gets_email_contacts_by_default(
    client: httpx.AsyncClient,
) -> None:
    await _create(client, "src")
    value = (await _get(client, "/secrets/src"))["value"]
    imported = await client.post(f"/certificates/imp/import{API}", json={"value": value})
    assert imported.status_code == 200, imported.text
    assert imported.json()["policy"]["lifetime_actions"] == [
        {"trigger": {"lifetime_percentage": 80}, "action": {"action_type": "EmailContacts"}}
    ]
    await _advance(client, 300 * DAY)
    assert len(await _versions(client, "imp")) == 1
    notes = (await _get(client, "/_kvcert/notifications?certificate=imp"))["value"]
    assert len(notes) == 1


async def test_the_offset_survives_a_restart(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "restart.sqlite3"
    first = VaultService(Store(path), DOCUMENTED, clock=clock)
    first.clock.advance(1234.5)
    first.store.close()
    second = VaultService(Store(path), DOCUMENTED, clock=clock)
    assert second.clock.offset == 1234.5
    assert second.clock() == clock.now + 1234.5
    second.store.close()


async def test_the_ticker_renews_without_any_read_and_only_once(
    tmp_path: Path, clock: FakeClock
) -> None:
    store = Store(tmp_path / "ticker.sqlite3")
    service = VaultService(store, DOCUMENTED, clock=clock)
    app = create_app(service, token=None, tick_interval=None)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="https://kv.vault.test",
        headers={"Authorization": "Bearer anything"},
    ) as client:
        await _create(client, "web")
        await _create(client, "other", **_actions(AUTO_RENEW, days_before_expiry=10))
    await service.tick()  # issues both; nothing is due yet
    assert [len(store.list_versions(n)) for n in ("web", "other")] == [1, 1]
    clock.now += 300 * DAY
    await service.tick()
    await service.tick()
    assert [len(store.list_versions(n)) for n in ("web", "other")] == [2, 1]
    clock.now += 60 * DAY
    await service.tick()
    assert [len(store.list_versions(n)) for n in ("web", "other")] == [2, 2]
    store.close()
