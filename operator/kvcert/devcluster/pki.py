"""Throwaway certificates and keys for a local control plane.

Everything here lives in the cluster's temporary directory and dies with it; nothing is
meant to be trusted beyond one test session or one demo. `LocalCA` also serves the end-to-end
cluster's PKI (tests/e2e/nodeconfig.py), which adds a kubelet's needs.
"""

from __future__ import annotations

import datetime
import ipaddress
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALIDITY = datetime.timedelta(days=30)
_BACKDATE = datetime.timedelta(minutes=5)
"""Certificates start a little in the past, so that a clock a few seconds behind accepts them."""


@dataclass(frozen=True)
class ControlPlanePki:
    """Paths of the files kube-apiserver and its clients need."""

    ca_cert: Path
    serving_cert: Path
    serving_key: Path
    service_account_key: Path
    admin_token: str


def pem_key(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    """A private key as unencrypted PKCS#8 PEM."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_private(path: Path, data: bytes) -> Path:
    """Write key material readable by the owner only (0600); returns `path`."""
    path.write_bytes(data)
    path.chmod(0o600)
    return path


def name(common_name: str, organization: str | None = None) -> x509.Name:
    """CN (and O, which Kubernetes reads as the group of a client certificate)."""
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attributes.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    validity: datetime.timedelta,
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + validity)
    )


@dataclass(frozen=True)
class LocalCA:
    """A self-signed EC P-256 CA that issues leaf certificates (EC P-256, SHA-256)."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    validity: datetime.timedelta

    @classmethod
    def make(cls, common_name: str, validity: datetime.timedelta = _VALIDITY) -> LocalCA:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = name(common_name)
        usage = x509.KeyUsage(
            digital_signature=True,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=True,
            crl_sign=True,
            encipher_only=False,
            decipher_only=False,
        )
        cert = (
            _builder(subject, subject, key, validity)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(usage, critical=True)
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert, validity)

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(
        self,
        subject: x509.Name,
        usage: x509.ObjectIdentifier,
        sans: list[x509.GeneralName] | None = None,
    ) -> tuple[ec.EllipticCurvePrivateKey, bytes]:
        """A new key and its certificate for `usage` (server or client auth), as the key and
        the PEM chain (leaf, then this CA)."""
        key = ec.generate_private_key(ec.SECP256R1())
        builder = _builder(subject, self.cert.subject, key, self.validity).add_extension(
            x509.ExtendedKeyUsage([usage]), critical=False
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        return key, cert.public_bytes(serialization.Encoding.PEM) + self.pem


def generate(directory: Path, hostnames: tuple[str, ...] = ()) -> ControlPlanePki:
    """Write a CA, an apiserver serving certificate and a service-account key under directory."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = LocalCA.make("kvcert local control plane CA")
    names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.DNSName("kubernetes.default.svc"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        *(x509.DNSName(host) for host in hostnames),
    ]
    serving_key, serving_chain = ca.issue(
        name("kube-apiserver"), ExtendedKeyUsageOID.SERVER_AUTH, names
    )
    ca_path = directory / "ca.crt"
    ca_path.write_bytes(ca.pem)
    serving_path = directory / "apiserver.crt"
    serving_path.write_bytes(serving_chain)
    return ControlPlanePki(
        ca_cert=ca_path,
        serving_cert=serving_path,
        serving_key=write_private(directory / "apiserver.key", pem_key(serving_key)),
        service_account_key=write_private(
            directory / "service-account.key",
            pem_key(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        ),
        admin_token=secrets.token_hex(24),
    )
