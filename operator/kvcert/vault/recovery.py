"""Soft delete, recovery, purge, backup and restore of certificates.

Deletion completes at once (so `GET /deletedcertificates/{n}` answers 200 on the SDK poller's
first try). Backups are Fernet-encrypted with a key kept in the vault's store, like Key Vault's
opaque blobs: only the vault that made a backup can restore it.
"""

from __future__ import annotations

import base64
import json

from cryptography.fernet import Fernet, InvalidToken

from kvcert.vault import views
from kvcert.vault.errors import VaultError, bad_parameter, deleted_not_found
from kvcert.vault.service import VaultService
from kvcert.vault.store import Doc
from kvcert.vault.views import Ctx

PURGE_AFTER = 90 * 86400


class Recovery:
    """The deleted-certificate lifecycle, over the same store as the service."""

    def __init__(self, service: VaultService) -> None:
        self.service = service
        self.store = service.store

    def delete(self, ctx: Ctx, name: str) -> Doc:
        cert = self.service.certificate(name)
        now = self.service.clock()
        body = self.service.render_current(ctx, name, cert)
        body.pop("pending", None)
        cert = {**cert, "deleted_date": now, "scheduled_purge_date": now + PURGE_AFTER}
        with self.store.transaction():
            self.store.delete_operation(name)
            self.store.put_certificate(name, cert, deleted=True)
        return views.deleted(ctx, name, cert, body)

    def _deleted(self, name: str) -> Doc:
        found = self.store.get_certificate(name)
        if found is None or not found[1]:
            raise deleted_not_found(name)
        return found[0]

    def get(self, ctx: Ctx, name: str) -> Doc:
        cert = self._deleted(name)
        return views.deleted(ctx, name, cert, self.service.render_current(ctx, name, cert))

    def list(self, ctx: Ctx, include_pending: bool = False) -> list[Doc]:
        """Deleted certificates; one that never had an issued version (deleted while pending)
        only with `includePending=true`, as `GET /certificates` lists pending ones."""
        out = []
        for name, cert in self.store.list_certificates(deleted=True):
            latest = self.store.get_version(name, None)
            if latest is not None:
                entry = views.item(ctx, name, None, latest[1], None)
            elif include_pending:
                entry = views.bare_item(ctx, name, cert)
            else:
                continue
            out.append(views.deleted(ctx, name, cert, entry))
        return out

    def recover(self, ctx: Ctx, name: str) -> Doc:
        cert = self._deleted(name)
        cert = {k: v for k, v in cert.items() if k not in ("deleted_date", "scheduled_purge_date")}
        self.store.put_certificate(name, cert, deleted=False)
        return self.service.render_current(ctx, name, cert)

    def purge(self, name: str) -> None:
        self._deleted(name)
        self.store.purge_certificate(name)

    def _fernet(self) -> Fernet:
        key = self.store.get_meta("backup.key")
        if key is None:
            key = Fernet.generate_key()
            self.store.put_meta("backup.key", key)
        return Fernet(key)

    def backup(self, name: str) -> Doc:
        cert = self.service.certificate(name)
        versions = [
            {"version": v, "doc": d, "key": k.decode() if k else None}
            for v, d, k in self.store.versions_with_keys(name)
        ]
        blob = json.dumps({"name": name, "certificate": cert, "versions": versions}).encode()
        token = self._fernet().encrypt(blob)
        return {"value": base64.urlsafe_b64encode(token).rstrip(b"=").decode()}

    def restore(self, ctx: Ctx, value: str) -> Doc:
        try:
            padded = value + "=" * (-len(value) % 4)
            data = json.loads(self._fernet().decrypt(base64.urlsafe_b64decode(padded)))
            name, cert, versions = data["name"], data["certificate"], data["versions"]
        except (InvalidToken, ValueError, KeyError, TypeError) as exc:
            raise bad_parameter("Backup blob contains invalid data.") from exc
        if self.store.get_certificate(name) is not None:
            raise VaultError(409, "Conflict", f"Certificate {name} already exists.")
        with self.store.transaction():
            self.store.put_certificate(name, cert)
            for entry in versions:
                key = entry["key"].encode() if entry["key"] else None
                self.store.put_version(name, entry["version"], entry["doc"], key)
        return self.service.render_current(ctx, name, cert)
