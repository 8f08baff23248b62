"""Lifetime actions over real HTTPS, driven by the vault's clock (`POST /_kvcert/clock`).

These tests move the clock, so they use vaults of their own (one per profile for the module),
never the session's shared ones: a moved clock would date every later test's certificates.
Every outcome is applied before the clock call answers, so nothing here waits on the ticker.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.integration.vault.vault_helpers import create, pending, set_issuer, url, wait_status
from tests.support.vault import LocalVault

DAY = 86400.0
PROFILES = ("documented", "service")


@pytest.fixture(scope="module", params=PROFILES)
def clocked(request: pytest.FixtureRequest) -> Iterator[LocalVault]:
    """A vault of this module's own, whose clock the tests move."""
    with LocalVault.start(profile=request.param) as running:
        yield running


@pytest.fixture
def kv(clocked: LocalVault) -> Iterator[httpx.Client]:
    with clocked.client() as client:
        yield client


def _actions(action: str, **trigger: int) -> list[dict[str, Any]]:
    return [{"trigger": trigger, "action": {"action_type": action}}]


def _current(kv: httpx.Client, name: str) -> dict[str, Any]:
    response = kv.get(url(f"/certificates/{name}/"))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _versions(kv: httpx.Client, name: str) -> list[dict[str, Any]]:
    return list(kv.get(url(f"/certificates/{name}/versions")).json()["value"])


def _issued_self(kv: httpx.Client, name: str, **extra: Any) -> dict[str, Any]:
    assert create(kv, name, "Self", **extra).status_code == 202
    wait_status(kv, name, timeout=10)
    return _current(kv, name)


def test_the_clock_moves_forward_and_a_negative_move_is_refused(
    clocked: LocalVault, kv: httpx.Client
) -> None:
    before = clocked.clock()
    moved = clocked.advance_clock(3600)
    assert moved["offset"] == before["offset"] + 3600
    assert moved["now"] >= before["now"] + 3600
    refused = kv.post("/_kvcert/clock", json={"advanceSeconds": -1})
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "BadParameter"
    assert clocked.clock()["offset"] == moved["offset"]


@pytest.mark.parametrize(
    ("trigger", "short_of_it", "past_it"),
    [
        pytest.param({"lifetime_percentage": 50}, 150 * DAY, 40 * DAY, id="at 50 percent"),
        pytest.param({"days_before_expiry": 30}, 300 * DAY, 40 * DAY, id="30 days before expiry"),
    ],
)
def test_a_self_signed_certificate_is_auto_renewed_at_its_trigger(
    clocked: LocalVault,
    kv: httpx.Client,
    name: str,
    trigger: dict[str, int],
    short_of_it: float,
    past_it: float,
) -> None:
    first = _issued_self(kv, name, lifetime_actions=_actions("AutoRenew", **trigger))
    first_op = pending(kv, name).json()
    clocked.advance_clock(short_of_it)
    assert _current(kv, name)["id"] == first["id"]
    clocked.advance_clock(past_it)
    renewed = _current(kv, name)
    assert renewed["id"] != first["id"]
    assert renewed["x5t"] != first["x5t"]
    assert renewed["attributes"]["enabled"] is True
    assert [v["id"] for v in _versions(kv, name)] == [first["id"], renewed["id"]]
    op = pending(kv, name).json()
    assert op["status"] == "completed"
    assert op["request_id"] != first_op["request_id"]
    clocked.advance_clock(DAY)  # still before the new version's trigger: once per version
    assert len(_versions(kv, name)) == 2


def test_a_provider_issued_certificate_is_renewed_through_the_simulated_ca(
    clocked: LocalVault, kv: httpx.Client, name: str
) -> None:
    set_issuer(kv, "lifetime-ca", "DigiCert")
    assert create(kv, name, "lifetime-ca").status_code == 202
    clocked.advance_clock(clocked.ca_delay)
    first = pending(kv, name).json()
    assert first["status"] == "completed"
    issued = _current(kv, name)
    clocked.advance_clock(300 * DAY)  # past 80 % of the default 12 months
    renewal = pending(kv, name).json()
    assert renewal["status"] == "inProgress"
    assert renewal["request_id"] != first["request_id"]
    assert renewal["issuer"] == {"name": "lifetime-ca"}
    assert _current(kv, name)["id"] == issued["id"]  # the issued version stays current
    clocked.advance_clock(clocked.ca_delay - 1)
    assert pending(kv, name).json()["status"] == "inProgress"
    clocked.advance_clock(1)
    assert pending(kv, name).json()["status"] == "completed"
    renewed = _current(kv, name)
    assert renewed["id"] != issued["id"]
    assert renewed["x5t"] != issued["x5t"]
    assert [v["attributes"]["enabled"] for v in _versions(kv, name)] == [True, True]


