"""Challenge authentication (DESIGN §3.3) over real HTTPS."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest
from tests.integration.vault.vault_helpers import HOSTNAME, url
from tests.support.vault import LocalVault

AUTHORITY = "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47"


def _anonymous(vault: LocalVault) -> httpx.Client:
    return httpx.Client(base_url=vault.url, verify=vault.ssl_context(), timeout=30)


@pytest.mark.parametrize(
    ("host", "resource"),
    [
        (None, "https://vault.azure.net"),
        (HOSTNAME, "https://vault.test:{port}"),
        ("localhost", "https://vault.azure.net"),
    ],
    ids=[
        "an IP gets Azure's resource",
        "a multi-label name drops its first label",
        "a single label gets Azure's resource",
    ],
)
def test_bodiless_unauthenticated_request_gets_the_challenge(
    vault: LocalVault, host: str | None, resource: str
) -> None:
    headers = {"Host": f"{host}:{vault.port}"} if host else {}
    with _anonymous(vault) as client:
        response = client.post(url("/certificates/x/create"), headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        f'Bearer authorization="{AUTHORITY}", resource="{resource.format(port=vault.port)}"'
    )
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert "retry-after" not in response.headers
    assert response.json() == {
        "error": {
            "code": "Unauthorized",
            "message": "AKV10000: Request is missing a Bearer or PoP token.",
        }
    }


def test_the_challenge_comes_before_any_validation(vault: LocalVault) -> None:
    with _anonymous(vault) as client:
        response = client.post("/certificates/bad_name/create?api-version=0.1", content=b"{")
    assert response.status_code == 401


def test_only_the_configured_token_is_accepted(vault: LocalVault) -> None:
    with _anonymous(vault) as client:
        wrong = client.get(url("/certificates"), headers={"Authorization": "Bearer nope"})
        right = client.get(url("/certificates"), headers=vault.auth_headers())
        management = client.get("/_kvcert/stats", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert "www-authenticate" in wrong.headers
    assert right.status_code == 200
    assert management.status_code == 401


def test_stats_count_key_vault_requests_by_route(kv: httpx.Client, name: str) -> None:
    before = kv.get("/_kvcert/stats").json()["requests"].get("GET /certificates/{name}/pending", 0)
    kv.get(url(f"/certificates/{name}/pending"))
    kv.get(url(f"/certificates/{name}/pending"))
    after = kv.get("/_kvcert/stats").json()
    assert after["requests"]["GET /certificates/{name}/pending"] == before + 2
    assert after["total"] >= 2


def test_throttling_answers_429_with_retry_after_then_recovers(kv: httpx.Client) -> None:
    assert kv.post("/_kvcert/throttle", json={"requests": 1, "retryAfter": 2}).status_code == 200
    throttled = kv.get(url("/certificates"))
    assert throttled.status_code == 429
    assert throttled.headers["retry-after"] == "2"
    assert throttled.json()["error"]["code"] == "Throttled"
    assert kv.get(url("/certificates")).status_code == 200


@pytest.mark.parametrize(
    ("content", "message"),
    [("", "is empty"), (None, "cannot read --token-file")],
    ids=["an empty token file", "a missing token file"],
)
def test_a_token_file_that_gives_no_token_stops_the_vault(
    tmp_path, content: str | None, message: str
) -> None:
    token_file = tmp_path / "token"
    if content is not None:
        token_file.write_text(content)
    command = [sys.executable, "-m", "kvcert.vault", "serve", "--data-dir", str(tmp_path / "d")]
    done = subprocess.run(
        [*command, "--port", "0", "--token-file", str(token_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert message in done.stderr
