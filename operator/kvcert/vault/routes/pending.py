"""Pending certificate operation routes: get, cancel (PATCH), delete, merge."""

from __future__ import annotations

from starlette.responses import Response

from kvcert.vault import views
from kvcert.vault.routes.common import RETRY_AFTER, Call, json
from kvcert.vault.wire import MergeIn, OperationUpdateIn


async def get(call: Call) -> Response:
    request_id = call.request.query_params.get("request_id")
    op = await call.vault.service.get_operation(call.name(), request_id)
    headers = {"Retry-After": RETRY_AFTER} if op.in_progress else None
    return json(views.operation(call.ctx, op), headers=headers)


async def cancel(call: Call) -> Response:
    name = call.name()
    body = await call.body(OperationUpdateIn)
    op = await call.vault.service.cancel(name, body.cancellation_requested)
    return json(views.operation(call.ctx, op))


async def delete(call: Call) -> Response:
    op = await call.vault.service.delete_operation(call.name())
    return json(views.operation(call.ctx, op))


async def merge(call: Call) -> Response:
    name = call.name()
    body = await call.body(MergeIn)
    bundle = await call.vault.service.merge(call.ctx, name, body)
    location = f"{call.ctx.cert_url(name)}?api-version={call.ctx.api_version}"
    return json(bundle, 201, {"Location": location})
