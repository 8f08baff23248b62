"""A throwaway CA for the tests: signs a CSR's public key, makes key pairs, PFX and PEM."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

PEM = serialization.Encoding.PEM


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)


@dataclass(frozen=True)
class TestCA:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    __test__ = False  # not a test class

    @classmethod
    def make(cls, cn: str = "kvcert test CA") -> TestCA:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(_name(cn))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_now())
            .not_valid_after(_now() + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(PEM).decode()

    def sign(self, public_key: ec.EllipticCurvePublicKey | object, cn: str) -> x509.Certificate:
        return (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(self.cert.subject)
            .public_key(public_key)  # type: ignore[arg-type]
            .serial_number(x509.random_serial_number())
            .not_valid_before(_now())
            .not_valid_after(_now() + dt.timedelta(days=10))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
            .sign(self.key, hashes.SHA256())
        )

    def sign_csr(self, csr_pem: str) -> x509.Certificate:
        """Sign the CSR's public key (the vault-held key's public half)."""
        csr = x509.load_pem_x509_csr(csr_pem.encode())
        cn = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        return self.sign(csr.public_key(), str(cn))

    def chain_pem(self, leaf: x509.Certificate) -> bytes:
        """Leaf then this CA: what a human pastes into tls.crt."""
        return leaf.public_bytes(PEM) + self.cert.public_bytes(PEM)

    def intermediate(self, cn: str = "kvcert test intermediate CA") -> TestCA:
        """A CA signed by this one: what it signs chains to it, then to this CA."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_now())
            .not_valid_after(_now() + dt.timedelta(days=20))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        return TestCA(key, cert)


def key_pair() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def pfx(key: ec.EllipticCurvePrivateKey, cert: x509.Certificate, ca: TestCA) -> bytes:
    return pkcs12.serialize_key_and_certificates(
        b"imported", key, cert, [ca.cert], serialization.NoEncryption()
    )


def pem_certs(text: str) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(text.encode())


def pem_of(*certs: x509.Certificate) -> bytes:
    """The certificates as one PEM text, in the order given."""
    return b"".join(cert.public_bytes(PEM) for cert in certs)


def pfx_of(
    key: ec.EllipticCurvePrivateKey, cert: x509.Certificate, cas: list[x509.Certificate]
) -> bytes:
    """A PFX whose CA bags are `cas` in the order given (a PFX's own order is not a chain's)."""
    return pkcs12.serialize_key_and_certificates(
        b"imported", key, cert, cas, serialization.NoEncryption()
    )
