"""Soft delete, deleted certificates, recovery and purge; and the certificate's secret."""

from __future__ import annotations

from starlette.responses import Response

from kvcert.vault.routes.common import Call, json
from kvcert.vault.secret import read_secret


async def delete(call: Call) -> Response:
    return json(call.vault.recovery.delete(call.ctx, call.name()))


async def get(call: Call) -> Response:
    return json(call.vault.recovery.get(call.ctx, call.name()))


async def list_(call: Call) -> Response:
    include = call.include_pending()
    return call.page(call.vault.recovery.list(call.ctx, include), "/deletedcertificates")


async def recover(call: Call) -> Response:
    return json(call.vault.recovery.recover(call.ctx, call.name()))


async def purge(call: Call) -> Response:
    call.vault.recovery.purge(call.name())
    return Response(status_code=204)


async def secret(call: Call) -> Response:
    """`GET /secrets/{name}[/{version}]`: the exportable certificate with its key."""
    return json(await read_secret(call.vault.service, call.ctx, call.name(), call.version()))
