"""Certificate issuers and contacts: the vault-wide settings next to the certificates."""

from __future__ import annotations

from collections.abc import Callable

from kvcert.vault import views
from kvcert.vault.errors import bad_parameter, contacts_not_found, issuer_not_found
from kvcert.vault.store import Doc, Store
from kvcert.vault.views import Ctx
from kvcert.vault.wire import ContactsIn, IssuerSetIn, IssuerUpdateIn


class Directory:
    def __init__(self, store: Store, clock: Callable[[], float]) -> None:
        self.store = store
        self.clock = clock

    def _issuer(self, name: str) -> Doc:
        doc = self.store.get_issuer(name)
        if doc is None:
            raise issuer_not_found(name)
        return doc

    def set_issuer(self, ctx: Ctx, name: str, body: IssuerSetIn) -> Doc:
        if not body.provider.strip():
            raise bad_parameter("Property provider is required.")
        if name.lower() in ("self", "unknown"):
            raise bad_parameter(f"The issuer name {name} is reserved.")
        now = self.clock()
        old = self.store.get_issuer(name)
        doc = {
            "provider": body.provider,
            "credentials": body.credentials.model_dump(exclude_none=True)
            if body.credentials
            else None,
            "org_details": body.org_details.model_dump(exclude_none=True)
            if body.org_details
            else None,
            "enabled": body.attributes.enabled
            if body.attributes and body.attributes.enabled is not None
            else True,
            "created": old["created"] if old else now,
            "updated": now,
        }
        self.store.put_issuer(name, doc)
        return views.issuer(ctx, name, doc)

    def update_issuer(self, ctx: Ctx, name: str, body: IssuerUpdateIn) -> Doc:
        doc = dict(self._issuer(name))
        if body.provider is not None:
            if not body.provider.strip():
                raise bad_parameter("Property provider must not be empty.")
            doc["provider"] = body.provider
        if body.credentials is not None:
            doc["credentials"] = body.credentials.model_dump(exclude_none=True)
        if body.org_details is not None:
            doc["org_details"] = body.org_details.model_dump(exclude_none=True)
        if body.attributes is not None and body.attributes.enabled is not None:
            doc["enabled"] = body.attributes.enabled
        doc["updated"] = self.clock()
        self.store.put_issuer(name, doc)
        return views.issuer(ctx, name, doc)

    def get_issuer(self, ctx: Ctx, name: str) -> Doc:
        return views.issuer(ctx, name, self._issuer(name))

    def delete_issuer(self, ctx: Ctx, name: str) -> Doc:
        doc = self._issuer(name)
        self.store.delete_issuer(name)
        return views.issuer(ctx, name, doc)

    def list_issuers(self, ctx: Ctx) -> list[Doc]:
        return [
            {"id": f"{ctx.base}/certificates/issuers/{name}", "provider": doc["provider"]}
            for name, doc in self.store.list_issuers()
        ]

    def set_contacts(self, ctx: Ctx, body: ContactsIn) -> Doc:
        doc = {"contacts": [c.model_dump(exclude_none=True) for c in body.contacts]}
        self.store.put_contacts(doc)
        return views.contacts(ctx, doc)

    def get_contacts(self, ctx: Ctx) -> Doc:
        doc = self.store.get_contacts()
        if doc is None:
            raise contacts_not_found()
        return views.contacts(ctx, doc)

    def delete_contacts(self, ctx: Ctx) -> Doc:
        doc = self.store.get_contacts()
        if doc is None:
            raise contacts_not_found()
        self.store.put_contacts(None)
        return views.contacts(ctx, doc)
