"""The certificate lists: `GET /certificates` and `GET /certificates/{name}/versions`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kvcert.vault import views
from kvcert.vault.store import Doc
from kvcert.vault.views import Ctx

if TYPE_CHECKING:
    from kvcert.vault.service import VaultService


def list_certificates(service: VaultService, ctx: Ctx, include_pending: bool) -> list[Doc]:
    """Live certificates (their latest version); pending-only ones with `includePending`."""
    out = []
    for name, _cert in service.store.list_certificates(deleted=False):
        latest = service.store.get_version(name, None)
        if latest is not None:
            out.append(views.item(ctx, name, None, latest[1], None))
        elif include_pending and (op := service.operation(name)) is not None:
            out.append(views.item(ctx, name, None, None, op))
    return out


def list_versions(service: VaultService, ctx: Ctx, name: str) -> list[Doc]:
    """The versions of a live certificate, the pending one (disabled, no x5t) included.

    An unknown or soft-deleted name is an empty list, not a 404: the live service answers
    `200 {"value": [], "nextLink": null}` (Microsoft's SDK recordings).
    """
    found = service.store.get_certificate(name)
    if found is None or found[1]:
        return []
    stored = service.store.list_versions(name)
    out = [views.item(ctx, name, v, d, None) for v, d in stored]
    op = service.operation(name)
    if op is not None and op.version not in {v for v, _ in stored}:
        out.append(views.item(ctx, name, op.version, None, op))
    return out
