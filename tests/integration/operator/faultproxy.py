"""A fault-injecting HTTPS proxy in front of the local vault (issue #18 §2).

    with FaultProxy(vault, rate=0.2, seed=18) as proxy:
        kube.keyvault("main", proxy.url, "vault-token", vault.ca_path.read_text())
        ...
        proxy.injected()          # Counter: fault kind -> requests it answered
        proxy.records()           # every request: time, method, path, what it was given

Each Key Vault request is either forwarded unchanged or, with probability `rate`, given one of
FAULTS (by `weights`):

    throttle   429 Throttled with Retry-After: 1-6 s, not forwarded (the client waits up to 4 s
               in the call, and hands a longer wait to the operator's scheduler)
    error500   500 InternalServerError, not forwarded
    error503   503 ServiceUnavailable, not forwarded
    reset      the connection reset (TCP RST) before anything is forwarded
    stall      forwarded at once, its answer held for `stall` seconds (longer than the client's
               read timeout), then dropped: the vault acted, the client timed out
    lost       forwarded, then the connection reset instead of the answer: the vault acted
               (a create happened), the client saw a reset

The choice is reproducible whatever the interleaving of concurrent requests: it is drawn from
`random.Random(f"{seed}/{method} {path}/{n}")`, where n counts earlier requests of the same
method and path (query string aside, certificate versions, which the vault draws at random, read
as "{version}"). The same workload with the same seed meets the same faults on the same calls,
as long as it makes them the same number of times. Requests under `/_kvcert/` (the management
API) are never faulted.

Not uvicorn, as in proxy.py: a reset must be a real RST on the client's connection, so this is a
small HTTP/1.1 server on asyncio streams (h11 parses), on a thread with its own event loop,
speaking TLS with the vault's own server certificate (the operator trusts the vault's CA).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import socket
import ssl
import struct
import threading
import time
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import h11
import httpx

from tests.support.vault import LocalVault, free_port

FAULTS = ("throttle", "error500", "error503", "reset", "stall", "lost")
DEFAULT_WEIGHTS: Mapping[str, float] = {
    "throttle": 4,
    "error500": 3,
    "error503": 3,
    "reset": 3,
    "stall": 0.5,
    "lost": 3,
}
"""Relative weights of the kinds within the faulted share. A stall costs its certificate the
client's whole read timeout (30 s), so it is drawn rarely: a handful per hundred certificates."""
CLIENT_READ_TIMEOUT = 30.0
"""kvcert.keyvault.session.DEFAULT_TIMEOUT's read timeout, in seconds."""
HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "content-encoding"}
MAX_BODY = 4 * 1024 * 1024
VERSION_SEGMENT = re.compile(r"/[0-9a-f]{32}(?=/|$)")


def certificate_of(path: str) -> str | None:
    """The certificate a Key Vault path is about ("/certificates/web/pending" -> "web"), or None
    (issuers, listings, the management API)."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] in ("certificates", "secrets", "deletedcertificates"):
        return None if parts[1] in ("issuers", "contacts") else parts[1]
    return None


@dataclass(frozen=True)
class Record:
    """One request as the proxy saw it. `at` and `done` are time.monotonic() seconds (arrival,
    and when its answer or fault was given); `status` the HTTP status the client was given (None
    for reset, stall and lost); `fault` the kind injected or None; `retry_after` the seconds a
    429 asked for; `upstream` the vault's own status when the request was forwarded;
    `authorized` whether it carried a token (the client's first request to a vault goes without,
    bodiless, for the bearer challenge)."""

    at: float
    done: float
    method: str
    path: str
    status: int | None
    fault: str | None
    retry_after: float | None
    upstream: int | None
    authorized: bool

    @property
    def certificate(self) -> str | None:
        return certificate_of(self.path)


class _Reset(Exception):
    """Reset the client's connection now (no answer)."""


