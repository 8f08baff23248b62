"""Which live kvcert resource manages which Key Vault issuer, in this process's memory
(issue #19 §2 review: a CertificateIssuer and a ClusterCertificateIssuer naming the same issuer
in the same vault must not both write it, adoption or not).

Keys are (vault URL, issuer name) in lower case (hosts and Key Vault names are
case-insensitive); values the uid of the resource. A resource claims its issuer when its status
says it manages it (seen in any event, so a re-list restores the index) or when a round writes
it; it releases it when it lets go (deleted, disowned). A claim whose holder is no longer live
(`live`) is void.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Key = tuple[str, str]


def claim_key(vault_url: str, issuer_name: str) -> Key:
    """The index key of issuer `issuer_name` in the vault at `vault_url`."""
    return vault_url.lower(), issuer_name.lower()


class IssuerClaims:
    """The index; `describe(uid)` names a live resource ("Kind ns/name"), "" when not live."""

    def __init__(self, describe: Callable[[str], str]) -> None:
        self._describe = describe
        self._claims: dict[Key, str] = {}
        self._claim_of: dict[str, Key] = {}

    def seen(self, uid: str, body: Mapping[str, Any]) -> None:
        """An object whose status says it manages an issuer claims it, unless a live other
        resource holds the claim."""
        status, spec = body.get("status") or {}, body.get("spec") or {}
        url = status.get("vaultURL")
        if status.get("managed") is True and isinstance(url, str) and url:
            name = str(spec.get("issuerName") or (body.get("metadata") or {}).get("name", ""))
            key = claim_key(url, name)
            if not self.held_by_other(uid, key):
                self.claim(uid, key)

    def held_by_other(self, uid: str, key: Key) -> str:
        """The live resource other than `uid` that manages `key` ("Kind ns/name"), or ""."""
        other = self._claims.get(key)
        if other is None or other == uid:
            return ""
        return self._describe(other)

    def claim(self, uid: str, key: Key) -> None:
        if self._claim_of.get(uid) != key:
            self.release(uid)
        self._claims[key] = uid
        self._claim_of[uid] = key

    def release(self, uid: str) -> None:
        key = self._claim_of.pop(uid, None)
        if key is not None and self._claims.get(key) == uid:
            del self._claims[key]
