"""One vault's HTTP plumbing: TLS, the bearer challenge, rate limits, request slots (reads
before creates), retries, error mapping and the single log line per request. client.py stays a
list of calls on top of it.

Requests and responses are httpx's; the transport is aiohttp's connection pool behind httpx's
transport interface (aiohttp_transport.py), or whatever transport the caller passes (tests pass
httpx.ASGITransport or httpx.MockTransport). Per request, nothing is merged or parsed twice:
the URL is built once per call, the constant headers once per process (issue #17).

The first request to a vault goes out with no token and no body, as Microsoft's SDK does: the
401 challenge names the token's audience, and no token leaves the process before the vault has
proved (by its host) that it belongs to that audience.
"""

from __future__ import annotations

import json
import logging
import ssl
import time
from collections.abc import Mapping
from typing import TypeVar
from urllib.parse import urlencode, urlsplit

import httpx
from pydantic import BaseModel, ValidationError

from kvcert.keyvault import wire
from kvcert.keyvault.aiohttp_transport import AiohttpTransport
from kvcert.keyvault.credentials import (
    Challenge,
    VaultCredential,
    challenge_matches_vault,
    parse_challenge,
)
from kvcert.keyvault.errors import (
    ClientClosed,
    CredentialUnavailable,
    InsecureVaultURL,
    KeyVaultConnectionError,
    KeyVaultError,
    KeyVaultTimeout,
    KeyVaultTLSError,
    KeyVaultTransportError,
    Unauthorized,
    UnexpectedResponse,
    error_class,
    scrub,
)
from kvcert.keyvault.observe import (
    TRANSPORT_ERROR,
    RequestObserver,
    RequestRecord,
    route,
    vault_host,
)
from kvcert.keyvault.retry import RetryPolicy, VaultRateLimiter, parse_retry_after
from kvcert.keyvault.slots import PrioritySlots

log = logging.getLogger("kvcert.keyvault")

M = TypeVar("M", bound=BaseModel)
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0, pool=None)
MAX_IN_FLIGHT = 16
"""Requests in flight to one vault at a time, and the connection pool's size. Hundreds of
Certificates reconciling at once queue here, without a deadline, instead of in the connection
pool, where a wait counts against a pool timeout and turns load into errors (and errors into
retries)."""
FIRST = 0
"""Slot priority of every request but creates and imports: reads that finish a certificate
(GET pending, certificate, secret) overtake the creates queued before them (issue #17)."""
LAST = 1
"""Slot priority of creates and imports (`create=True`)."""
USER_AGENT = "kvcert/0.1"
HEADERS = (
    ("Accept", "application/json"),
    ("Accept-Encoding", "gzip, deflate"),  # decoded by httpx.Response
    ("Connection", "keep-alive"),
    ("User-Agent", USER_AGENT),
)
"""What every request carries (httpx.AsyncClient's defaults, which this session used to add)."""


def make_ssl_context(ca_bundle_pem: str | None) -> ssl.SSLContext:
    """Trust only the given private root when there is one, else the system's roots. Loading
    the system store reads files: call it off the event loop (KeyVaultClient.open does)."""
    if ca_bundle_pem and ca_bundle_pem.strip():
        return ssl.create_default_context(cadata=ca_bundle_pem)
    return ssl.create_default_context()


def check_vault_url(vault_url: str) -> str:
    split = urlsplit(vault_url.strip())
    if split.scheme.lower() != "https":
        raise InsecureVaultURL(f"vault URL must use https, got {split.scheme or 'no'} scheme")
    if not split.hostname:
        raise InsecureVaultURL("vault URL has no host")
    if split.query or split.fragment or split.path.strip("/"):
        raise InsecureVaultURL("vault URL must be just https://host[:port]")
    return f"https://{split.netloc}"


def parse_model(model: type[M], response: httpx.Response) -> M:
    """Validate a body without ever echoing it: pydantic's messages quote the input, which may
    be a secret, so only field locations and error kinds are kept."""
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        where = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['type']}"
            for e in exc.errors(include_input=False, include_url=False)[:5]
        )
        raise UnexpectedResponse(f"{model.__name__} body did not validate ({where})") from None


def error_from_response(response: httpx.Response) -> KeyVaultError:
    status = response.status_code
    path = response.request.url.path
    if status < 400:
        return UnexpectedResponse(f"{response.request.method} {path}: unexpected status {status}")
    code, message, inner = "", "", None
    try:
        body = wire.ErrorBody.model_validate_json(response.content)
    except ValidationError:
        message = response.text
    else:
        if body.error is not None:
            code = body.error.code or ""
            message = body.error.message or ""
            inner = body.error.innererror.code if body.error.innererror else None
    cls = error_class(status, code, inner_code=inner, message=message)
    return cls(
        status,
        code,
        message,
        request_id=response.headers.get("x-ms-request-id"),
        retry_after=parse_retry_after(response.headers.get("retry-after")),
        inner_code=inner,
        known=_sent_secrets(response.request),
    )


