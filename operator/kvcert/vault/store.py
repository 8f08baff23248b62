"""SQLite persistence of the local vault: the only module that speaks SQL.

Every mutating call commits before it returns, and the server answers only after that, so a
`kill -9` loses no acknowledged write (WAL with synchronous=NORMAL survives a process crash; it
is a power loss that could drop the last transactions, which a test vault need not survive).
Records are JSON documents keyed by name; the few fields the service queries on (status, due
time, order) are real columns. The connection is used from the event loop thread only: each call
is a short local transaction, cheaper than a thread hop.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

Doc = dict[str, Any]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS certificates (name TEXT PRIMARY KEY, deleted INTEGER NOT NULL,
    doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS versions (seq INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL,
    version TEXT NOT NULL, doc TEXT NOT NULL, key_pem BLOB, UNIQUE (name, version));
CREATE TABLE IF NOT EXISTS operations (name TEXT PRIMARY KEY, request_id TEXT NOT NULL,
    status TEXT NOT NULL, due REAL, doc TEXT NOT NULL, key_pem BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS issuers (name TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS contacts (id INTEGER PRIMARY KEY CHECK (id = 1), doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS lifetime_actions (seq INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL, version TEXT NOT NULL, action TEXT NOT NULL, doc TEXT NOT NULL,
    UNIQUE (name, version, action));
"""


