"""Facts the handler gathers from the cluster, reduced to what decisions need.

They say *that* a Secret exists and *which* content it holds (a fingerprint), never the content:
nothing in an `Input` may be a secret, so an `Input` can be logged and put in a test table.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SecretFacts:
    """The output kubernetes.io/tls Secret, from its labels (written by `WriteSecret`)."""

    exists: bool
    ours: bool = False
    """Managed by kvcert for this Certificate (label or ownerReference)."""
    x5t: str | None = None
    version: str | None = None
    output_hash: str | None = None
    """The digest of secretTemplate and additionalOutputFormats the Secret was written with."""
    intact: bool = True
    """The Secret's data is what the operator wrote: its `kvcert.io/data-hash` annotation (sha256
    of the data as written) matches, or is absent (written before the annotation existed).
    False when someone edited the data: the Secret needs rewriting."""

    @classmethod
    def absent(cls) -> SecretFacts:
        return cls(exists=False)


@dataclass(frozen=True)
class SourceFacts:
    """A Secret the operator reads from: mergeFrom (a signed chain) or importFrom (PFX or PEM).

    `fingerprint` is a digest of the usable content (tls.crt for merge; the PFX or the PEM pair
    for import), None when the Secret exists but holds nothing usable.
    """

    exists: bool
    fingerprint: str | None = None
    chain_pem_length: int = 0
    format: str | None = None
    """`pfx` or `pem` for an import source."""
    watched: bool = False
    """Labelled `kvcert.io/source: "true"`: the operator watches it (kvcert.runtime.sourcewatch)
    and reconciles its readers on every change, so no timed re-check is needed."""
    problem: str | None = None
    """importFrom only: why the Secret holds nothing usable (names keys, never values)."""
    leaf_x5t: str | None = None
    """mergeFrom only: x5t (base64url, no padding, of the SHA-1 of the DER) of the chain's leaf
    in kvcert.chain's order; None when tls.crt holds no readable chain."""

    @classmethod
    def absent(cls) -> SourceFacts:
        return cls(exists=False)


@dataclass(frozen=True)
class VaultFacts:
    """The KeyVault or ClusterKeyVault the Certificate refers to."""

    ready: bool = True
    missing: bool = False
    message: str = ""

    @classmethod
    def absent(cls, message: str = "") -> VaultFacts:
        return cls(ready=False, missing=True, message=message)
