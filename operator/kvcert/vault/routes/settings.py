"""Vault-wide certificate settings: issuers and contacts."""

from __future__ import annotations

from starlette.responses import Response

from kvcert.vault.routes.common import Call, json
from kvcert.vault.wire import ContactsIn, IssuerSetIn, IssuerUpdateIn


def _issuer(call: Call) -> str:
    return call.name("issuer", "issuer")


async def set_issuer(call: Call) -> Response:
    name = _issuer(call)
    body = await call.body(IssuerSetIn)
    return json(call.vault.directory.set_issuer(call.ctx, name, body))


async def update_issuer(call: Call) -> Response:
    name = _issuer(call)
    body = await call.body(IssuerUpdateIn)
    return json(call.vault.directory.update_issuer(call.ctx, name, body))


async def get_issuer(call: Call) -> Response:
    return json(call.vault.directory.get_issuer(call.ctx, _issuer(call)))


async def delete_issuer(call: Call) -> Response:
    return json(call.vault.directory.delete_issuer(call.ctx, _issuer(call)))


async def list_issuers(call: Call) -> Response:
    return call.page(call.vault.directory.list_issuers(call.ctx), "/certificates/issuers")


async def set_contacts(call: Call) -> Response:
    body = await call.body(ContactsIn)
    return json(call.vault.directory.set_contacts(call.ctx, body))


async def get_contacts(call: Call) -> Response:
    return json(call.vault.directory.get_contacts(call.ctx))


async def delete_contacts(call: Call) -> Response:
    return json(call.vault.directory.delete_contacts(call.ctx))
