"""The Key Vault REST surface, in matching order: fixed segments before `{name}` patterns."""

from __future__ import annotations

from starlette.routing import Route

from kvcert.vault.routes import certificates, deleted, pending, settings
from kvcert.vault.routes.common import kv

GET, PUT, POST, PATCH, DELETE = ["GET"], ["PUT"], ["POST"], ["PATCH"], ["DELETE"]


def key_vault_routes() -> list[Route]:
    return [
        kv("/certificates", certificates.list_, GET),
        kv("/certificates/", certificates.list_, GET),
        kv("/certificates/contacts", settings.get_contacts, GET),
        kv("/certificates/contacts", settings.set_contacts, PUT),
        kv("/certificates/contacts", settings.delete_contacts, DELETE),
        kv("/certificates/issuers", settings.list_issuers, GET),
        kv("/certificates/issuers/{issuer}", settings.get_issuer, GET),
        kv("/certificates/issuers/{issuer}", settings.set_issuer, PUT),
        kv("/certificates/issuers/{issuer}", settings.update_issuer, PATCH),
        kv("/certificates/issuers/{issuer}", settings.delete_issuer, DELETE),
        kv("/certificates/restore", certificates.restore, POST),
        kv("/certificates/{name}/create", certificates.create, POST),
        kv("/certificates/{name}/import", certificates.import_, POST),
        kv("/certificates/{name}/backup", certificates.backup, POST),
        kv("/certificates/{name}/pending", pending.get, GET),
        kv("/certificates/{name}/pending", pending.cancel, PATCH),
        kv("/certificates/{name}/pending", pending.delete, DELETE),
        kv("/certificates/{name}/pending/merge", pending.merge, POST),
        kv("/certificates/{name}/policy", certificates.get_policy, GET),
        kv("/certificates/{name}/policy", certificates.update_policy, PATCH),
        kv("/certificates/{name}/versions", certificates.versions, GET),
        kv("/certificates/{name}", certificates.get, GET),
        kv("/certificates/{name}", deleted.delete, DELETE),
        kv("/certificates/{name}/", certificates.get, GET),
        kv("/certificates/{name}/", certificates.update, PATCH),
        kv("/certificates/{name}/{version}", certificates.get, GET),
        kv("/certificates/{name}/{version}", certificates.update, PATCH),
        kv("/deletedcertificates", deleted.list_, GET),
        kv("/deletedcertificates/{name}", deleted.get, GET),
        kv("/deletedcertificates/{name}", deleted.purge, DELETE),
        kv("/deletedcertificates/{name}/recover", deleted.recover, POST),
        kv("/secrets/{name}", deleted.secret, GET),
        kv("/secrets/{name}/", deleted.secret, GET),
        kv("/secrets/{name}/{version}", deleted.secret, GET),
    ]
