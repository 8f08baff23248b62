"""Certificate routes: create, import, read, list, versions, update, policy, backup/restore."""

from __future__ import annotations

from starlette.background import BackgroundTask
from starlette.responses import Response

from kvcert.vault.imports import import_certificate
from kvcert.vault.listing import list_certificates, list_versions
from kvcert.vault.routes.common import RETRY_AFTER, Call, json
from kvcert.vault.wire import CreateIn, ImportIn, PolicyIn, RestoreIn, UpdateIn


async def create(call: Call) -> Response:
    name = call.name()
    body = await call.body(CreateIn)
    op, rendered = await call.vault.service.create(call.ctx, name, body)
    location = (
        f"{call.ctx.cert_url(name)}/pending?api-version={call.ctx.api_version}"
        f"&request_id={op.request_id}"
    )
    # Self finishes right after the 202, so a client's first poll normally sees `completed`.
    background = BackgroundTask(call.vault.service.advance, name) if op.kind == "self" else None
    headers = {"Location": location, "Retry-After": RETRY_AFTER}
    return json(rendered, 202, headers, background=background)


async def import_(call: Call) -> Response:
    name = call.name()
    body = await call.body(ImportIn)
    return json(await import_certificate(call.vault.service, call.ctx, name, body))


async def get(call: Call) -> Response:
    return json(await call.vault.service.get_certificate(call.ctx, call.name(), call.version()))


async def update(call: Call) -> Response:
    name = call.name()
    body = await call.body(UpdateIn)
    return json(call.vault.service.update_certificate(call.ctx, name, call.version(), body))


async def list_(call: Call) -> Response:
    include = call.include_pending()
    return call.page(list_certificates(call.vault.service, call.ctx, include), "/certificates")


async def versions(call: Call) -> Response:
    name = call.name()
    items = list_versions(call.vault.service, call.ctx, name)
    return call.page(items, f"/certificates/{name}/versions")


async def get_policy(call: Call) -> Response:
    return json(call.vault.service.get_policy(call.ctx, call.name()))


async def update_policy(call: Call) -> Response:
    name = call.name()
    body = await call.body(PolicyIn)
    return json(call.vault.service.update_policy(call.ctx, name, body))


async def backup(call: Call) -> Response:
    return json(call.vault.recovery.backup(call.name()))


async def restore(call: Call) -> Response:
    body = await call.body(RestoreIn)
    return json(call.vault.recovery.restore(call.ctx, body.value))
