"""The production transport (aiohttp under httpx's API) against real sockets on 127.0.0.1: a
small HTTP/1.1 server over TLS, a closed port, a certificate from another CA, a listener that
never completes the TLS handshake, a server that takes the request and never answers, and one
that drops the connection after reading the request. Each failure must map to its Key Vault
error (TLS, connection or timeout, and whether the request may have reached the vault) with
nothing secret in its text; the same tests pass over httpx's own transport."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import pytest

from kvcert.keyvault import KeyVaultClient, RetryPolicy, StaticToken
from kvcert.keyvault import errors as e
from kvcert.keyvault.aiohttp_transport import AiohttpTransport
from kvcert.keyvault.policy import CertificatePolicySpec
from kvcert.vault import tls as vault_tls
from tests.support.vault import free_port

TOKEN = "transport-test-token-value"
PATIENT = httpx.Timeout(10.0)
"""For exchanges that must succeed, even on a loaded machine."""
OPERATION = {"id": "https://x/certificates/web/pending", "status": "inProgress", "request_id": "r1"}


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


Answer = Callable[[Request], Awaitable[tuple[int, dict[str, str], bytes] | None]]
"""What the server does with one request: (status, headers, body), or None to drop the
connection without answering."""


@dataclass
class Server:
    port: int
    requests: list[Request] = field(default_factory=list)
    connections: int = 0

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[vault_tls.TlsFiles, str]:
    """A server certificate for 127.0.0.1 and the CA that signed it; plus another CA's PEM."""
    now = time.time()
    files = vault_tls.ensure(tmp_path_factory.mktemp("tls"), [], now)
    other = vault_tls.ensure(tmp_path_factory.mktemp("other"), [], now)
    return files, other.ca.read_text()


def server_context(files: vault_tls.TlsFiles) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(files.cert, files.key)
    return context


async def vault_answer(request: Request) -> tuple[int, dict[str, str], bytes] | None:
    """Key Vault in brief: a challenge without a token, an operation with one."""
    if request.headers.get("authorization") != f"Bearer {TOKEN}":
        challenge = 'Bearer authorization="https://login.example/t", resource="https://vault.x"'
        return 401, {"WWW-Authenticate": challenge}, b"{}"
    status = 202 if request.method == "POST" else 200
    return status, {"Content-Type": "application/json"}, json.dumps(OPERATION).encode()


@asynccontextmanager
async def serve(files: vault_tls.TlsFiles, answer: Answer) -> AsyncIterator[Server]:
    """An HTTP/1.1 server with keep-alive over TLS on a free port, for the block."""
    handlers: set[asyncio.Task[None]] = set()

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        served.connections += 1
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
                method, target, _ = head[0].split(" ", 2)
                headers = {
                    name.strip().lower(): value.strip()
                    for name, value in (line.split(":", 1) for line in head[1:] if line)
                }
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                request = Request(method, target, headers, body)
                served.requests.append(request)
                answered = await answer(request)
                if answered is None:
                    return  # drop the connection, the request unanswered
                status, extra, payload = answered
                lines = [f"HTTP/1.1 {status} Whatever", f"Content-Length: {len(payload)}"]
                lines += [f"{name}: {value}" for name, value in extra.items()]
                writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(connection, "127.0.0.1", 0, ssl=server_context(files))
    served = Server(port=server.sockets[0].getsockname()[1])
    try:
        yield served
    finally:
        server.close()
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()


def client(
    url: str,
    ca_pem: str,
    *,
    retry: RetryPolicy | None = None,
    timeout: httpx.Timeout = PATIENT,
) -> KeyVaultClient:
    """The operator's client trusting `ca_pem` alone (the system roots when empty), with no
    retries unless told otherwise."""
    return KeyVaultClient(
        url,
        StaticToken(TOKEN),
        ca_bundle_pem=ca_pem,
        verify_challenge_resource=False,
        retry=retry or RetryPolicy(max_attempts=1),
        timeout=timeout,
    )


def assert_clean(error: BaseException) -> None:
    """No token in what could reach a status, an event or a log."""
    assert TOKEN not in str(error)
    assert TOKEN not in repr(error)


async def test_a_call_goes_over_tls_with_the_headers_and_one_kept_alive_connection(
    pki: tuple[vault_tls.TlsFiles, str],
) -> None:
    files, _ = pki
    async with serve(files, vault_answer) as server, client(server.url, files.ca.read_text()) as kv:
        first = await kv.get_pending_operation("web")
        await kv.get_pending_operation("web", request_id="r1")
        await kv.create_certificate("web", CertificatePolicySpec(subject="CN=web"))
    assert first.request_id == "r1"
    probe, read, read_again, create = server.requests
    assert (probe.method, probe.target) == ("GET", "/certificates/web/pending?api-version=7.5")
    assert "authorization" not in probe.headers
    assert read.headers["authorization"] == f"Bearer {TOKEN}"
    assert read.headers["accept"] == "application/json"
    assert read.headers["user-agent"] == "kvcert/0.1"
    assert read_again.target == "/certificates/web/pending?request_id=r1&api-version=7.5"
    assert create.method == "POST"
    assert create.headers["content-type"] == "application/json"
    assert json.loads(create.body)["policy"]["x509_props"]["subject"] == "CN=web"
    assert server.connections == 1


