"""kvcert.keyvault.observe: request paths -> stable operation names, and the observer calls."""

from __future__ import annotations

import httpx
import pytest

from kvcert.keyvault import KeyVaultClient, StaticToken
from kvcert.keyvault.observe import OTHER_ROUTE, RequestRecord, route, vault_host


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", "/certificates/web/create", "POST /certificates/{name}/create"),
        ("GET", "/certificates/web/pending", "GET /certificates/{name}/pending"),
        ("PATCH", "/certificates/pending/pending", "PATCH /certificates/{name}/pending"),
        ("POST", "/certificates/web/pending/merge", "POST /certificates/{name}/pending/merge"),
        ("POST", "/certificates/web/import", "POST /certificates/{name}/import"),
        ("PATCH", "/certificates/web/policy", "PATCH /certificates/{name}/policy"),
        ("PATCH", "/certificates/web/", "PATCH /certificates/{name}/"),
        ("GET", "/certificates/web/0123abcd", "GET /certificates/{name}/{version}"),
        ("DELETE", "/certificates/web", "DELETE /certificates/{name}"),
        ("GET", "/secrets/web/0123abcd", "GET /secrets/{name}/{version}"),
        ("POST", "/deletedcertificates/web/recover", "POST /deletedcertificates/{name}/recover"),
        ("PUT", "/certificates/issuers/digicert", "PUT /certificates/issuers/{name}"),
        ("GET", "/keys/web", OTHER_ROUTE),
        ("GET", "/certificates/web/a/b/c", OTHER_ROUTE),
    ],
    ids=str,
)
def test_route_names_no_object(method: str, path: str, expected: str) -> None:
    assert route(method, path) == expected


def test_vault_host_is_the_host_alone() -> None:
    assert vault_host("https://My.vault.azure.net:443") == "my.vault.azure.net"


async def test_every_exchange_is_observed_with_its_code_and_transport_failures_as_error() -> None:
    seen: list[RequestRecord] = []
    answers = iter([httpx.Response(429, headers={"retry-after": "0"}), httpx.Response(404)])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/gone/pending"):
            raise httpx.ConnectError("refused")
        return next(answers)

    client = KeyVaultClient(
        "https://kv.vault.azure.net",
        StaticToken("t"),
        transport=httpx.MockTransport(handler),
        verify_challenge_resource=False,
        observer=seen.append,
    )
    async with client:
        with pytest.raises(Exception):  # noqa: B017, PT011 - which error is client.py's business
            await client.get_certificate("web")
        with pytest.raises(Exception):  # noqa: B017, PT011
            await client.get_pending_operation("gone")
    assert seen, "no exchange observed"
    assert {r.host for r in seen} == {"kv.vault.azure.net"}
    ops = {(r.operation, r.code) for r in seen}
    assert ("GET /certificates/{name}/", "429") in ops
    assert ("GET /certificates/{name}/pending", "error") in ops
    assert all(r.seconds >= 0 for r in seen)