class Store:
    """Typed access to the vault's tables; `transaction()` groups writes into one commit."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._depth = 0
        self.generation = 0
        """Bumped by every committed write: lets a caller cache what it derived from the state."""

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside commit together, or none do (nested calls join the outer one)."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")
            self.generation += 1
        finally:
            self._depth = 0

    def _one(self, sql: str, *args: Any) -> Any:
        return self._db.execute(sql, args).fetchone()

    # certificates -------------------------------------------------------------------------
    def get_certificate(self, name: str) -> tuple[Doc, bool] | None:
        """The certificate object and whether it is soft-deleted."""
        row = self._one("SELECT doc, deleted FROM certificates WHERE name = ?", name)
        return (json.loads(row[0]), bool(row[1])) if row else None

    def put_certificate(self, name: str, doc: Doc, deleted: bool = False) -> None:
        with self.transaction():
            self._db.execute(
                "INSERT INTO certificates (name, deleted, doc) VALUES (?, ?, ?) ON CONFLICT(name)"
                " DO UPDATE SET deleted = excluded.deleted, doc = excluded.doc",
                (name, int(deleted), json.dumps(doc)),
            )

    def list_certificates(self, deleted: bool) -> list[tuple[str, Doc]]:
        rows = self._db.execute(
            "SELECT name, doc FROM certificates WHERE deleted = ? ORDER BY name", (int(deleted),)
        )
        return [(r[0], json.loads(r[1])) for r in rows]

    def purge_certificate(self, name: str) -> None:
        """Forget a certificate entirely: object, versions (with keys) and operation."""
        with self.transaction():
            for table in ("certificates", "versions", "operations"):
                self._db.execute(f"DELETE FROM {table} WHERE name = ?", (name,))  # noqa: S608

    # versions ------------------------------------------------------------------------------
    def put_version(self, name: str, version: str, doc: Doc, key_pem: bytes | None) -> None:
        with self.transaction():
            self._db.execute(
                "INSERT INTO versions (name, version, doc, key_pem) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(name, version) DO UPDATE SET doc = excluded.doc",
                (name, version, json.dumps(doc), key_pem),
            )

    def get_version(self, name: str, version: str | None) -> tuple[str, Doc] | None:
        """A version by id, or the latest when `version` is None."""
        if version is None:
            row = self._one(
                "SELECT version, doc FROM versions WHERE name = ? ORDER BY seq DESC LIMIT 1", name
            )
        else:
            row = self._one(
                "SELECT version, doc FROM versions WHERE name = ? AND version = ?", name, version
            )
        return (row[0], json.loads(row[1])) if row else None

    def version_key(self, name: str, version: str) -> bytes | None:
        row = self._one(
            "SELECT key_pem FROM versions WHERE name = ? AND version = ?", name, version
        )
        return bytes(row[0]) if row and row[0] is not None else None

    def list_versions(self, name: str) -> list[tuple[str, Doc]]:
        rows = self._db.execute(
            "SELECT version, doc FROM versions WHERE name = ? ORDER BY seq", (name,)
        )
        return [(r[0], json.loads(r[1])) for r in rows]

    def versions_with_keys(self, name: str) -> list[tuple[str, Doc, bytes | None]]:
        rows = self._db.execute(
            "SELECT version, doc, key_pem FROM versions WHERE name = ? ORDER BY seq", (name,)
        )
        return [(r[0], json.loads(r[1]), bytes(r[2]) if r[2] else None) for r in rows]

    # operations ----------------------------------------------------------------------------
    def get_operation(self, name: str) -> tuple[Doc, bytes] | None:
        row = self._one("SELECT doc, key_pem FROM operations WHERE name = ?", name)
        return (json.loads(row[0]), bytes(row[1])) if row else None

    def put_operation(self, name: str, doc: Doc, key_pem: bytes, due: float | None) -> None:
        with self.transaction():
            self._db.execute(
                "INSERT INTO operations (name, request_id, status, due, doc, key_pem)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET"
                " request_id = excluded.request_id, status = excluded.status,"
                " due = excluded.due, doc = excluded.doc, key_pem = excluded.key_pem",
                (name, doc["request_id"], doc["status"], due, json.dumps(doc), key_pem),
            )

    def delete_operation(self, name: str) -> None:
        with self.transaction():
            self._db.execute("DELETE FROM operations WHERE name = ?", (name,))

    def due_operations(self, now: float) -> list[str]:
        rows = self._db.execute(
            "SELECT name FROM operations WHERE status = 'inProgress' AND due IS NOT NULL"
            " AND due <= ?",
            (now,),
        )
        return [r[0] for r in rows]

    # issuers, contacts, meta ---------------------------------------------------------------
    def get_issuer(self, name: str) -> Doc | None:
        row = self._one("SELECT doc FROM issuers WHERE name = ?", name)
        return json.loads(row[0]) if row else None

    def put_issuer(self, name: str, doc: Doc) -> None:
        with self.transaction():
            self._db.execute(
                "INSERT INTO issuers (name, doc) VALUES (?, ?)"
                " ON CONFLICT(name) DO UPDATE SET doc = excluded.doc",
                (name, json.dumps(doc)),
            )

    def delete_issuer(self, name: str) -> None:
        with self.transaction():
            self._db.execute("DELETE FROM issuers WHERE name = ?", (name,))

    def list_issuers(self) -> list[tuple[str, Doc]]:
        rows = self._db.execute("SELECT name, doc FROM issuers ORDER BY name")
        return [(r[0], json.loads(r[1])) for r in rows]

    def get_contacts(self) -> Doc | None:
        row = self._one("SELECT doc FROM contacts WHERE id = 1")
        return json.loads(row[0]) if row else None

    def put_contacts(self, doc: Doc | None) -> None:
        with self.transaction():
            self._db.execute("DELETE FROM contacts")
            if doc is not None:
                self._db.execute("INSERT INTO contacts (id, doc) VALUES (1, ?)", (json.dumps(doc),))

    def get_meta(self, key: str) -> bytes | None:
        row = self._one("SELECT value FROM meta WHERE key = ?", key)
        return bytes(row[0]) if row else None

    def put_meta(self, key: str, value: bytes) -> None:
        with self.transaction():
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    # lifetime actions ----------------------------------------------------------------------
    def lifetime_fired(self, name: str, version: str) -> set[str]:
        """The lifetime actions already performed for this version."""
        rows = self._db.execute(
            "SELECT action FROM lifetime_actions WHERE name = ? AND version = ?", (name, version)
        )
        return {r[0] for r in rows}

    def record_lifetime(self, name: str, version: str, action: str, doc: Doc) -> None:
        """Remember that `action` was performed for this version (once: a repeat is ignored)."""
        with self.transaction():
            self._db.execute(
                "INSERT OR IGNORE INTO lifetime_actions (name, version, action, doc)"
                " VALUES (?, ?, ?, ?)",
                (name, version, action, json.dumps(doc)),
            )

    def lifetime_records(self, action: str, name: str | None = None) -> list[Doc]:
        """What was recorded for `action`, oldest first, for one certificate or all."""
        sql = "SELECT doc FROM lifetime_actions WHERE action = ?"
        args: tuple[str, ...] = (action,)
        if name is not None:
            sql += " AND name = ?"
            args += (name,)
        return [json.loads(r[0]) for r in self._db.execute(sql + " ORDER BY seq", args)]
