"""A scriptable fake vault behind httpx.MockTransport: it challenges unauthenticated requests
like Key Vault, checks the token and api-version, and answers from a per-route script."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from kvcert.keyvault import KeyVaultClient, RetryPolicy, StaticToken, VaultRateLimiter

# ../shared beside the repository (the brief's layout), never one machine's absolute path.
EXAMPLES = Path(__file__).resolve().parents[4] / "shared/reference/keyvault-api/7.5/examples"
VAULT = "https://kv.vault.local:8443"
TOKEN = "s3cret-token-value"
RESOURCE = "https://vault.local:8443"

Answer = httpx.Response | Callable[[httpx.Request], httpx.Response]


def example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / f"{name}-example.json").read_text())
    return data


def error(status: int, code: str, message: str, **headers: str) -> httpx.Response:
    return httpx.Response(
        status,
        json={"error": {"code": code, "message": message}},
        headers={"x-ms-request-id": "req-1", **headers},
    )


@dataclass
class FakeVault:
    """Routes are `"METHOD /path"`; each holds a queue of answers (the last one repeats)."""

    routes: dict[str, list[Answer]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    resource: str = RESOURCE

    def on(self, route: str, *answers: Answer) -> None:
        self.routes[route] = list(answers)

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        assert request.url.params.get("api-version"), "every call carries api-version"
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            assert request.content == b"", "the unauthenticated probe carries no body"
            return httpx.Response(
                401,
                json={"error": {"code": "Unauthorized", "message": "AKV10000: missing token"}},
                headers={
                    "WWW-Authenticate": 'Bearer authorization="https://login.microsoftonline'
                    f'.com/tenant", resource="{self.resource}"'
                },
            )
        route = f"{request.method} {request.url.path}"
        queue = self.routes.get(route)
        if not queue:
            return error(404, "NotFound", f"no route {route}")
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        return answer(request) if callable(answer) else answer

    def authorized(self) -> list[httpx.Request]:
        return [r for r in self.requests if "authorization" in r.headers]


@dataclass
class FakeSleep:
    slept: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)


@pytest.fixture
def vault() -> FakeVault:
    return FakeVault()


@pytest.fixture
def sleep() -> FakeSleep:
    return FakeSleep()


@pytest.fixture
def make_client(vault: FakeVault, sleep: FakeSleep) -> Callable[..., KeyVaultClient]:
    def make(**kwargs: Any) -> KeyVaultClient:
        kwargs.setdefault("retry", RetryPolicy(sleep=sleep, max_total=1000.0))
        kwargs.setdefault("rate_limiter", VaultRateLimiter(sleep=sleep))
        return KeyVaultClient(
            VAULT, StaticToken(TOKEN), transport=httpx.MockTransport(vault.handler), **kwargs
        )

    return make


@pytest.fixture(scope="session")
def leaf_der() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "web.example.com")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(0x0ABC)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(Encoding.DER)
