"""Vault-wide certificate settings: issuers and contacts (REST: SetCertificateIssuer,
GetCertificateIssuer, DeleteCertificateIssuer, Get/Set/Delete CertificateContacts; issue #19
§2). Issuers are written with SetCertificateIssuer (PUT) only, updates too: it replaces the whole
issuer, whereas UpdateCertificateIssuer (PATCH) keeps the fields a request leaves out (issue
#19 §2 review). A mixin of KeyVaultClient: the same session, the same
retries and observers; kept apart so each module keeps one responsibility.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from kvcert.keyvault import wire
from kvcert.keyvault.convert import Contact, Issuer, contacts_from_wire, issuer_from_wire
from kvcert.keyvault.errors import KeyVaultHTTPError, NotFound
from kvcert.keyvault.session import VaultSession, parse_model
from kvcert.reconcile.issuer import Administrator

_NAME = re.compile(r"^[0-9A-Za-z-]{1,127}$")


def object_name(name: str) -> str:
    """Key Vault names are letters, digits and dashes: checking them keeps paths unambiguous.
    Raises ValueError for anything else."""
    if not _NAME.match(name):
        raise ValueError(f"invalid Key Vault object name {name[:40]!r}")
    return name


def _issuer_fields(
    account_id: str | None,
    password: str | None,
    organization_id: str | None,
    administrators: Sequence[Administrator],
    enabled: bool,
) -> dict[str, Any]:
    """credentials, org_details and attributes of an issuer body (REST: IssuerCredentials,
    OrganizationDetails, AdministratorDetails, IssuerAttributes); None where nothing is set."""
    credentials = None
    if account_id or password:
        credentials = wire.IssuerCredentials.model_validate(
            {"account_id": account_id or None, "pwd": password or None}
        )
    org_details = None
    if organization_id or administrators:
        org_details = wire.OrganizationDetails(
            id=organization_id or None,
            admin_details=[
                wire.AdministratorDetails(
                    first_name=item.first_name,
                    last_name=item.last_name,
                    email=item.email,
                    phone=item.phone,
                )
                for item in administrators
            ]
            or None,
        )
    return {
        "credentials": credentials,
        "org_details": org_details,
        "attributes": wire.IssuerAttributesIn(enabled=enabled),
    }


def _redacted(error: KeyVaultHTTPError, password: str | None) -> KeyVaultHTTPError:
    """`error` again with `password` redacted wherever the answer quoted it."""
    if not password:
        return error
    return type(error)(
        error.status,
        error.code,
        error.message,
        request_id=error.request_id,
        retry_after=error.retry_after,
        inner_code=error.inner_code,
        known=(password,),
    )


class VaultSettings:
    """Issuer and contact calls of KeyVaultClient (which sets `_session`)."""

    _session: VaultSession

    # --- issuers --------------------------------------------------------------------------------

    async def get_issuer(self, name: str) -> Issuer:
        """REST: GetCertificateIssuer. NotFound (404 CertificateIssuerNotFound) when absent."""
        response = await self._session.call("GET", f"/certificates/issuers/{object_name(name)}")
        return issuer_from_wire(name, parse_model(wire.IssuerBundle, response))

    async def set_issuer(
        self,
        name: str,
        provider: str,
        *,
        account_id: str | None = None,
        password: str | None = None,
        organization_id: str | None = None,
        administrators: Sequence[Administrator] = (),
        enabled: bool = True,
    ) -> Issuer:
        """Create or replace an issuer with exactly these settings (REST: SetCertificateIssuer,
        PUT): a field left out is not kept, the password included. The password is sent as
        `credentials.pwd` and redacted from any error this raises."""
        body = wire.CertificateIssuerSetParameters(
            provider=provider,
            **_issuer_fields(account_id, password, organization_id, administrators, enabled),
        )
        return await self._write_issuer("PUT", name, body, password)

    async def delete_issuer(self, name: str) -> Issuer:
        """REST: DeleteCertificateIssuer; the issuer as it was. NotFound when already gone."""
        response = await self._session.call("DELETE", f"/certificates/issuers/{object_name(name)}")
        return issuer_from_wire(name, parse_model(wire.IssuerBundle, response))

    async def _write_issuer(
        self, method: str, name: str, body: wire.Request, password: str | None
    ) -> Issuer:
        try:
            response = await self._session.call(
                method, f"/certificates/issuers/{object_name(name)}", body=body, idempotent=True
            )
        except KeyVaultHTTPError as error:
            # The session redacts a top-level `pwd`; an issuer's is nested in credentials.
            raise _redacted(error, password) from None
        return issuer_from_wire(name, parse_model(wire.IssuerBundle, response))

    # --- contacts -------------------------------------------------------------------------------

    async def get_contacts(self) -> tuple[Contact, ...]:
        """The vault's certificate contacts, in Key Vault's order (REST: GetCertificateContacts,
        GET /certificates/contacts). `()` when none are set: Key Vault answers 404
        ContactsNotFound then."""
        try:
            response = await self._session.call("GET", "/certificates/contacts")
        except NotFound:
            return ()
        return contacts_from_wire(parse_model(wire.Contacts, response))

    async def set_contacts(self, contacts: Sequence[Contact]) -> tuple[Contact, ...]:
        """Replace the vault's whole contact list (REST: SetCertificateContacts, PUT
        /certificates/contacts); returns the list Key Vault answered with. ValueError for an
        empty list: no contacts is `delete_contacts`."""
        if not contacts:
            raise ValueError("set_contacts needs at least one contact; use delete_contacts")
        body = wire.ContactsSetParameters(
            contacts=[
                wire.ContactIn(email=item.email, name=item.name or None, phone=item.phone or None)
                for item in contacts
            ]
        )
        response = await self._session.call(
            "PUT", "/certificates/contacts", body=body, idempotent=True
        )
        return contacts_from_wire(parse_model(wire.Contacts, response))

    async def delete_contacts(self) -> bool:
        """Delete the vault's contacts (REST: DeleteCertificateContacts, DELETE
        /certificates/contacts). False when there were none (404: already done)."""
        try:
            await self._session.call("DELETE", "/certificates/contacts")
        except NotFound:
            return False
        return True