class FaultProxy:
    """The proxy: `rate` in [0, 1], `weights` by kind (FAULTS), `stall` in seconds (the read
    timeout + 2 by default), `retry_after` the (low, high) whole seconds a 429 asks for,
    `latency` seconds every answer forwarded unfaulted is held (a slow vault: 0 by default).
    Starts on __enter__ (a thread with its own event loop), stops on __exit__; `rate` and
    `latency` may be changed while it runs."""

    def __init__(
        self,
        vault: LocalVault,
        *,
        rate: float = 0.2,
        seed: int = 18,
        weights: Mapping[str, float] = DEFAULT_WEIGHTS,
        stall: float = CLIENT_READ_TIMEOUT + 2.0,
        retry_after: tuple[int, int] = (1, 6),
        latency: float = 0.0,
    ) -> None:
        unknown = set(weights) - set(FAULTS)
        if unknown or not 0.0 <= rate <= 1.0 or not any(weights.values()):
            raise ValueError(f"bad fault settings: rate {rate}, unknown kinds {unknown}")
        self.vault = vault
        self.rate = rate
        self.seed = seed
        self.kinds = [k for k in FAULTS if weights.get(k, 0) > 0]
        self.weights = [weights[k] for k in self.kinds]
        self.stall = stall
        self.retry_after = retry_after
        self.latency = latency
        self.port = free_port()
        self._seen: Counter[str] = Counter()
        self._records: list[Record] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._upstream: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._forced: list[tuple[str, str, str, float | None]] = []

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    # --- what the test reads -------------------------------------------------------------------
    def records(self) -> list[Record]:
        with self._lock:
            return list(self._records)

    def injected(self) -> Counter[str]:
        """Fault kind -> how many requests it was given."""
        return Counter(r.fault for r in self.records() if r.fault is not None)

    def total(self) -> int:
        return len(self.records())

    # --- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> FaultProxy:
        self._loop = loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=loop.run_forever, daemon=True)
        self._thread.start()
        started: Future[None] = asyncio.run_coroutine_threadsafe(self._start(), loop)
        started.result(timeout=15)
        return self

    def __exit__(self, *exc: object) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return  # never entered
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._stop(), loop).result(timeout=15)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()

    async def _start(self) -> None:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls_dir = self.vault.data_dir / "tls"
        tls.load_cert_chain(tls_dir / "server.crt", tls_dir / "server.key")
        self._upstream = httpx.AsyncClient(
            base_url=self.vault.url,
            verify=self.vault.ssl_context(),
            timeout=60.0,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
        )
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, ssl=tls)

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._upstream is not None:
            await self._upstream.aclose()

    # --- the fault -----------------------------------------------------------------------------
    def force(self, kind: str, method: str, path: str, retry_after: float | None = None) -> None:
        """Give the next request of `method` and `path` (exactly) the fault `kind` (with
        `retry_after` for a throttle), whatever the rate."""
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}")
        with self._lock:
            self._forced.append((method, path, kind, retry_after))

    def draw(self, method: str, path: str) -> tuple[str | None, float | None]:
        """(fault kind or None, Retry-After for a throttle) for the next request of `method`
        and `path` (counted: call it once per request)."""
        if path.startswith("/_kvcert/"):
            return None, None
        key = f"{method} {VERSION_SEGMENT.sub('/{version}', path)}"
        with self._lock:
            n = self._seen[key]
            self._seen[key] += 1
            for i, (m, p, kind, wait) in enumerate(self._forced):
                if (m, p) == (method, path):
                    del self._forced[i]
                    return kind, wait
        rng = random.Random(f"{self.seed}/{key}/{n}")
        if rng.random() >= self.rate:
            return None, None
        kind = rng.choices(self.kinds, self.weights)[0]
        wait = float(rng.randint(*self.retry_after)) if kind == "throttle" else None
        return kind, wait

    # --- one connection --------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)  # type: ignore[arg-type]
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_BODY)
        try:
            while True:
                request = await self._read_request(conn, reader)
                if request is None:
                    break
                method, target, headers, body = request
                await self._answer(conn, writer, method, target, headers, body)
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    break
                conn.start_next_cycle()
        except _Reset:
            _reset(writer)
            return
        except asyncio.CancelledError:  # the proxy stops: drop what is left
            writer.transport.abort()
            return
        except (OSError, h11.ProtocolError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            self._tasks.discard(task)  # type: ignore[arg-type]
        with contextlib.suppress(Exception):
            writer.close()
            await asyncio.wait_for(writer.wait_closed(), 2)

    async def _read_request(
        self, conn: h11.Connection, reader: asyncio.StreamReader
    ) -> tuple[str, str, list[tuple[str, str]], bytes] | None:
        head: h11.Request | None = None
        body = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await reader.read(65536)
                conn.receive_data(data)
                if not data and head is None:
                    return None
                continue
            if isinstance(event, h11.ConnectionClosed):
                return None
            if isinstance(event, h11.Request):
                head = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                assert head is not None
                headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in head.headers]
                return head.method.decode(), head.target.decode(), headers, bytes(body)

    async def _answer(
        self,
        conn: h11.Connection,
        writer: asyncio.StreamWriter,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
    ) -> None:
        path = target.split("?", 1)[0]
        arrived = time.monotonic()
        fault, wait = self.draw(method, path)
        authorized = any(k.lower() == "authorization" for k, _ in headers)

        def record(status: int | None, upstream: int | None = None) -> None:
            entry = Record(
                arrived, time.monotonic(), method, path, status, fault, wait, upstream, authorized
            )
            with self._lock:
                self._records.append(entry)

        if fault == "reset":
            record(None)
            raise _Reset()
        if fault in ("throttle", "error500", "error503"):
            status, code = {
                "throttle": (429, "Throttled"),
                "error500": (500, "InternalServerError"),
                "error503": (503, "ServiceUnavailable"),
            }[fault]
            extra = [("Retry-After", str(int(wait or 0)))] if fault == "throttle" else []
            message = f'{{"error":{{"code":"{code}","message":"injected by the fault proxy"}}}}'
            record(status)
            await _send(
                conn,
                writer,
                status,
                [("Content-Type", "application/json"), *extra],
                message.encode(),
            )
            return
        forwarded = [(k, v) for k, v in headers if k.lower() not in HOP_HEADERS]
        assert self._upstream is not None
        try:
            answer = await self._upstream.request(method, target, headers=forwarded, content=body)
        except httpx.HTTPError:
            record(None)
            raise _Reset() from None
        if fault == "lost":
            record(None, answer.status_code)
            raise _Reset()
        if fault == "stall":
            record(None, answer.status_code)
            await asyncio.sleep(self.stall)
            raise _Reset()
        if self.latency:
            await asyncio.sleep(self.latency)
        record(answer.status_code, answer.status_code)
        kept = [(k, v) for k, v in answer.headers.items() if k.lower() not in HOP_HEADERS]
        await _send(conn, writer, answer.status_code, kept, answer.content)


async def _send(
    conn: h11.Connection,
    writer: asyncio.StreamWriter,
    status: int,
    headers: list[tuple[str, str]],
    body: bytes,
) -> None:
    head = [*headers, ("Content-Length", str(len(body)))]
    data = conn.send(h11.Response(status_code=status, headers=head))
    data += conn.send(h11.Data(data=body)) if body else b""
    data += conn.send(h11.EndOfMessage())
    writer.write(data)
    await writer.drain()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0), not a FIN: the client sees 'connection reset'."""
    sock: Any = writer.get_extra_info("socket")
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
