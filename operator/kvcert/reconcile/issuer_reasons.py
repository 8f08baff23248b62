"""The closed set of CertificateIssuer / ClusterCertificateIssuer reasons (issue #19 §2).

The same strings in the Ready condition, in Events and in the Argo CD health check
(deploy/argocd/resource_customizations/kvcert.io/CertificateIssuer). Each member's comment is its
one-line meaning. Certificates' reasons live in kvcert.reconcile.reasons; an issuer deleted while
its vault is gone posts their VaultMissing event (the same meaning), never a Ready reason.
"""

from __future__ import annotations

import enum


class IssuerReason(enum.StrEnum):
    # done
    CONFIGURED = "Configured"  # Key Vault has the issuer as the spec says (Ready True)
    ADOPTED = "Adopted"  # an issuer kvcert did not manage was taken over (spec.adopt: true)
    DELETED = "Deleted"  # the issuer was deleted from Key Vault (deletionPolicy Delete)
    # waiting for something that may come by itself (retried with backoff)
    VAULT_NOT_READY = "VaultNotReady"  # the KeyVault / ClusterKeyVault cannot be used now
    PASSWORD_NOT_FOUND = "PasswordNotFound"  # noqa: S105 - the password Secret or key is missing
    KEY_VAULT_ERROR = "KeyVaultError"  # Key Vault failed or could not be reached
    # needs a human (Stalled True)
    INVALID_SPEC = "InvalidSpec"  # the spec does not satisfy the resource's rules
    NOT_OWNED = "NotOwned"  # that issuer is not this resource's (not kvcert's, or another's)
    # Key Vault refused the issuer as invalid (400) or forbidden (403), or answered the write
    # with settings other than the spec's (a field it does not keep)
    REJECTED = "Rejected"


STALLED_REASONS = frozenset(
    {IssuerReason.INVALID_SPEC, IssuerReason.NOT_OWNED, IssuerReason.REJECTED}
)
"""Ready=False reasons that no retry can fix: the Stalled condition is True with them."""