def _sent_secrets(request: httpx.Request) -> tuple[str, ...]:
    """The secrets a request carried, which an error answer quoting them must not show: its
    bearer token, an import's password (`pwd`) and an issuer's (`credentials.pwd`, issue #19).
    Never kept beyond the error's making."""
    found = []
    authorization = request.headers.get("authorization", "")
    if " " in authorization:
        found.append(authorization.split(" ", 1)[1])
    if b'"pwd"' in request.content:
        try:
            sent = json.loads(request.content)
            password = sent.get("pwd") or (sent.get("credentials") or {}).get("pwd")
        except (ValueError, AttributeError):
            password = None
        if isinstance(password, str) and password:
            found.append(password)
    return tuple(found)


def _transport_error(exc: httpx.TransportError) -> KeyVaultTransportError:
    """The Key Vault error for a request that got no HTTP answer. Timeouts are tested first: a
    TLS stream waiting for bytes leaves an SSLWantReadError in the timeout's context, and a
    timeout is worth a retry where a TLS failure is not."""
    text = scrub(str(exc) or type(exc).__name__)
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
        return KeyVaultTimeout(f"timed out connecting: {text}", request_sent=False)
    if isinstance(exc, httpx.TimeoutException):
        return KeyVaultTimeout(f"timed out: {text}")
    if _tls_failed(exc):
        return KeyVaultTLSError(f"TLS failed: {text}", request_sent=False)
    if isinstance(exc, httpx.ConnectError):
        return KeyVaultConnectionError(f"cannot connect: {text}", request_sent=False)
    return KeyVaultConnectionError(f"connection failed: {text}")


def _tls_failed(exc: BaseException) -> bool:
    """Whether a TLS failure (verification, handshake, alert) is in `exc`'s chain of causes.
    SSLWantReadError and SSLWantWriteError are not failures: non-blocking TLS raises them
    whenever it waits for the network."""
    cause: BaseException | None = exc
    for _ in range(32):  # a chain is short; a cycle must not hang the caller
        if cause is None:
            return False
        if isinstance(cause, ssl.SSLError) and not isinstance(
            cause, ssl.SSLWantReadError | ssl.SSLWantWriteError
        ):
            return True
        if "CERTIFICATE_VERIFY_FAILED" in str(cause):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