def test_email_contacts_records_a_notification_with_the_contacts(
    clocked: LocalVault, kv: httpx.Client, name: str
) -> None:
    contacts = {"contacts": [{"email": "ops@example.com"}, {"email": "pki@example.com"}]}
    assert kv.put(url("/certificates/contacts"), json=contacts).status_code == 200
    issued = _issued_self(
        kv, name, lifetime_actions=_actions("EmailContacts", days_before_expiry=5)
    )
    moved = clocked.advance_clock(370 * DAY)
    clocked.advance_clock(DAY)
    notes = clocked.notifications(name)
    assert len(notes) == 1
    assert notes[0]["version"] == issued["id"].rsplit("/", 1)[1]
    assert notes[0]["action"] == "EmailContacts"
    assert notes[0]["contacts"] == ["ops@example.com", "pki@example.com"]
    assert moved["now"] - 1 <= notes[0]["at"] <= moved["now"] + 1
    assert len(_versions(kv, name)) == 1
    assert any(n["certificate"] == name for n in clocked.notifications())


def test_a_disabled_certificate_is_not_renewed(
    clocked: LocalVault, kv: httpx.Client, name: str
) -> None:
    _issued_self(kv, name)
    disabled = kv.patch(url(f"/certificates/{name}/"), json={"attributes": {"enabled": False}})
    assert disabled.status_code == 200
    clocked.advance_clock(300 * DAY)
    assert len(_versions(kv, name)) == 1
    assert clocked.notifications(name) == []


def test_the_default_policies_behave_as_key_vault_documents(
    clocked: LocalVault, kv: httpx.Client, name: str
) -> None:
    at_80 = [{"trigger": {"lifetime_percentage": 80}, "action": {"action_type": "AutoRenew"}}]
    issued = _issued_self(kv, name)
    assert issued["policy"]["lifetime_actions"] == at_80
    secret = kv.get(url(f"/secrets/{name}")).json()["value"]
    imported = kv.post(url(f"/certificates/{name}-imp/import"), json={"value": secret})
    assert imported.status_code == 200, imported.text
    assert imported.json()["policy"]["issuer"]["name"] == "Unknown"
    assert imported.json()["policy"]["lifetime_actions"] == [
        {"trigger": {"lifetime_percentage": 80}, "action": {"action_type": "EmailContacts"}}
    ]
    clocked.advance_clock(300 * DAY)
    assert len(_versions(kv, name)) == 2  # Self: renewed
    assert len(_versions(kv, f"{name}-imp")) == 1  # Unknown: never renewed, mailed instead
    assert [n["action"] for n in clocked.notifications(f"{name}-imp")] == ["EmailContacts"]


def test_the_clock_and_fired_actions_survive_a_restart() -> None:
    with tempfile.TemporaryDirectory(prefix="kvcert-clock-") as tmp:
        vault = LocalVault.start(data_dir=Path(tmp))
        try:
            with vault.client() as kv:
                first = _issued_self(kv, "renewed")
                moved = vault.advance_clock(300 * DAY)
                renewed = _current(kv, "renewed")
                assert renewed["id"] != first["id"]
                stats = kv.get("/_kvcert/stats").json()
            assert stats["lifetimeActions"] == {"AutoRenew": 1, "EmailContacts": 0}
            assert stats["total"] == sum(stats["requests"].values())
            vault.kill()
            vault.restart()
            assert vault.clock()["offset"] == moved["offset"]
            assert vault.clock()["now"] >= moved["now"]
            vault.advance_clock(1)
            with vault.client() as kv:
                assert _current(kv, "renewed")["id"] == renewed["id"]
                assert len(_versions(kv, "renewed")) == 2
        finally:
            vault.close()
