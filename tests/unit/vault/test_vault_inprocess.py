"""The vault app in-process (httpx.ASGITransport) with an injected clock: no ticker, no sleeps.

Time only moves when a test says so, which shows that outcomes are evaluated lazily on reads.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from kvcert.vault.app import create_app
from kvcert.vault.auth import challenge_resource
from kvcert.vault.profiles import DOCUMENTED, SERVICE, Profile
from kvcert.vault.service import VaultService
from kvcert.vault.store import Store

API = "?api-version=7.6"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=[DOCUMENTED, SERVICE], ids=lambda p: p.name)
def profile(request: pytest.FixtureRequest) -> Profile:
    param: Profile = request.param
    return param


@pytest.fixture
async def client(
    tmp_path: Path, clock: FakeClock, profile: Profile
) -> AsyncIterator[httpx.AsyncClient]:
    store = Store(tmp_path / "vault.sqlite3")
    service = VaultService(store, profile, clock=clock, ca_delay=20)
    app = create_app(service, token=None, tick_interval=None)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="https://kv.vault.test",
        headers={"Authorization": "Bearer anything"},
    ) as c:
        yield c
    store.close()


async def _digicert_create(client: httpx.AsyncClient, name: str) -> httpx.Response:
    await client.put(f"/certificates/issuers/dc{API}", json={"provider": "DigiCert"})
    return await client.post(
        f"/certificates/{name}/create{API}",
        json={
            "policy": {
                "x509_props": {"subject": "CN=a"},
                "issuer": {"name": "dc"},
                "key_props": {"kty": "EC"},
            }
        },
    )


async def test_the_simulated_ca_answers_after_its_delay_on_the_next_read(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    assert (await _digicert_create(client, "web")).status_code == 202
    clock.advance(19.5)
    assert (await client.get(f"/certificates/web/pending{API}")).json()["status"] == "inProgress"
    clock.advance(0.5)
    body = (await client.get(f"/certificates/web/pending{API}")).json()
    assert body["status"] == "completed"
    assert body["target"].startswith("https://kv.vault.test/certificates/web")
    cert = (await client.get(f"/certificates/web/{API}")).json()
    assert cert["x5t"]
    assert cert["attributes"]["enabled"] is True
    ca = (await client.get("/_kvcert/ca")).text
    assert ca.startswith("-----BEGIN CERTIFICATE-----")


async def test_a_cancellation_takes_effect_within_a_second(
    client: httpx.AsyncClient, clock: FakeClock, profile: Profile
) -> None:
    await _digicert_create(client, "web")
    await client.patch(f"/certificates/web/pending{API}", json={"cancellation_requested": True})
    clock.advance(0.4)
    assert (await client.get(f"/certificates/web/pending{API}")).json()["status"] == "inProgress"
    clock.advance(0.6)
    status = (await client.get(f"/certificates/web/pending{API}")).json()["status"]
    assert status == profile.cancelled_status


async def test_management_delay_and_fail_are_deterministic(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await _digicert_create(client, "web")
    delayed = await client.post("/_kvcert/certificates/web/pending/delay", json={"seconds": 100})
    assert delayed.status_code == 200
    clock.advance(50)
    assert (await client.get(f"/certificates/web/pending{API}")).json()["status"] == "inProgress"
    failed = await client.post(
        "/_kvcert/certificates/web/pending/fail", json={"code": "Rejected", "message": "No."}
    )
    assert failed.json()["error"] == {"code": "Rejected", "message": "No."}
    clock.advance(100)
    assert (await client.get(f"/certificates/web/pending{API}")).json()["status"] == "failed"
    again = await client.post("/_kvcert/certificates/web/pending/complete")
    assert again.status_code == 409


async def test_a_wrong_request_id_in_management_is_404(client: httpx.AsyncClient) -> None:
    await _digicert_create(client, "web")
    response = await client.post(
        "/_kvcert/certificates/web/pending/complete?request_id=" + "0" * 32
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "PendingCertificateNotFound"


async def test_without_a_configured_token_any_bearer_token_is_accepted(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(f"/certificates{API}", headers={"Authorization": "Bearer x"})
    assert response.status_code == 200
    anonymous = await client.get(f"/certificates{API}", headers={"Authorization": ""})
    assert anonymous.status_code == 401


async def test_listing_pages_with_next_link_and_maxresults(client: httpx.AsyncClient) -> None:
    for i in range(5):
        await client.post(
            f"/certificates/n{i}/create{API}",
            json={
                "policy": {
                    "x509_props": {"subject": "CN=a"},
                    "issuer": {"name": "Self"},
                    "key_props": {"kty": "EC"},
                }
            },
        )
    names: list[str] = []
    link: str | None = f"/certificates{API}&maxresults=2"
    pages = 0
    while link:
        body = (await client.get(link)).json()
        names += [item["id"].rsplit("/", 1)[1] for item in body["value"]]
        assert len(body["value"]) <= 2
        link = body["nextLink"]
        pages += 1
    assert names == [f"n{i}" for i in range(5)]
    assert pages == 3


async def test_pem_secret_of_an_exportable_certificate(client: httpx.AsyncClient) -> None:
    await client.post(
        f"/certificates/pem/create{API}",
        json={
            "policy": {
                "x509_props": {"subject": "CN=a"},
                "issuer": {"name": "Self"},
                "key_props": {"kty": "RSA", "key_size": 2048},
                "secret_props": {"contentType": "application/x-pem-file"},
            }
        },
    )
    secret = (await client.get(f"/secrets/pem{API}")).json()
    assert secret["contentType"] == "application/x-pem-file"
    assert "-----BEGIN PRIVATE KEY-----" in secret["value"]
    assert "-----BEGIN CERTIFICATE-----" in secret["value"]


async def test_non_exportable_keys_are_not_served(client: httpx.AsyncClient) -> None:
    await client.post(
        f"/certificates/ne/create{API}",
        json={
            "policy": {
                "x509_props": {"subject": "CN=a"},
                "issuer": {"name": "Self"},
                "key_props": {"kty": "EC", "exportable": False},
            }
        },
    )
    response = await client.get(f"/secrets/ne{API}")
    assert response.status_code == 403


async def test_a_soft_deleted_name_cannot_be_reused(client: httpx.AsyncClient) -> None:
    await client.post(
        f"/certificates/del/create{API}",
        json={
            "policy": {
                "x509_props": {"subject": "CN=a"},
                "issuer": {"name": "Self"},
                "key_props": {"kty": "EC"},
            }
        },
    )
    assert (await client.delete(f"/certificates/del{API}")).status_code == 200
    response = await client.post(
        f"/certificates/del/create{API}",
        json={"policy": {"x509_props": {"subject": "CN=a"}, "issuer": {"name": "Self"}}},
    )
    assert response.status_code == 409
    assert response.json()["error"]["innererror"]["code"] == "ObjectIsDeletedButRecoverable"
    assert (await client.delete(f"/deletedcertificates/del{API}")).status_code == 204


@pytest.mark.parametrize(
    ("host", "resource"),
    [
        ("kv.vault.local:8443", "https://vault.local:8443"),
        ("kv.vault.local:443", "https://vault.local"),
        ("kv.vault.local", "https://vault.local"),
        ("myvault.vault.azure.net", "https://vault.azure.net"),
        ("127.0.0.1:8443", "https://vault.azure.net"),
        ("[::1]:8443", "https://vault.azure.net"),
        ("localhost:8443", "https://vault.azure.net"),
    ],
    ids=[
        "a name with a port keeps the port",
        "port 443 is dropped",
        "a name without a port",
        "the real service's shape",
        "an IPv4 address",
        "an IPv6 address",
        "a single label",
    ],
)
def test_challenge_resource(host: str, resource: str) -> None:
    assert challenge_resource(host) == resource
