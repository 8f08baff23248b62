"""Who signs a pending certificate: Self, nobody (Unknown: wait for a merge) or a simulated CA.

Issuer objects configured with a provider of DigiCert, GlobalSign or OneCertV2-* (and, to stay
permissive, any other provider) are served by one simulated CA with its own root, kept in the
store so a restart signs with the same root. The signing functions are synchronous: callers on
the event loop run them in a thread.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from kvcert.vault import crypto
from kvcert.vault.operation import Kind
from kvcert.vault.store import Store

SELF = "self"
KNOWN_PROVIDERS = ("DigiCert", "GlobalSign")


def classify(issuer_name: str) -> Kind:
    """The kind of an operation created with `issuer_name`: every issuer object is a provider
    served by the simulated CA (whatever its provider name), the two built-ins are not."""
    lowered = issuer_name.lower()
    if lowered == SELF:
        return "self"
    if lowered == "unknown":
        return "manual"
    return "ca"


def is_builtin(issuer_name: str) -> bool:
    return issuer_name.lower() in (SELF, "unknown")


@dataclass(frozen=True)
class SimulatedCA:
    """The root every provider-backed issuer signs with."""

    key_pem: bytes
    cert_der: bytes

    @classmethod
    def load_or_create(cls, store: Store, now: float) -> SimulatedCA:
        key = store.get_meta("ca.key")
        cert = store.get_meta("ca.crt")
        if key is None or cert is None:
            private, cert = crypto.make_ca("kvcert simulated issuer root", now)
            key = crypto.key_to_pem(private)
            with store.transaction():
                store.put_meta("ca.key", key)
                store.put_meta("ca.crt", cert)
        return cls(key, cert)

    def sign(self, csr_der: bytes, spec: crypto.CertSpec, now: float) -> tuple[bytes, bytes]:
        """(leaf DER, root DER) for the CSR."""
        issuer = x509.load_der_x509_certificate(self.cert_der)
        leaf = crypto.sign_csr(csr_der, spec, now, crypto.key_from_pem(self.key_pem), issuer)
        return leaf, self.cert_der

    def cert_pem(self) -> bytes:
        return x509.load_der_x509_certificate(self.cert_der).public_bytes(
            serialization.Encoding.PEM
        )


def self_sign(csr_der: bytes, key_pem: bytes, spec: crypto.CertSpec, now: float) -> bytes:
    return crypto.sign_csr(csr_der, spec, now, crypto.key_from_pem(key_pem), None)


def issue(
    kind: Kind,
    ca: SimulatedCA,
    csr_der: bytes,
    key_pem: bytes,
    spec: crypto.CertSpec,
    *,
    now: float,
) -> tuple[bytes, tuple[bytes, ...]]:
    """Sign as the operation's issuer would: (leaf, chain). Manual operations use the CA too
    (only the management API completes them that way)."""
    if kind == "self":
        return self_sign(csr_der, key_pem, spec, now), ()
    leaf, root = ca.sign(csr_der, spec, now)
    return leaf, (root,)