async def test_a_closed_port_is_a_connection_error_before_anything_was_sent() -> None:
    url = f"https://127.0.0.1:{free_port()}"
    async with client(url, "") as kv:
        with pytest.raises(e.KeyVaultConnectionError) as caught:
            await kv.get_pending_operation("web")
    assert caught.value.request_sent is False
    assert_clean(caught.value)


async def test_a_certificate_from_another_ca_is_a_tls_error(
    pki: tuple[vault_tls.TlsFiles, str],
) -> None:
    files, other_ca = pki
    async with serve(files, vault_answer) as server, client(server.url, other_ca) as kv:
        with pytest.raises(e.KeyVaultTLSError) as caught:
            await kv.get_pending_operation("web")
    assert caught.value.request_sent is False
    assert server.requests == []
    assert_clean(caught.value)


async def test_a_listener_that_never_completes_the_handshake_is_a_connect_timeout() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()  # the kernel accepts the TCP connection; nobody speaks TLS
        url = f"https://127.0.0.1:{listener.getsockname()[1]}"
        async with client(url, "", timeout=httpx.Timeout(10.0, connect=0.3)) as kv:
            with pytest.raises(e.KeyVaultTimeout) as caught:
                await kv.get_pending_operation("web")
    assert caught.value.request_sent is False
    assert_clean(caught.value)


async def test_a_server_that_never_answers_is_a_timeout_after_the_request_was_sent(
    pki: tuple[vault_tls.TlsFiles, str],
) -> None:
    files, _ = pki
    never = asyncio.Event()

    async def silent(request: Request) -> tuple[int, dict[str, str], bytes] | None:
        if "authorization" not in request.headers:
            return await vault_answer(request)
        await never.wait()
        return None

    patient_connect = httpx.Timeout(1.0, connect=10.0)  # the probe's answer comes at once
    async with (
        serve(files, silent) as server,
        client(server.url, files.ca.read_text(), timeout=patient_connect) as kv,
    ):
        with pytest.raises(e.KeyVaultTimeout) as caught:
            await kv.get_pending_operation("web")
    assert caught.value.request_sent is True
    assert len(server.requests) == 2
    assert_clean(caught.value)


async def test_a_create_whose_connection_drops_after_sending_is_not_retried(
    pki: tuple[vault_tls.TlsFiles, str],
) -> None:
    files, _ = pki

    async def drop_creates(request: Request) -> tuple[int, dict[str, str], bytes] | None:
        if request.method == "POST" and "authorization" in request.headers:
            return None
        return await vault_answer(request)

    async with serve(files, drop_creates) as server:
        kv = client(server.url, files.ca.read_text(), retry=RetryPolicy(max_attempts=5))
        async with kv:
            with pytest.raises(e.KeyVaultConnectionError) as caught:
                await kv.create_certificate("web", CertificatePolicySpec(subject="CN=web"))
    assert caught.value.request_sent is True
    creates = [r for r in server.requests if r.method == "POST" and "authorization" in r.headers]
    assert len(creates) == 1, "the vault may have acted: one create, never two"
    assert_clean(caught.value)


async def test_a_closed_client_refuses_new_calls(pki: tuple[vault_tls.TlsFiles, str]) -> None:
    files, _ = pki
    async with serve(files, vault_answer) as server:
        kv = client(server.url, files.ca.read_text())
        await kv.get_pending_operation("web")
        await kv.close()
        sent = len(server.requests)
        with pytest.raises(e.ClientClosed, match="closed") as caught:
            await kv.get_pending_operation("web")
        # A Key Vault error the round reports and retries softly (the next round gets the
        # client that replaced this one), never an exception that escapes a reconcile.
        assert caught.value.request_sent is False
        assert len(server.requests) == sent  # nothing sent, not retried in place
        await kv.close()  # twice is fine


@pytest.mark.parametrize(
    ("environment", "url", "proxy"),
    [
        pytest.param({}, "https://kv.vault.azure.net", None, id="no proxy variables, no proxy"),
        pytest.param(
            {"HTTPS_PROXY": "http://proxy:3128"},
            "https://kv.vault.azure.net",
            "http://proxy:3128",
            id="HTTPS_PROXY is used for https",
        ),
        pytest.param(
            {"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": ".vault.azure.net"},
            "https://kv.vault.azure.net",
            None,
            id="NO_PROXY bypasses the proxy for its domains",
        ),
        pytest.param(
            {"HTTP_PROXY": "http://proxy:3128"},
            "https://kv.vault.azure.net",
            None,
            id="HTTP_PROXY alone does not apply to https",
        ),
    ],
)
def test_the_proxy_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], url: str, proxy: str | None
) -> None:
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    transport = AiohttpTransport(ssl.create_default_context(), max_connections=1)
    assert transport._proxy(httpx.URL(url)) == proxy
    untrusting = AiohttpTransport(ssl.create_default_context(), max_connections=1, trust_env=False)
    assert untrusting._proxy(httpx.URL(url)) is None
