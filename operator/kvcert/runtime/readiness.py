"""The readiness endpoint: HTTP 200 once the operator can watch everything it serves.

kopf opens a watch by listing the resource first and then watching from that list's
resourceVersion, with the pod's own credentials. Readiness repeats that first step for every
kind the operator serves (Certificates and KeyVaults in each watched namespace, or cluster-wide;
ClusterKeyVaults always cluster-wide) with `limit=1`, after kopf's start-up has finished: when
every list has answered, the watches kopf opens with the same credentials can be established,
and the pod reports Ready. Until then `GET <path>` answers 503 with what is still missing
(a 403 names the missing RBAC rule's resource, a 404 a missing CRD).

A missing CRD is final: kopf discovers resources once at start-up (scanning is off, so the
operator needs no RBAC on CRDs), so the pod stays unready and says to restart it after the
CRDs are installed. Any other failure is retried with backoff (1 s doubling to 30 s).
Readiness does not flip back once reached: the probe guards roll-outs (`helm --wait`,
`kubectl rollout status`), and a lost API server is kopf's to reconnect to.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from kvcert.runtime.kube import (
    CERTIFICATEISSUERS,
    CERTIFICATES,
    CLUSTERCERTIFICATEISSUERS,
    CLUSTERKEYVAULTS,
    KEYVAULTS,
)

log = logging.getLogger("kvcert.readiness")

ListProbe = Callable[[str, str | None], Awaitable[None]]
"""`probe(plural, namespace)`: one list of `plural` (namespace None: cluster-wide); raises
`ListFailed` when the API server refuses."""


class ListFailed(Exception):
    """A list the watch needs was refused: `status` is the HTTP status (403, 404, ...)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


def watched_lists(namespaces: tuple[str, ...]) -> list[tuple[str, str | None]]:
    """The (plural, namespace) pairs kopf watches: namespaced kinds in each namespace or
    cluster-wide (namespace None), and cluster-scoped kinds always cluster-wide."""
    scopes: tuple[str | None, ...] = namespaces or (None,)
    namespaced = (CERTIFICATES, KEYVAULTS, CERTIFICATEISSUERS)
    pairs = [(plural, scope) for plural in namespaced for scope in scopes]
    return [*pairs, (CLUSTERKEYVAULTS, None), (CLUSTERCERTIFICATEISSUERS, None)]


def parse_endpoint(url: str) -> tuple[str, int, str]:
    """`http://HOST:PORT/PATH` -> (host, port, path); raises ValueError for anything else."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or not parts.hostname or parts.port is None:
        raise ValueError(f"a readiness endpoint is http://HOST:PORT/PATH, not {url!r}")
    return parts.hostname, parts.port, parts.path or "/"


@dataclass
class Readiness:
    """Tracks which watched lists still fail and serves the verdict over HTTP."""

    lists: list[tuple[str, str | None]]
    probe: ListProbe
    missing: dict[tuple[str, str | None], str] = field(default_factory=dict)
    final: bool = False
    _runner: web.AppRunner | None = None
    _task: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        return not self.missing and self._task is not None and self._task.done()

    async def serve(self, endpoint: str) -> None:
        """Start the HTTP server and the checks in the background; raises ValueError for a
        malformed endpoint and OSError when the port cannot be bound."""
        host, port, path = parse_endpoint(endpoint)
        app = web.Application()
        app.add_routes([web.get(path, self._answer)])
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        self.missing = dict.fromkeys(self.lists, "not checked yet")
        self._task = asyncio.create_task(self.check(), name="kvcert readiness")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()

    async def check(self, *, first_delay: float = 1.0, max_delay: float = 30.0) -> None:
        """List every watched kind until all answer or one is missing for good."""
        delay = first_delay
        while True:
            for plural, namespace in self.lists:
                if (plural, namespace) not in self.missing:
                    continue
                where = f"in {namespace}" if namespace else "cluster-wide"
                try:
                    await self.probe(plural, namespace)
                except ListFailed as failed:
                    if failed.status == 404:
                        self.final = True
                        self.missing[(plural, namespace)] = (
                            f"{plural}.kvcert.io is not served (404): install the CRDs, "
                            "then restart the operator"
                        )
                        log.error("not ready: %s", self.missing[(plural, namespace)])
                        return
                    self.missing[(plural, namespace)] = f"cannot list {plural} {where}: {failed}"
                except Exception as error:  # reported by type only, retried
                    self.missing[(plural, namespace)] = (
                        f"cannot list {plural} {where}: {type(error).__name__}"
                    )
                else:
                    del self.missing[(plural, namespace)]
            if not self.missing:
                log.info("ready: every watched kind can be listed")
                return
            log.warning("not ready yet: %s", "; ".join(self.missing.values()))
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)

    async def _answer(self, _: web.Request) -> web.Response:
        if self.ready:
            return web.json_response({"ready": True})
        return web.json_response(
            {"ready": False, "final": self.final, "missing": sorted(self.missing.values())},
            status=503,
        )
