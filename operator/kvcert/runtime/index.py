"""What the operator remembers of each Certificate to route Secret events to it, in memory.

Filled from Certificate events (every Certificate is seen at start-up, so the index is complete
once kopf's first listing is processed) and emptied when one is deleted. Per Certificate it
keeps its uid, its output Secret's name and the source Secrets it reads (spec.mergeFrom and
spec.importFrom): a few strings, no task and no timer.

- `owner(namespace, secret)`: the Certificate whose output Secret this is (from the Secret's
  `kvcert.io/certificate` label, checked against the Certificate's spec.secretName).
- `readers(namespace, secret)`: the Certificates that read this Secret as a source.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Indexed:
    """One Certificate as the index knows it."""

    uid: str
    secret_name: str | None
    sources: frozenset[str]


def _sources(spec: Mapping[str, Any]) -> frozenset[str]:
    names = set()
    for key in ("mergeFrom", "importFrom"):
        ref = spec.get(key)
        if isinstance(ref, Mapping) and isinstance(ref.get("secretName"), str):
            names.add(ref["secretName"])
    return frozenset(names)


class CertificateIndex:
    """(namespace, Certificate name) -> Indexed, and (namespace, source Secret) -> readers."""

    def __init__(self) -> None:
        self._certificates: dict[tuple[str, str], Indexed] = {}
        self._readers: dict[tuple[str, str], set[str]] = {}

    def __len__(self) -> int:
        return len(self._certificates)

    def remember(self, body: Mapping[str, Any]) -> None:
        """Record (or update) a Certificate from its body (metadata and spec)."""
        meta, spec = body.get("metadata") or {}, body.get("spec") or {}
        namespace, name, uid = meta.get("namespace"), meta.get("name"), meta.get("uid")
        if not (namespace and name and uid):
            return
        secret_name = spec.get("secretName") if isinstance(spec, Mapping) else None
        entry = Indexed(
            uid=str(uid),
            secret_name=secret_name if isinstance(secret_name, str) else None,
            sources=_sources(spec) if isinstance(spec, Mapping) else frozenset(),
        )
        previous = self._certificates.get((namespace, name))
        if previous == entry:
            return
        self._unlink(namespace, name, previous)
        self._certificates[(namespace, name)] = entry
        for source in entry.sources:
            self._readers.setdefault((namespace, source), set()).add(name)

    def forget(self, namespace: str, name: str, uid: str | None = None) -> None:
        """Drop a deleted Certificate (only the one with `uid`, when given)."""
        previous = self._certificates.get((namespace, name))
        if previous is None or (uid is not None and previous.uid != uid):
            return
        self._unlink(namespace, name, previous)
        del self._certificates[(namespace, name)]

    def get(self, namespace: str, name: str) -> Indexed | None:
        return self._certificates.get((namespace, name))

    def owner(self, namespace: str, certificate: str, secret: str) -> Indexed | None:
        """The Certificate `certificate` when its output Secret is `secret`, else None."""
        found = self._certificates.get((namespace, certificate))
        return found if found is not None and found.secret_name == secret else None

    def readers(self, namespace: str, secret: str) -> list[tuple[str, str]]:
        """(name, uid) of each Certificate that reads Secret `secret` as a source, by name."""
        names = sorted(self._readers.get((namespace, secret), ()))
        return [(name, self._certificates[(namespace, name)].uid) for name in names]

    def _unlink(self, namespace: str, name: str, previous: Indexed | None) -> None:
        if previous is None:
            return
        for source in previous.sources:
            readers = self._readers.get((namespace, source))
            if readers is not None:
                readers.discard(name)
                if not readers:
                    del self._readers[(namespace, source)]
