"""The closed set of reasons: the same strings in conditions, events and metrics.

Each member's comment is its one-line meaning. A closed set lets dashboards and alerts match on
reasons safely: a new reason is a reviewed change here, never a string made up at a call site.
"""

from __future__ import annotations

import enum


class Reason(enum.StrEnum):
    # progress
    ISSUING = "Issuing"  # a Key Vault operation for the current spec is in progress
    CREATED = "Created"  # Key Vault accepted the create; its pending operation is followed
    ADOPTED = "Adopted"  # an earlier operation of ours, or (spec.adopt) a certificate, adopted
    AWAITING_MERGE = "AwaitingMerge"  # a manual request waits for a signed chain in mergeFrom
    CANCELLING = "Cancelling"  # cancellation was requested; the issuer has not acted yet
    SUPERSEDED = "Superseded"  # the spec changed while the previous spec's operation runs
    MERGED = "Merged"  # the signed chain was merged into the pending operation
    IMPORTED = "Imported"  # the certificate was imported from importFrom
    ISSUED = "Issued"  # the certificate is issued and delivered to the output Secret
    RENEWING = "Renewing"  # a renewal is in progress; the current version still serves
    RENEWED = "Renewed"  # a new version replaced the previous one in the output Secret
    UPDATED = "Updated"  # lifetimeActions or tags were applied in Key Vault in place
    SECRET_RESTORED = "SecretRestored"  # noqa: S105 - the output Secret was rebuilt after a loss or edit
    RECOVERING = "Recovering"  # the soft-deleted name is being recovered (onSoftDeleted: Recover)
    RECOVERED = "Recovered"  # the soft-deleted certificate was recovered; the request goes on
    # the operation ended without a certificate
    OPERATION_FAILED = "OperationFailed"  # the issuer failed or rejected the request
    OPERATION_CANCELLED = "OperationCancelled"  # the request was cancelled
    OPERATION_DELETED = "OperationDeleted"  # the pending operation was deleted out of band
    EXPIRED = "Expired"  # the delivered version is past notAfter and no newer one was issued
    # refusals that need a human
    INVALID_SPEC = "InvalidSpec"  # the spec does not satisfy the resource's rules
    CONFLICT = "Conflict"  # a pending operation that is not ours blocks the create or import
    NAME_SOFT_DELETED = "NameSoftDeleted"  # the name is soft-deleted: recover or purge it first
    REJECTED = "Rejected"  # Key Vault refused the create or import as invalid
    CANCEL_REFUSED = "CancelRefused"  # Key Vault refused the cancellation (not in progress)
    MERGE_FORBIDDEN = "MergeForbidden"  # merge refused while an issuer's request is in progress
    MERGE_REJECTED = "MergeRejected"  # the chain does not parse or does not match the key
    MERGE_SECRET_INVALID = "MergeSecretInvalid"  # noqa: S105 - mergeFrom's Secret has no usable tls.crt
    IMPORT_SECRET_MISSING = "ImportSecretMissing"  # noqa: S105 - importFrom's Secret does not exist (yet)
    IMPORT_SECRET_INVALID = "ImportSecretInvalid"  # noqa: S105 - importFrom's Secret holds no PFX or PEM+key
    SECRET_CONFLICT = "SecretConflict"  # noqa: S105 - the output Secret exists and is not managed by kvcert
    KEY_NOT_EXPORTABLE = "KeyNotExportable"  # an output (Existing: tls.key) needs a private key
    OUTPUT_REFUSED = "OutputRefused"  # an output format cannot be built (PKCS12 password missing)
    CERTIFICATE_MISSING = "CertificateMissing"  # the operation completed but no certificate
    SECRET_MISSING = "SecretMissing"  # noqa: S105 - the output Secret is gone; being rebuilt
    SECRET_MISMATCH = "SecretMismatch"  # noqa: S105 - the output Secret was edited; being rebuilt
    UPDATE_REFUSED = "UpdateRefused"  # Key Vault refused the in-place update of policy or tags
    NOT_OWNED = "NotOwned"  # the Key Vault certificate is not managed by this resource
    # source Existing (issue #19 §3): kvcert only delivers; each is looked at again at refresh
    CERTIFICATE_NOT_FOUND = "CertificateNotFound"  # no Key Vault certificate of that name
    CERTIFICATE_NOT_ISSUED = "CertificateNotIssued"  # only a pending version exists, not issued
    CERTIFICATE_DISABLED = "CertificateDisabled"  # the current version is disabled in Key Vault
    RELEASED = "Released"  # source changed to Existing: no longer managed, nothing deleted
    # waiting on something outside
    VAULT_NOT_READY = "VaultNotReady"  # the referenced KeyVault is missing or not Ready
    KEY_VAULT_ERROR = "KeyVaultError"  # a call failed transiently; it is retried with backoff
    THROTTLED = "Throttled"  # Key Vault or the API server asked to slow down
    ACCESS_DENIED = "AccessDenied"  # the credentials may not do this; retried with backoff
    # deletion
    PENDING_DELETED = "PendingDeleted"  # the pending operation was deleted (DeletePending)
    CERTIFICATE_DELETED = "CertificateDeleted"  # soft-deleted (deletionPolicy Delete, or by hand)
    VAULT_MISSING = "VaultMissing"  # the vault is gone: nothing could be cleaned up in it


NORMAL = frozenset(
    {
        Reason.ISSUING,
        Reason.CREATED,
        Reason.ADOPTED,
        Reason.AWAITING_MERGE,
        Reason.CANCELLING,
        Reason.SUPERSEDED,
        Reason.MERGED,
        Reason.IMPORTED,
        Reason.ISSUED,
        Reason.RENEWING,
        Reason.RENEWED,
        Reason.UPDATED,
        Reason.SECRET_RESTORED,
        Reason.RECOVERING,
        Reason.RECOVERED,
        Reason.PENDING_DELETED,
        Reason.CERTIFICATE_DELETED,
        Reason.RELEASED,
    }
)
"""Reasons whose events are `Normal`; every other reason is worth a `Warning`."""
