"""The local vault's Starlette application: wiring only.

`create_app` takes a ready `VaultService` so tests can run the app in-process (httpx's
ASGITransport, with an injected clock) exactly as the server runs it over HTTPS.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route, Router

from kvcert.vault.auth import ChallengeAuth
from kvcert.vault.directory import Directory
from kvcert.vault.errors import VaultError
from kvcert.vault.management import Stats, Throttle, management_routes
from kvcert.vault.recovery import Recovery
from kvcert.vault.routes import key_vault_routes
from kvcert.vault.routes.common import json
from kvcert.vault.service import VaultService

log = logging.getLogger(__name__)


@dataclass
class Vault:
    """Everything a route reaches through `request.app.state.vault`."""

    service: VaultService
    directory: Directory
    recovery: Recovery
    stats: Stats = field(default_factory=Stats)
    throttle: Throttle = field(default_factory=Throttle)


async def _vault_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, VaultError)
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
    return json(exc.body(), exc.status, headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "NotFound", 405: "MethodNotAllowed"}.get(exc.status_code, "BadParameter")
    message = {
        404: "The requested resource does not exist.",
        405: "The HTTP method is not allowed on this resource.",
    }.get(exc.status_code, "Bad request.")
    headers = {"Allow": _allowed_methods(request)} if exc.status_code == 405 else None
    return json({"error": {"code": code, "message": message}}, exc.status_code, headers)


def _allowed_methods(request: Request) -> str:
    """A 405's `Allow`: every method some route serves at this path, e.g. "DELETE, GET, HEAD,
    PUT" (RFC 9110 §15.5.6: the server MUST send it). Starlette's own lists only the first
    route that matched the path, and the vault has one route per method."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.matches(request.scope)[0] != Match.NONE:
            methods |= route.methods or set()
    return ", ".join(sorted(methods))


async def _unexpected(_request: Request, exc: Exception) -> Response:
    log.error("unexpected error: %s", type(exc).__name__)
    return json({"error": {"code": "InternalServerError", "message": "Internal error."}}, 500)


async def _ticker(service: VaultService, interval: float) -> None:
    """Apply due outcomes even when nobody reads them (reads also do, lazily)."""
    while True:
        await asyncio.sleep(interval)
        try:
            await service.tick()
        except Exception:
            log.exception("ticker failed")


def create_app(
    service: VaultService, *, token: str | None = None, tick_interval: float | None = 0.2
) -> Starlette:
    """The ASGI app; `tick_interval=None` disables the background ticker (pure lazy mode)."""
    vault = Vault(service, Directory(service.store, service.clock), Recovery(service))
    service.lifetime.listeners.append(vault.stats.lifetime_action)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(_ticker(service, tick_interval)) if tick_interval else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app = Starlette(
        routes=[*key_vault_routes(), *management_routes()],
        middleware=[Middleware(ChallengeAuth, token=token, on_challenge=vault.stats.challenged)],
        exception_handlers={
            VaultError: _vault_error,
            HTTPException: _http_error,
            Exception: _unexpected,
        },
        lifespan=lifespan,
    )
    assert isinstance(app.router, Router)
    app.router.redirect_slashes = False
    app.state.vault = vault
    return app
