"""The bearer challenge: probe without a token, learn the audience, then authorise."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
import pytest

from kvcert.keyvault import (
    CertificatePolicySpec,
    KeyVaultClient,
    RetryPolicy,
    StaticToken,
    VaultRateLimiter,
)
from kvcert.keyvault import errors as e
from kvcert.keyvault.credentials import (
    Challenge,
    challenge_matches_vault,
    client_secret,
    managed_identity,
    parse_challenge,
    workload_identity,
)

from .conftest import RESOURCE, TOKEN, VAULT, FakeSleep, FakeVault

OPERATION = {"status": "inProgress", "request_id": "r1"}


@dataclass
class RecordingToken:
    scopes: list[str] = field(default_factory=list)

    async def get_token(self, scope: str) -> str:
        self.scopes.append(scope)
        return TOKEN

    async def close(self) -> None:
        return None


def client_for(
    vault: FakeVault, credential: RecordingToken, url: str = VAULT, **kwargs: object
) -> KeyVaultClient:
    sleep = FakeSleep()
    return KeyVaultClient(
        url,
        credential,
        transport=httpx.MockTransport(vault.handler),
        retry=RetryPolicy(sleep=sleep),
        rate_limiter=VaultRateLimiter(sleep=sleep),
        **kwargs,  # type: ignore[arg-type]
    )


async def test_first_request_probes_then_sends_with_the_challenged_scope(vault: FakeVault) -> None:
    vault.on(
        "POST /certificates/web/pending/merge",
        httpx.Response(201, json={"id": f"{VAULT}/certificates/web/v1"}),
    )
    vault.on("GET /certificates/web/pending", httpx.Response(200, json=OPERATION))
    credential = RecordingToken()
    async with client_for(vault, credential) as client:
        await client.merge_certificate("web", [b"\x30\x00"])
        await client.get_pending_operation("web")
    probe, merge, poll = vault.requests
    assert "authorization" not in probe.headers
    assert probe.content == b""
    assert probe.headers["content-length"] == "0"
    assert merge.headers["authorization"] == f"Bearer {TOKEN}"
    assert merge.content != b""
    assert poll.headers["authorization"] == f"Bearer {TOKEN}", "the scope is learnt once"
    assert credential.scopes == [f"{RESOURCE}/.default", f"{RESOURCE}/.default"]


async def test_a_challenge_for_a_foreign_audience_gets_no_token(vault: FakeVault) -> None:
    vault.resource = "https://vault.azure.net"
    credential = RecordingToken()
    async with client_for(vault, credential) as client:
        with pytest.raises(e.Unauthorized, match="ChallengeResourceMismatch"):
            await client.get_pending_operation("web")
    assert credential.scopes == []
    assert len(vault.requests) == 1


async def test_verification_can_be_turned_off_for_an_ip_address(vault: FakeVault) -> None:
    vault.resource = "https://vault.azure.net"
    vault.on("GET /certificates/web/pending", httpx.Response(200, json=OPERATION))
    credential = RecordingToken()
    async with client_for(
        vault, credential, url="https://127.0.0.1:8443", verify_challenge_resource=False
    ) as client:
        poll = await client.get_pending_operation("web")
    assert poll.request_id == "r1"
    assert credential.scopes == ["https://vault.azure.net/.default"]


async def test_a_401_without_a_challenge_is_unauthorized() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": {"code": "Unauthorized", "message": "no"}})

    client = KeyVaultClient(VAULT, StaticToken(TOKEN), transport=httpx.MockTransport(handler))
    async with client:
        with pytest.raises(e.Unauthorized):
            await client.get_certificate("web")


async def test_a_rejected_token_is_unauthorized_and_not_retried() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(
            401,
            json={"error": {"code": "Unauthorized", "message": "AKV10032: Invalid issuer."}},
            headers={"WWW-Authenticate": f'Bearer resource="{RESOURCE}"'},
        )

    client = KeyVaultClient(VAULT, StaticToken("wrong"), transport=httpx.MockTransport(handler))
    async with client:
        with pytest.raises(e.Unauthorized, match="AKV10032"):
            await client.get_certificate("web")
    assert len(calls) == 2  # the probe and one authorised attempt


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            'Bearer authorization="https://login.microsoftonline.com/t1", '
            'resource="https://vault.azure.net"',
            Challenge(
                "https://vault.azure.net",
                "https://vault.azure.net/.default",
                "https://login.microsoftonline.com/t1",
            ),
        ),
        (
            'Bearer authorization_uri="https://login.x/t", scope="https://vault.azure.cn/.default"',
            Challenge(
                "https://vault.azure.cn", "https://vault.azure.cn/.default", "https://login.x/t"
            ),
        ),
        (
            'Bearer resource="https://vault.local:8443/"',
            Challenge("https://vault.local:8443", "https://vault.local:8443/.default"),
        ),
        ('Basic realm="x"', None),
        ("Bearer", None),
        (None, None),
    ],
)
def test_parse_challenge(header: str | None, expected: Challenge | None) -> None:
    assert parse_challenge(header) == expected


@pytest.mark.parametrize(
    ("vault_url", "resource", "ok"),
    [
        ("https://kv.vault.azure.net", "https://vault.azure.net", True),
        ("https://kv.vault.local:8443", "https://vault.local:8443", True),
        ("https://kv.vault.local:443", "https://vault.local", True),
        ("https://kv.vault.local:8443", "https://vault.local", False),
        ("https://evil.example", "https://vault.azure.net", False),
        ("https://vault.azure.net", "https://vault.azure.net", False),
        ("https://kvvault.azure.net", "https://vault.azure.net", False),
        ("https://127.0.0.1:8443", "https://vault.azure.net", False),
    ],
)
def test_challenge_matches_vault(vault_url: str, resource: str, ok: bool) -> None:
    challenge = Challenge(resource, f"{resource}/.default")
    assert challenge_matches_vault(vault_url, challenge) is ok


async def test_static_token_hides_its_value() -> None:
    token = StaticToken(" abc ")
    assert await token.get_token("any") == "abc"
    assert "abc" not in repr(token)
    with pytest.raises(ValueError, match="empty"):
        StaticToken("  ")


async def test_azure_identity_factories_build_and_close(tmp_path: object) -> None:
    credentials = [
        workload_identity(tenant_id="t", client_id="c", token_file_path="/nonexistent/token"),
        managed_identity(client_id="c"),
        client_secret(tenant_id="t", client_id="c", secret="hunter2"),
    ]
    for credential in credentials:
        assert "hunter2" not in repr(credential)
        await credential.close()


async def test_a_failing_credential_is_credential_unavailable(vault: FakeVault) -> None:
    class Broken(RecordingToken):
        async def get_token(self, scope: str) -> str:
            raise RuntimeError("AADSTS700016: no federation for Bearer eyJabc.def.ghi")

    async with client_for(vault, Broken()) as client:
        with pytest.raises(e.CredentialUnavailable, match="AADSTS700016") as caught:
            await client.get_certificate("web")
    assert "eyJabc" not in str(caught.value)
    assert len(vault.requests) == 1, "only the probe went out"


async def test_a_busy_vault_during_the_probe_is_retried_not_mistaken_for_no_auth(
    vault: FakeVault,
) -> None:
    answers = iter([httpx.Response(503), None, None])

    def handler(request: httpx.Request) -> httpx.Response:
        answer = next(answers)
        return answer if answer is not None else vault.handler(request)

    vault.on("POST /certificates/web/create", httpx.Response(202, json=OPERATION))
    sleep = FakeSleep()
    client = KeyVaultClient(
        VAULT,
        StaticToken(TOKEN),
        transport=httpx.MockTransport(handler),
        retry=RetryPolicy(sleep=sleep),
        rate_limiter=VaultRateLimiter(sleep=sleep),
    )
    async with client:
        observed = await client.create_certificate("web", CertificatePolicySpec(subject="CN=web"))
    assert observed.request_id == "r1"
    assert [bool(r.content) for r in vault.requests] == [False, True]
    assert len(sleep.slept) == 1