class VaultSession:
    def __init__(
        self,
        vault_url: str,
        credential: VaultCredential,
        *,
        api_version: str,
        ssl_context: ssl.SSLContext | None,
        transport: httpx.AsyncBaseTransport | None,
        timeout: httpx.Timeout | float,
        retry: RetryPolicy,
        rate_limiter: VaultRateLimiter,
        verify_challenge_resource: bool,
        observer: RequestObserver | None = None,
    ) -> None:
        self.vault_url = check_vault_url(vault_url)
        self._host = vault_host(self.vault_url)
        self._observer = observer
        self.api_version = api_version
        self._credential = credential
        self._retry = retry
        self._limiter = rate_limiter
        self._verify_resource = verify_challenge_resource
        self._scope: str | None = None
        self._in_flight = PrioritySlots(MAX_IN_FLIGHT)
        if transport is None:
            transport = AiohttpTransport(
                ssl_context if ssl_context is not None else make_ssl_context(None),
                max_connections=MAX_IN_FLIGHT,
            )
        # The transport is called directly, not through httpx.AsyncClient: its send() spent a
        # tenth of the client's CPU on merging and on a cookie jar Key Vault has no use for.
        self._transport = transport
        self._closed = False
        self._extensions = {"timeout": httpx.Timeout(timeout).as_dict()}

    async def close(self) -> None:
        """Close the transport's connections; later calls raise RuntimeError."""
        self._closed = True
        await self._transport.aclose()

    async def call(
        self,
        method: str,
        path: str,
        *,
        expect: int = 200,
        body: wire.Request | None = None,
        params: Mapping[str, str] | None = None,
        create: bool = False,
        idempotent: bool = True,
    ) -> httpx.Response:
        """One logical call: retried per policy, answered only with the exact success code.
        `path` is the vault-relative path ("/certificates/web/pending"), `params` extra query
        parameters (api-version is added); `create` marks a create or import: it spends a
        create token and waits for a request slot behind every other kind of call."""
        content = json.dumps(body.to_wire()).encode() if body is not None else None
        query = urlencode({**(params or {}), "api-version": self.api_version})
        url = httpx.URL(f"{self.vault_url}{path}?{query}")

        async def attempt() -> httpx.Response:
            response = await self._authorized(method, url, content, create)
            if response.status_code != expect:
                raise error_from_response(response)
            return response

        return await self._retry.run(attempt, idempotent=idempotent)

    async def _authorized(
        self, method: str, url: httpx.URL, content: bytes | None, create: bool
    ) -> httpx.Response:
        if self._scope is None:
            probe = await self._send(method, url, b"" if content is not None else None)
            if probe.status_code != 401:
                if content is None:
                    return probe  # a bodyless call is answered (or failed) by the probe itself
                if probe.status_code == 429 or probe.status_code >= 500:
                    raise error_from_response(probe)  # busy, not authless: retry the probe
                # No challenge: this vault wants no token, so send the real request as is.
                return await self._send(method, url, content, create=create)
            self._learn(parse_challenge(probe.headers.get("www-authenticate")), probe)
        assert self._scope is not None
        response = await self._send(method, url, content, scope=self._scope, create=create)
        if response.status_code == 401:
            # A changed audience (or tenant move) is announced by a new challenge: follow once.
            challenge = parse_challenge(response.headers.get("www-authenticate"))
            if challenge is not None and challenge.scope != self._scope:
                self._learn(challenge, response)
                response = await self._send(method, url, content, scope=self._scope, create=create)
        return response

    def _learn(self, challenge: Challenge | None, response: httpx.Response) -> None:
        if challenge is None:
            raise error_from_response(response)
        if self._verify_resource and not challenge_matches_vault(self.vault_url, challenge):
            raise Unauthorized(
                401,
                "ChallengeResourceMismatch",
                f"the vault asked for a token for {challenge.resource}, which does not match "
                "its host; no token was sent (set verify_challenge_resource=False for a vault "
                "on an IP address or a single-label host)",
            )
        self._scope = challenge.scope

    async def _token(self, scope: str) -> str:
        try:
            return await self._credential.get_token(scope)
        except Exception as exc:
            # azure-identity's messages name the identity and the failing step, never the
            # token; they are scrubbed anyway like any other text that reaches status.
            raise CredentialUnavailable(
                f"cannot get a token for {scope}: {scrub(str(exc)) or type(exc).__name__}"
            ) from exc

    async def _send(
        self,
        method: str,
        url: httpx.URL,
        content: bytes | None,
        *,
        scope: str | None = None,
        create: bool = False,
    ) -> httpx.Response:
        """One exchange: a rate-limit token, then a request slot (creates last), then HTTP.
        The request is built here, not by AsyncClient.build_request, whose merging of base URL,
        parameters, headers and cookies cost more than the rest of this method: the URL comes
        whole from call(), the constant headers from HEADERS. No cookies are kept or sent: Key
        Vault authenticates by bearer token alone."""
        if self._closed:
            raise ClientClosed()
        headers = list(HEADERS)
        if content:
            headers.append(("Content-Type", "application/json"))
        if scope is not None:
            headers.append(("Authorization", f"Bearer {await self._token(scope)}"))
        await self._limiter.acquire(create=create)
        request = httpx.Request(
            method, url, content=content, headers=headers, extensions=dict(self._extensions)
        )
        await self._in_flight.acquire(LAST if create else FIRST)
        try:
            if self._closed:  # closed while this request waited for its slot (a new client)
                raise ClientClosed()
            return await self._exchange(method, url.path, request)
        finally:
            self._in_flight.release()

    async def _exchange(self, method: str, path: str, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        try:
            response = await self._transport.handle_async_request(request)
            response.request = request
            await response.aread()  # also closes the response's stream
        except httpx.TransportError as exc:
            error = _transport_error(exc)
            log.debug("%s %s -> %s", method, path, type(error).__name__)
            self._observe(method, path, TRANSPORT_ERROR, started)
            raise error from exc
        self._observe(method, path, str(response.status_code), started)
        log.debug(
            "%s %s -> %d in %.0f ms",
            method,
            path,
            response.status_code,
            (time.perf_counter() - started) * 1000,
        )
        return response

    def _observe(self, method: str, path: str, code: str, started: float) -> None:
        """Tell the observer (if any) about one exchange; its failure never fails a request."""
        if self._observer is None:
            return
        record = RequestRecord(
            host=self._host,
            operation=route(method, path),
            code=code,
            seconds=time.perf_counter() - started,
        )
        try:
            self._observer(record)
        except Exception:  # an observer bug must not turn into a Key Vault error
            log.exception("request observer failed")
