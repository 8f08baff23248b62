"""A version's attributes on the secret it guards, in-process with a clock the test moves.

`enabled: false` forbids the secret (403 SecretDisabled); `nbf`/`exp` do not: Key Vault serves
a secret's value before its not-before and after its expiry (its secrets documentation, and a
live GET of an expired secret answering 200 in Azure/AzureKeyVault issue 19).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kvcert.vault.app import create_app
from kvcert.vault.profiles import DOCUMENTED, SERVICE, Profile
from kvcert.vault.service import VaultService
from kvcert.vault.store import Store

API = "?api-version=7.6"
DAY = 86400.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=[DOCUMENTED, SERVICE], ids=lambda p: p.name)
async def client(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[httpx.AsyncClient]:
    profile: Profile = request.param
    store = Store(tmp_path / "vault.sqlite3")
    service = VaultService(store, profile, clock=clock, ca_delay=20)
    app = create_app(service, token=None, tick_interval=None)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="https://kv.vault.test",
        headers={"Authorization": "Bearer anything"},
    ) as c:
        yield c
    store.close()


async def _issue(client: httpx.AsyncClient, name: str) -> dict[str, Any]:
    """A Self certificate valid for 12 months from the clock's now; its bundle."""
    response = await client.post(
        f"/certificates/{name}/create{API}",
        json={
            "policy": {
                "x509_props": {"subject": "CN=a", "validity_months": 12},
                "issuer": {"name": "Self"},
                "key_props": {"kty": "EC"},
            }
        },
    )
    assert response.status_code == 202, response.text
    body: dict[str, Any] = (await client.get(f"/certificates/{name}/{API}")).json()
    assert body["attributes"]["enabled"] is True
    return body


@pytest.mark.parametrize(
    "offset",
    [pytest.param(-2 * DAY, id="not yet valid"), pytest.param(400 * DAY, id="expired")],
)
async def test_the_secret_is_served_outside_its_validity_window(
    client: httpx.AsyncClient, clock: FakeClock, offset: float
) -> None:
    bundle = await _issue(client, "web")
    clock.now += offset
    assert not bundle["attributes"]["nbf"] <= clock.now <= bundle["attributes"]["exp"]
    response = await client.get(f"/secrets/web{API}")
    assert response.status_code == 200, response.text
    assert response.json()["attributes"]["exp"] == bundle["attributes"]["exp"]
    assert (await client.get(f"/certificates/web/{API}")).status_code == 200


async def test_disabling_forbids_the_secret_and_enabling_restores_it(
    client: httpx.AsyncClient,
) -> None:
    version = (await _issue(client, "web"))["id"].rsplit("/", 1)[1]
    off = await client.patch(
        f"/certificates/web/{version}{API}", json={"attributes": {"enabled": False}}
    )
    assert off.status_code == 200
    response = await client.get(f"/secrets/web/{version}{API}")
    assert response.status_code == 403
    assert response.json() == {
        "error": {
            "code": "Forbidden",
            "message": "Operation get is not allowed on a disabled secret.",
            "innererror": {"code": "SecretDisabled"},
        }
    }
    on = await client.patch(
        f"/certificates/web/{version}{API}", json={"attributes": {"enabled": True}}
    )
    assert on.status_code == 200
    assert (await client.get(f"/secrets/web/{version}{API}")).status_code == 200


async def test_a_disabled_non_exportable_version_answers_disabled_first(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        f"/certificates/ne/create{API}",
        json={
            "policy": {
                "x509_props": {"subject": "CN=a"},
                "issuer": {"name": "Self"},
                "key_props": {"kty": "EC", "exportable": False},
            }
        },
    )
    assert response.status_code == 202
    assert (await client.get(f"/secrets/ne{API}")).json()["error"]["code"] == "Forbidden"
    await client.patch(f"/certificates/ne/{API}", json={"attributes": {"enabled": False}})
    error = (await client.get(f"/secrets/ne{API}")).json()["error"]
    assert error["innererror"] == {"code": "SecretDisabled"}
