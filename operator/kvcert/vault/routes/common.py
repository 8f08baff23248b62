"""What every Key Vault route shares: api-version check, body limits and parsing, names, paging.

Routes stay thin: a handler takes a `Call`, asks it for validated input, calls the service and
returns `json(...)`. Anything wrong becomes a `VaultError`, rendered by the app's one handler.
"""

from __future__ import annotations

import json as jsonlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kvcert.vault.errors import VaultError, bad_parameter, throttled
from kvcert.vault.views import Ctx

if TYPE_CHECKING:
    from kvcert.vault.app import Vault

API_VERSIONS = frozenset(
    ("7.0", "7.1", "7.2", "7.3", "7.4", "7.5", "7.6", "2025-07-01", "2026-04-01")
)
LATEST_API_VERSION = "2026-04-01"
MAX_BODY = 1 << 20
MAX_PAGE = 25
RETRY_AFTER = "10"
_NAME = re.compile(r"[0-9a-zA-Z-]{1,127}")
M = TypeVar("M", bound=BaseModel)


class JSONResponse(Response):
    media_type = "application/json; charset=utf-8"

    def render(self, content: Any) -> bytes:
        return jsonlib.dumps(content, separators=(",", ":")).encode()


def json(
    body: Any, status: int = 200, headers: dict[str, str] | None = None, **kw: Any
) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers, **kw)


def check_name(name: str, what: str = "certificate") -> str:
    if not _NAME.fullmatch(name):
        raise bad_parameter(f"The request URI contains an invalid {what} name: {name[:130]!r}.")
    return name


def api_version(request: Request) -> str:
    version = request.query_params.get("api-version")
    if version is None:
        raise bad_parameter(
            "The api-version query parameter (?api-version=) is required for all requests."
        )
    if version not in API_VERSIONS:
        raise bad_parameter(
            f"The specified version ({version[:40]}) is not recognized. Consider using the latest "
            f"supported version ({LATEST_API_VERSION})."
        )
    return version


async def read_body(request: Request) -> bytes:
    """The raw body, refusing more than 1 MiB without buffering it all."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise _too_large()
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > MAX_BODY:
            raise _too_large()
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large() -> VaultError:
    return VaultError(413, "BadParameter", f"The request body exceeds {MAX_BODY} bytes.")


def parse(model: type[M], raw: bytes) -> M:
    """Validate a JSON body; the message names the field, never echoes the value."""
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        first = exc.errors(include_input=False, include_url=False)[0]
        if first["type"] == "json_invalid":
            raise bad_parameter("The request body is not valid JSON.") from None
        where = ".".join(str(p) for p in first["loc"])
        if not where:
            raise bad_parameter("The request body must be a JSON object.") from None
        raise bad_parameter(f"Invalid value for property {where}: {first['msg']}.") from None


@dataclass
class Call:
    """One Key Vault request, after authentication and the api-version check."""

    request: Request
    vault: Vault
    ctx: Ctx

    def name(self, key: str = "name", what: str = "certificate") -> str:
        return check_name(self.request.path_params[key], what)

    def version(self) -> str | None:
        value: str = self.request.path_params.get("version", "")
        return value or None

    def include_pending(self) -> bool:
        """`includePending=true`: list certificates that have only a pending version too."""
        return self.request.query_params.get("includePending", "false").lower() == "true"

    async def body(self, model: type[M]) -> M:
        return parse(model, await read_body(self.request))

    def page(self, items: list[Any], path: str) -> JSONResponse:
        """Key Vault paging: `maxresults` (1-25) per page, `$skiptoken` to continue."""
        query = self.request.query_params
        size = _int_param(query.get("maxresults"), "maxresults", 1, MAX_PAGE, MAX_PAGE)
        offset = _int_param(query.get("$skiptoken"), "$skiptoken", 0, 10**9, 0)
        chunk = items[offset : offset + size]
        next_link = None
        if offset + size < len(items):
            next_link = (
                f"{self.ctx.base}{path}?api-version={self.ctx.api_version}"
                f"&$skiptoken={offset + size}&maxresults={size}"
            )
            if query.get("includePending"):
                next_link += f"&includePending={query['includePending']}"
        return json({"value": chunk, "nextLink": next_link})


def _int_param(raw: str | None, name: str, low: int, high: int, default: int) -> int:
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise bad_parameter(f"Invalid {name}: it must be an integer between {low} and {high}.")
    return int(raw)


Handler = Callable[[Call], Awaitable[Response]]


def kv(path: str, handler: Handler, methods: list[str]) -> Route:
    """A Key Vault route: checks api-version, counts the request, then calls `handler`."""

    async def endpoint(request: Request) -> Response:
        vault: Vault = request.app.state.vault
        version = api_version(request)
        vault.stats.count(f"{request.method} {path}")
        retry_after = vault.throttle.take()
        if retry_after is not None:
            raise throttled(retry_after)
        host = request.headers.get("host") or "localhost"
        ctx = Ctx(base=f"https://{host}", api_version=version, profile=vault.service.profile)
        return await handler(Call(request, vault, ctx))

    return Route(path, endpoint, methods=methods)
