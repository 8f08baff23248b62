"""httpx's transport interface on an aiohttp connection pool: the session's production transport.

Why (issue #17): httpx's own transport (httpcore on anyio) spent most of the client's CPU per
request. On every request and every response its pool checks each idle connection
(`has_expired` -> `is_readable`: two attribute dicts, a getpeername and a poll per connection,
plus a quadratic idle count), so the cost grows with the pool. aiohttp's pool hands out a
connection in constant time and parses HTTP in C; the operator already imports aiohttp (kopf
talks to Kubernetes through it). tests/perf/bench_client.py measures the difference.

The session keeps httpx's API (requests, responses, exceptions), so tests still swap in
`httpx.ASGITransport` or `httpx.MockTransport`, and `session._transport_error` still classifies
one exception tree. aiohttp's exceptions are mapped here onto httpx's by what the operator must
know, whether the request may have reached the vault:

    aiohttp                                  httpx                  -> KeyVault error
    ClientSSLError (certificate, handshake)  ConnectError (SSL cause) KeyVaultTLSError
    ClientConnectorError (refused, DNS)      ConnectError             KeyVaultConnectionError
    ConnectionTimeoutError (sock_connect)    ConnectTimeout           KeyVaultTimeout, not sent
    other timeouts (sock_read)               ReadTimeout              KeyVaultTimeout, maybe sent
    ClientPayloadError, ClientResponseError  RemoteProtocolError      KeyVaultConnectionError
    ServerDisconnected, other connection     ReadError                KeyVaultConnectionError
    any other ClientError                    TransportError           KeyVaultConnectionError

The httpx exception is raised `from` aiohttp's, whose cause is the OSError or ssl.SSLError, so
the TLS check in `_transport_error` sees the SSL error in the chain. Messages are aiohttp's: a
host, a port and an OS or TLS reason, never a header or body.
"""

from __future__ import annotations

import asyncio
import ssl
import urllib.request
from collections.abc import Mapping

import aiohttp
import httpx

KEEPALIVE_SECONDS = 5.0
"""How long an idle connection is kept: httpx's default, shorter than the servers' own idle
timeouts (uvicorn's is 5 s, Azure's minutes), so the client is the side that closes."""


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One aiohttp ClientSession behind httpx's transport interface.

    `ssl_context` verifies every server (build it with session.make_ssl_context);
    `max_connections` caps open connections (the session never has more requests in flight);
    `keepalive_expiry` is in seconds. `trust_env` honours HTTPS_PROXY / NO_PROXY as httpx's
    default transport does, read once per host (aiohttp's own `trust_env` would read them, and
    ~/.netrc, on every request). Timeouts come from each request's `timeout` extension
    (httpx.Timeout as a dict, seconds or None): `connect` bounds the TCP connect and the TLS
    handshake, `read` each wait for response bytes, `pool` the wait for a connection; `write`
    has no aiohttp counterpart and is not enforced. The whole body is read before the response
    is returned; no cookies are kept. The ClientSession is made on first use, inside the
    running event loop, as aiohttp requires.
    """

    def __init__(
        self,
        ssl_context: ssl.SSLContext,
        *,
        max_connections: int,
        keepalive_expiry: float = KEEPALIVE_SECONDS,
        trust_env: bool = True,
    ) -> None:
        self._ssl = ssl_context
        self._max_connections = max_connections
        self._keepalive = keepalive_expiry
        self._trust_env = trust_env
        self._proxies: dict[str, str | None] = {}
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                ssl=self._ssl,
                limit=self._max_connections,
                limit_per_host=0,
                keepalive_timeout=self._keepalive,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,  # httpx decodes Content-Encoding, as with its own transport
            )
        return self._session

    def _proxy(self, url: httpx.URL) -> str | None:
        """The proxy for `url` from the environment (HTTPS_PROXY or HTTP_PROXY by scheme,
        NO_PROXY to bypass), looked up once per host; None without `trust_env`."""
        if not self._trust_env:
            return None
        key = f"{url.scheme}://{url.netloc.decode('ascii')}"
        if key not in self._proxies:
            proxies = urllib.request.getproxies_environment()
            bypass = urllib.request.proxy_bypass(url.host)  # NO_PROXY on Linux
            self._proxies[key] = None if bypass else proxies.get(url.scheme)
        return self._proxies[key]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request` (its content already read: the session sends bytes) and return the
        response with its body; raises httpx.TransportError subclasses (see the module)."""
        timeouts: Mapping[str, float | None] = request.extensions.get("timeout", {})
        try:
            async with self._client().request(
                request.method,
                str(request.url),
                headers=request.headers.multi_items(),
                data=request.content or None,
                allow_redirects=False,
                proxy=self._proxy(request.url),
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    # aiohttp's `connect` spans the pool wait, DNS, TCP and TLS; the pool wait is
                    # ~0 (the session never has more requests in flight than connections), so
                    # it is bounded by httpx's connect timeout, as httpx's own transport is.
                    connect=timeouts.get("connect"),
                    sock_connect=timeouts.get("connect"),
                    sock_read=timeouts.get("read"),
                ),
            ) as response:
                body = await response.read()
                status, headers, reason = response.status, response.raw_headers, response.reason
        except aiohttp.ClientError as exc:
            raise _httpx_error(exc, request) from exc
        except TimeoutError as exc:
            raise httpx.ReadTimeout(str(exc) or "timed out", request=request) from exc
        except OSError as exc:  # aiohttp wraps these; one that slips through may have been sent
            raise httpx.ReadError(str(exc) or type(exc).__name__, request=request) from exc
        extensions = {"http_version": b"HTTP/1.1"}
        if reason:
            extensions["reason_phrase"] = reason.encode("ascii", "replace")
        return httpx.Response(
            status, headers=headers, content=body, request=request, extensions=extensions
        )

    async def aclose(self) -> None:
        """Close every connection; safe to call twice or before any request."""
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


def _httpx_error(exc: aiohttp.ClientError, request: httpx.Request) -> httpx.TransportError:
    """The httpx exception for one of aiohttp's (table in the module docstring)."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, aiohttp.ClientConnectorError):  # includes ClientSSLError
        return httpx.ConnectError(text, request=request)
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(text, request=request)
    if isinstance(exc, asyncio.TimeoutError):
        return httpx.ReadTimeout(text, request=request)
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ClientResponseError):
        return httpx.RemoteProtocolError(text, request=request)
    if isinstance(exc, aiohttp.ClientConnectionError):
        return httpx.ReadError(text, request=request)
    return httpx.TransportError(text, request=request)
