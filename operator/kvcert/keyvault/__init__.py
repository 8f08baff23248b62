"""Typed async Key Vault client: errors, wire models, retries, credentials and the calls the
operator makes. Importing this package never imports the local vault, kopf or kubernetes."""

from kvcert.keyvault.client import (
    SUPPORTED_API_VERSIONS,
    CertificateSecret,
    KeyVaultClient,
)
from kvcert.keyvault.convert import Issuer, call_error
from kvcert.keyvault.credentials import (
    AzureIdentityCredential,
    StaticToken,
    VaultCredential,
    client_secret,
    managed_identity,
    workload_identity,
)
from kvcert.keyvault.policy import CertificatePolicySpec, LifetimeActionSpec, build_policy
from kvcert.keyvault.retry import RetryPolicy, VaultRateLimiter
from kvcert.keyvault.session import make_ssl_context

__all__ = [
    "SUPPORTED_API_VERSIONS",
    "AzureIdentityCredential",
    "CertificatePolicySpec",
    "CertificateSecret",
    "Issuer",
    "KeyVaultClient",
    "LifetimeActionSpec",
    "RetryPolicy",
    "StaticToken",
    "VaultCredential",
    "VaultRateLimiter",
    "build_policy",
    "call_error",
    "client_secret",
    "make_ssl_context",
    "managed_identity",
    "workload_identity",
]
