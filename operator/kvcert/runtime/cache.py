"""What the watches already told the operator, kept so that the steady path reads nothing
(issue #17: 0 API reads per certificate from apply to Ready).

- `LatestBodies`: the newest body of each Certificate whose next reconcile is due soon (an
  operation in progress is polled after Retry-After). A scheduled round starts from it instead
  of a GET. Only short waits keep a body: an idle Ready Certificate, whose next round is its
  renewal months away, holds none (DESIGN §5: idle costs nothing), and that round reads afresh.
- `OutputSecrets`: what each output Secret's watch event (kopf's watch, narrowed by the
  server-side label selector `kvcert.runtime.kube.OUTPUT_SELECTOR`) and the operator's own
  writes said of it: resourceVersion, type, and the facts reconcile needs (kvcert.reconcile.facts
  .SecretFacts), never its data. A Secret the cache does not know is read (GET) as before,
  except for a Certificate that never delivered one, whose write is a create that a 409 turns
  back into a read (kvcert.runtime.perform).

Bodies are never mutated here: each is a plain dict from a watch event or a patch response.
Which of two bodies is newer is told by `metadata.resourceVersion`, compared as integers (etcd
revisions, as every API server in use writes them); one that is not an integer always wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kvcert.reconcile.facts import SecretFacts
from kvcert.runtime.kube import (
    MANAGED_BY,
    OUTPUT_HASH_ANNOTATION,
    UID_ANNOTATION,
    VERSION_ANNOTATION,
    X5T_ANNOTATION,
)
from kvcert.runtime.sources import intact

KEEP_BODY_SECONDS = 600.0
"""A scheduled round at most this many seconds away starts from the kept body; a later one
(a renewal point, a long back-off) reads the object when it comes."""


def _revision(body: Mapping[str, Any]) -> int | None:
    text = (body.get("metadata") or {}).get("resourceVersion")
    try:
        return int(text) if text is not None else None
    except (TypeError, ValueError):
        return None


def newer(candidate: Mapping[str, Any], current: Mapping[str, Any]) -> bool:
    """Whether `candidate` is at least as new as `current` (by resourceVersion); True when
    either cannot be compared."""
    a, b = _revision(candidate), _revision(current)
    return a is None or b is None or a >= b


class LatestBodies:
    """uid -> the newest known body, for Certificates with a reconcile due within
    KEEP_BODY_SECONDS."""

    def __init__(self) -> None:
        self._bodies: dict[str, dict[str, Any]] = {}

    def __len__(self) -> int:
        return len(self._bodies)

    def keep(self, body: dict[str, Any], delay: float | None) -> None:
        """After a round: keep `body` (the newest the round knows) when the next round is
        `delay` <= KEEP_BODY_SECONDS away, else drop what was kept."""
        uid = (body.get("metadata") or {}).get("uid")
        if not uid:
            return
        if delay is None or delay > KEEP_BODY_SECONDS:
            self._bodies.pop(uid, None)
            return
        current = self._bodies.get(uid)
        if current is None or newer(body, current):
            self._bodies[uid] = body

    def offer(self, body: Mapping[str, Any], *, running: bool = False) -> None:
        """A watch event's body (kopf's view of the event's parsed JSON, which kopf never
        changes afterwards for an object without daemons): replaces the kept one of the same
        uid when not older, as a shallow copy; kept even without one when a round of that
        uid is `running` (it took the kept body, and must not end on an older one)."""
        uid = (body.get("metadata") or {}).get("uid")
        if not isinstance(uid, str):
            return
        current = self._bodies.get(uid)
        if (current is None and running) or (current is not None and newer(body, current)):
            self._bodies[uid] = dict(body)

    def take(self, uid: str) -> dict[str, Any] | None:
        """The kept body of `uid`, removed; None when none is kept."""
        return self._bodies.pop(uid, None)

    def forget(self, uid: str) -> None:
        self._bodies.pop(uid, None)


@dataclass(frozen=True, slots=True)
class KnownSecret:
    """An output Secret as last seen: enough to write over it and to judge it, no data."""

    resource_version: str | None
    type: str | None
    managed: bool
    uid_annotation: str | None
    owner_uids: tuple[str, ...]
    x5t: str | None
    version: str | None
    output_hash: str | None
    intact: bool

    def facts(self, uid: str) -> SecretFacts:
        """As kvcert.runtime.sources.output_facts would read it for the Certificate `uid`."""
        ours = self.managed and (self.uid_annotation == uid or uid in self.owner_uids)
        return SecretFacts(
            exists=True,
            ours=ours,
            x5t=self.x5t if ours else None,
            version=self.version if ours else None,
            output_hash=self.output_hash if ours else None,
            intact=self.intact if ours else True,
        )

    @classmethod
    def from_body(cls, body: Mapping[str, Any], *, data_intact: bool | None = None) -> KnownSecret:
        """From a Secret as JSON (a watch event's body); `data_intact` when the caller already
        knows (its own write), else computed from the data hash annotation."""
        meta = body.get("metadata") or {}
        annotations = meta.get("annotations") or {}
        labels = meta.get("labels") or {}
        owners = tuple(str(ref.get("uid")) for ref in meta.get("ownerReferences") or [])
        if data_intact is None:
            data_intact = intact(annotations, body.get("data"))
        return cls(
            resource_version=meta.get("resourceVersion"),
            type=body.get("type"),
            managed=labels.get(MANAGED_BY) == "kvcert",
            uid_annotation=annotations.get(UID_ANNOTATION),
            owner_uids=owners,
            x5t=annotations.get(X5T_ANNOTATION),
            version=annotations.get(VERSION_ANNOTATION),
            output_hash=annotations.get(OUTPUT_HASH_ANNOTATION),
            intact=data_intact,
        )


class OutputSecrets:
    """(namespace, Secret name) -> KnownSecret, from output Secret events and own writes."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, str], KnownSecret] = {}
        self._gone: dict[tuple[str, str], str | None] = {}
        """resourceVersion of each deletion seen: an older state arriving later (a read or a
        write answered before the deletion) is not taken for the Secret's."""

    def __len__(self) -> int:
        return len(self._known)

    def get(self, namespace: str, name: str) -> KnownSecret | None:
        return self._known.get((namespace, name))

    def seen(self, body: Mapping[str, Any], *, deleted: bool = False) -> KnownSecret | None:
        """A watch event of an output Secret (ADDED, MODIFIED, listed, or DELETED); the state
        now known (None once deleted). The echo of a state already known (the operator's own
        write, same resourceVersion) is not hashed again."""
        meta = body.get("metadata") or {}
        key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        if deleted:
            current = self._known.get(key)
            gone = meta.get("resourceVersion")
            if (
                current is not None
                and gone is not None
                and current.resource_version != gone
                and newer(
                    {"metadata": {"resourceVersion": current.resource_version}},
                    {"metadata": {"resourceVersion": gone}},
                )
            ):
                # The deletion of an older state: the operator's own delete and create (a
                # Secret whose type changed) already recorded the new one.
                return current
            self._known.pop(key, None)
            self._gone[key] = gone
            return None
        current = self._known.get(key)
        version = meta.get("resourceVersion")
        if current is not None and version is not None and current.resource_version == version:
            return current
        self.record(key[0], key[1], KnownSecret.from_body(body))
        return self._known.get(key)

    def record(self, namespace: str, name: str, known: KnownSecret) -> None:
        """Remember `known` unless a newer state of the same Secret is already known."""
        key = (namespace, name)
        current = self._known.get(key)
        if current is not None and not _at_least(known, current):
            return
        if key in self._gone:
            gone = KnownSecret(self._gone[key], None, False, None, (), None, None, None, True)
            if not _at_least(known, gone) or known.resource_version == gone.resource_version:
                return  # the state before the deletion
            del self._gone[key]
        self._known[key] = known

    def forget(self, namespace: str, name: str) -> None:
        """Drop what is known (a read found no such Secret)."""
        self._known.pop((namespace, name), None)


def _at_least(candidate: KnownSecret, current: KnownSecret) -> bool:
    return newer(
        {"metadata": {"resourceVersion": candidate.resource_version}},
        {"metadata": {"resourceVersion": current.resource_version}},
    )


def known_from_model(secret: Any, *, data_intact: bool | None = None) -> KnownSecret:
    """KnownSecret of a Secret as the Kubernetes client returns it (a V1Secret model)."""
    meta = secret.metadata
    body = {
        "metadata": {
            "resourceVersion": meta.resource_version if meta else None,
            "labels": (meta.labels if meta else None) or {},
            "annotations": (meta.annotations if meta else None) or {},
            "ownerReferences": [{"uid": ref.uid} for ref in (meta.owner_references or [])]
            if meta
            else [],
        },
        "type": secret.type,
        "data": secret.data,
    }
    return KnownSecret.from_body(body, data_intact=data_intact)
