"""What reconcile asks the handler to do: typed, ordered, and free of key material.

Every action but `Emit` is an *effect*: the handler performs it, turns its result into an
`Outcome` with `kvcert.reconcile.outcomes.outcome_of`, folds that into the `Input`, and asks
reconcile again. `Emit` is fire-and-forget.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from kvcert.api.certificate import ContentType, LifetimeAction, Policy
from kvcert.api.outputs import OutputFormat


@dataclass(frozen=True)
class RecordIntent:
    """Merge-patch `status` with `patch` NOW, before the next action: the crash-safety write."""

    patch: Mapping[str, Any]
    effect: ClassVar[bool] = True


@dataclass(frozen=True)
class CreateCertificate:
    """POST /certificates/{name}/create with `policy` and `tags` (expect 202 and an operation)."""

    certificate_name: str
    policy: Policy
    tags: Mapping[str, str] = field(default_factory=dict)
    effect: ClassVar[bool] = True


@dataclass(frozen=True)
class ImportCertificate:
    """POST /certificates/{name}/import with the PFX or PEM read from `secret_name`.

    `fingerprint` is the one the decision was made on: if the Secret now holds something else,
    the handler fails the action with `CallError(412, "SourceChanged")` rather than import
    unseen content; that maps to a retry, which reads the Secret again.
    """

    certificate_name: str
    secret_name: str
    fingerprint: str
    password_key: str | None = None
    policy: Policy | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    effect: ClassVar[bool] = True


@dataclass(frozen=True)
class ReadOperation:
    """GET /certificates/{name}/pending (404 is an answer, not an error)."""

    certificate_name: str
    effect: ClassVar[bool] = True


@dataclass(frozen=True)
class ReadCertificate:
    """GET /certificates/{name}/ (the latest version; 404 is an answer)."""

    certificate_name: str
    effect: ClassVar[bool] = True


@dataclass(frozen=True)
class CancelOperation:
    """PATCH /certificates/{name}/pending {cancellation_requested: true}, once."""

    certificate_name: str
    effect: ClassVar[bool] = True


@dataclass(frozen=True)
class DeletePendingOperation:
    """DELETE /certificates/{name}/pending (deletionPolicy DeletePending)."""

    certificate_name: str
    effect: ClassVar[bool] = True


@dataclass(frozen=True)
class MergeChain:
    """POST /certificates/{name}/pending/merge with the chain (tls.crt) of `secret_name`."""

    certificate_name: str
    secret_name: str
    fingerprint: str
    effect: ClassVar[bool] = True


@dataclass(frozen=True)
class DeleteCertificate:
    """DELETE /certificates/{name} (soft delete; deletionPolicy Delete)."""

    certificate_name: str
    effect: ClassVar[bool] = True


@dataclass(frozen=True)
class RecoverCertificate:
    """POST /deletedcertificates/{name}/recover (spec.onSoftDeleted: Recover): once per refused
    request; the certificate is then read until the recovery has completed."""

    certificate_name: str
    effect: ClassVar[bool] = True


@dataclass(frozen=True)
class UpdateInPlace:
    """Apply what Key Vault changes without a new version (issue #15 §3): PATCH .../policy
    with `lifetime_actions` when not None (or the whole `policy` when not None: an adoption,
    issue #19 §3; Key Vault uses it for the next version), then PATCH /certificates/{name}/
    with `tags` when not None. `digest` is what status.appliedUpdate records once both
    succeeded."""

    certificate_name: str
    digest: str
    lifetime_actions: tuple[LifetimeAction, ...] | None = None
    tags: Mapping[str, str] | None = None
    policy: Policy | None = None
    effect: ClassVar[bool] = True


@dataclass(frozen=True)
class ReadSecret:
    """GET the output Secret and report `SecretFacts` (never its data)."""

    secret_name: str
    effect: ClassVar[bool] = True


@dataclass(frozen=True)
class ReadMergeSecret:
    """GET the mergeFrom Secret and report `SourceFacts` (fingerprint of tls.crt)."""

    secret_name: str
    effect: ClassVar[bool] = True


@dataclass(frozen=True)
class ReadImportSecret:
    """GET the importFrom Secret and report `SourceFacts` (fingerprint, PFX or PEM)."""

    secret_name: str
    password_key: str | None = None
    effect: ClassVar[bool] = True


@dataclass(frozen=True)
class WriteSecret:
    """Fetch Key Vault's secret of `certificate_name`/`version` and write the kubernetes.io/tls
    Secret `secret_name` (tls.crt leaf then chain, tls.key when exportable, ca.crt), labelled as
    managed by kvcert with `x5t` and `version` so the next reconcile can tell it is current."""

    secret_name: str
    certificate_name: str
    version: str
    x5t: str
    content_type: ContentType = ContentType.PKCS12
    labels: tuple[tuple[str, str], ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()
    """From spec.secretTemplate; the operator's own keys win over these."""
    formats: tuple[OutputFormat, ...] = ()
    """spec.additionalOutputFormats (the PKCS12 password is read when writing, never here)."""
    output_hash: str | None = None
    """Digest of the output-shaping spec, recorded on the Secret; None when nothing shapes it."""
    effect: ClassVar[bool] = True


@dataclass(frozen=True)
class WriteCsrConfigMap:
    """Create or update the ConfigMap `name` with the CSR (key `csr.pem`) of a manual request."""

    name: str
    certificate_name: str
    csr_pem: str
    exists: bool = False
    """Likely there already (a renewal): replace first, create if it is not."""
    effect: ClassVar[bool] = True


@dataclass(frozen=True)
class Emit:
    """Record a Kubernetes event on the Certificate. Fire-and-forget."""

    type: Literal["Normal", "Warning"]
    reason: str
    message: str
    effect: ClassVar[bool] = False


Action = (
    RecordIntent
    | CreateCertificate
    | ImportCertificate
    | ReadOperation
    | ReadCertificate
    | CancelOperation
    | DeletePendingOperation
    | MergeChain
    | DeleteCertificate
    | RecoverCertificate
    | UpdateInPlace
    | ReadSecret
    | ReadMergeSecret
    | ReadImportSecret
    | WriteSecret
    | WriteCsrConfigMap
    | Emit
)
