"""The management API under `/_kvcert/` (outside Key Vault's API; same token).

Tests use it to make a provider's outcome immediate and deterministic: complete, fail (with an
error code and message) or delay a given pending operation, selected by certificate name and,
optionally, `request_id`; to move the vault's clock forward (`/_kvcert/clock`) and read the
lifetime actions' e-mail notifications. `GET /_kvcert/stats` counts Key Vault requests by
method and route, for benchmarks and cost-budget tests. See README.md beside this file.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kvcert.vault import lifetime, views
from kvcert.vault import operation as ops
from kvcert.vault.routes.common import LATEST_API_VERSION, check_name, json, parse, read_body
from kvcert.vault.views import Ctx
from kvcert.vault.wire import ClockIn, DelayIn, FailIn, ThrottleIn

if TYPE_CHECKING:
    from kvcert.vault.app import Vault


class Stats:
    """In-memory request counters (reset on restart or by `DELETE /_kvcert/stats`)."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.challenges = 0
        self.lifetime_actions: Counter[str] = Counter()

    def count(self, route: str) -> None:
        self.requests[route] += 1

    def challenged(self) -> None:
        self.challenges += 1

    def lifetime_action(self, action: str) -> None:
        """A lifetime action the vault performed by itself (not a request: not in `total`)."""
        self.lifetime_actions[action] += 1

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": dict(sorted(self.requests.items())),
            "total": sum(self.requests.values()),
            "challenges": self.challenges,
            "lifetimeActions": {a: self.lifetime_actions[a] for a in lifetime.ACTIONS},
        }

    def reset(self) -> None:
        self.requests.clear()
        self.challenges = 0
        self.lifetime_actions.clear()


class Throttle:
    """Answer the next `remaining` Key Vault requests with 429 Throttled (management API)."""

    def __init__(self) -> None:
        self.remaining = 0
        self.retry_after = 1

    def take(self) -> int | None:
        """The Retry-After to answer with if this request is throttled, else None."""
        if self.remaining <= 0:
            return None
        self.remaining -= 1
        return self.retry_after


def _vault(request: Request) -> Vault:
    vault: Vault = request.app.state.vault
    return vault


def _ctx(request: Request, vault: Vault) -> Ctx:
    host = request.headers.get("host") or "localhost"
    return Ctx(f"https://{host}", LATEST_API_VERSION, vault.service.profile)


async def _target(request: Request) -> tuple[Vault, ops.Operation]:
    vault = _vault(request)
    name = check_name(request.path_params["name"])
    op = await vault.service.get_operation(name, request.query_params.get("request_id"))
    return vault, op


async def complete(request: Request) -> Response:
    """Have the issuer sign now (a manual operation is signed by the simulated CA)."""
    vault, op = await _target(request)
    service = vault.service
    service.save_operation(ops.delayed(op, service.clock(), 0))
    done = await service.advance(op.name)
    assert done is not None
    return json(views.operation(_ctx(request, vault), done))


async def fail(request: Request) -> Response:
    body = parse(FailIn, await read_body(request))
    vault, op = await _target(request)
    failed = ops.failed(op, body.code, body.message)
    vault.service.save_operation(failed)
    return json(views.operation(_ctx(request, vault), failed))


async def delay(request: Request) -> Response:
    body = parse(DelayIn, await read_body(request))
    vault, op = await _target(request)
    later = ops.delayed(op, vault.service.clock(), body.seconds)
    vault.service.save_operation(later)
    return json(views.operation(_ctx(request, vault), later))


async def stats(request: Request) -> Response:
    vault = _vault(request)
    if request.method == "DELETE":
        vault.stats.reset()
    return json(vault.stats.snapshot())


async def throttle(request: Request) -> Response:
    body = parse(ThrottleIn, await read_body(request))
    vault = _vault(request)
    vault.throttle.remaining = body.requests
    vault.throttle.retry_after = body.retry_after
    return json({"requests": body.requests, "retryAfter": body.retry_after})


async def clock(request: Request) -> Response:
    """`GET`: the vault's time; `POST {"advanceSeconds": N}`: move it forward first, then apply
    everything that became due (outcomes, lifetime actions) before answering."""
    service = _vault(request).service
    if request.method == "POST":
        body = parse(ClockIn, await read_body(request))
        service.clock.advance(body.advance_seconds)
        await service.tick()
    return json({"now": service.clock(), "offset": service.clock.offset})


async def notifications(request: Request) -> Response:
    """The EmailContacts notifications lifetime actions recorded, oldest first."""
    name = request.query_params.get("certificate")
    if name is not None:
        check_name(name)
    return json({"value": _vault(request).service.lifetime.notifications(name)})


async def health(request: Request) -> Response:
    vault = _vault(request)
    return json(
        {"status": "ok", "profile": vault.service.profile.name, "caDelay": vault.service.ca_delay}
    )


async def ca(request: Request) -> Response:
    """The simulated CA's root (PEM), to verify chains issued by provider-backed issuers."""
    return Response(_vault(request).service.ca.cert_pem(), media_type="application/x-pem-file")


def management_routes() -> list[Route]:
    prefix = "/_kvcert/certificates/{name}/pending"
    return [
        Route("/_kvcert/health", health, methods=["GET"]),
        Route("/_kvcert/stats", stats, methods=["GET", "DELETE"]),
        Route("/_kvcert/ca", ca, methods=["GET"]),
        Route("/_kvcert/throttle", throttle, methods=["POST"]),
        Route("/_kvcert/clock", clock, methods=["GET", "POST"]),
        Route("/_kvcert/notifications", notifications, methods=["GET"]),
        Route(f"{prefix}/complete", complete, methods=["POST"]),
        Route(f"{prefix}/fail", fail, methods=["POST"]),
        Route(f"{prefix}/delay", delay, methods=["POST"]),
    ]
