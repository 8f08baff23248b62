"""Key material for the local vault: keys, CSRs, signing, PKCS#12/PEM and thumbprints.

Everything here is synchronous and CPU-bound (RSA generation and PKCS#12 encoding cost tens of
milliseconds), so callers on the event loop run these functions in a worker thread. No function
puts key bytes into an exception message: parse errors are reported as `CryptoInputError` with a
fixed text the routes can show to clients.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import datetime as dt
import hashlib
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kvcert.vault import names

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

CURVES: dict[str, ec.EllipticCurve] = {
    "P-256": ec.SECP256R1(),
    "P-384": ec.SECP384R1(),
    "P-521": ec.SECP521R1(),
    "P-256K": ec.SECP256K1(),
}
CURVE_BITS = {"P-256": 256, "P-384": 384, "P-521": 521, "P-256K": 256}
KEY_USAGES = (
    "digitalSignature",
    "nonRepudiation",
    "keyEncipherment",
    "dataEncipherment",
    "keyAgreement",
    "keyCertSign",
    "cRLSign",
    "encipherOnly",
    "decipherOnly",
)


class CryptoInputError(ValueError):
    """Client-supplied material could not be used; the message is safe to show."""


@dataclass(frozen=True)
class KeySpec:
    """What key to make: `kty` is RSA/EC (HSM variants are treated as software keys)."""

    kty: str = "RSA"
    size: int = 2048
    curve: str = "P-256"


@dataclass(frozen=True)
class CertSpec:
    """The X.509 content of a certificate to sign, taken from a policy."""

    subject: str
    dns_names: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    upns: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()
    uris: tuple[str, ...] = ()
    ekus: tuple[str, ...] = ()
    key_usage: tuple[str, ...] = ()
    validity_months: int = 12


def generate_key(spec: KeySpec) -> PrivateKey:
    if spec.kty.upper().startswith("EC"):
        return ec.generate_private_key(CURVES[spec.curve])
    return rsa.generate_private_key(public_exponent=65537, key_size=spec.size)


def key_to_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def key_from_pem(data: bytes) -> PrivateKey:
    """Load a key this vault stored: one it generated, or one validated when it was imported.

    RSA validation costs ~50 ms per load and these keys were already checked, so it is skipped;
    client-supplied keys go through `bundles.load_pfx`/`load_pem_bundle`, which validate.
    """
    key = serialization.load_pem_private_key(
        data, password=None, unsafe_skip_rsa_key_validation=True
    )
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise CryptoInputError("Only RSA and EC keys are supported.")
    return key


def public_der(key: PrivateKey | x509.Certificate) -> bytes:
    """The SubjectPublicKeyInfo, the form in which keys are compared."""
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def parse_subject(subject: str) -> x509.Name:
    """Parse a subject as Key Vault writes it (`CN=a, O="B, Inc.", S=Texas`): see `names`."""
    try:
        return names.parse(subject)
    except ValueError as exc:
        raise CryptoInputError(f"Invalid subject name: {subject!r}.") from exc


def _extensions(spec: CertSpec) -> list[tuple[x509.ExtensionType, bool]]:
    out: list[tuple[x509.ExtensionType, bool]] = []
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in spec.dns_names]
    names += [x509.RFC822Name(e) for e in spec.emails]
    names += [x509.IPAddress(ipaddress.ip_address(i)) for i in spec.ip_addresses]
    names += [x509.UniformResourceIdentifier(u) for u in spec.uris]
    upn_oid = x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2.3")
    names += [x509.OtherName(upn_oid, _der_utf8(u)) for u in spec.upns]
    if names:
        out.append((x509.SubjectAlternativeName(names), False))
    if spec.ekus:
        out.append((x509.ExtendedKeyUsage([x509.ObjectIdentifier(o) for o in spec.ekus]), False))
    if spec.key_usage:
        flags = {u: u in spec.key_usage for u in KEY_USAGES}
        out.append(
            (
                x509.KeyUsage(
                    digital_signature=flags["digitalSignature"],
                    content_commitment=flags["nonRepudiation"],
                    key_encipherment=flags["keyEncipherment"],
                    data_encipherment=flags["dataEncipherment"],
                    key_agreement=flags["keyAgreement"],
                    key_cert_sign=flags["keyCertSign"],
                    crl_sign=flags["cRLSign"],
                    encipher_only=flags["encipherOnly"] and flags["keyAgreement"],
                    decipher_only=flags["decipherOnly"] and flags["keyAgreement"],
                ),
                True,
            )
        )
    out.append((x509.BasicConstraints(ca=False, path_length=None), False))
    return out


def _der_utf8(text: str) -> bytes:
    raw = text.encode()
    if len(raw) >= 128:
        raise CryptoInputError("UPN too long.")
    return b"\x0c" + bytes([len(raw)]) + raw


def make_csr(key: PrivateKey, spec: CertSpec) -> bytes:
    """A DER CSR carrying the policy's subject and extensions, signed by `key`."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(parse_subject(spec.subject))
    for ext, critical in _extensions(spec):
        builder = builder.add_extension(ext, critical=critical)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def add_months(when: dt.datetime, months: int) -> dt.datetime:
    """Calendar months: 29 November + 12 is 29 November; 31 January + 1 is the last of February."""
    total = when.month - 1 + months
    year, month = when.year + total // 12, total % 12 + 1
    day = min(when.day, calendar.monthrange(year, month)[1])
    return when.replace(year=year, month=month, day=day)


def sign_csr(
    csr_der: bytes,
    spec: CertSpec,
    now: float,
    issuer_key: PrivateKey,
    issuer_cert: x509.Certificate | None,
) -> bytes:
    """Issue a leaf for the CSR's key; `issuer_cert=None` makes it self-signed."""
    csr = x509.load_der_x509_csr(csr_der)
    start = dt.datetime.fromtimestamp(int(now), dt.UTC) - dt.timedelta(minutes=5)
    subject = csr.subject
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject if issuer_cert else subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(add_months(start, spec.validity_months))
    )
    for ext, critical in _extensions(spec):
        builder = builder.add_extension(ext, critical=critical)
    builder = builder.add_extension(
        x509.SubjectKeyIdentifier.from_public_key(csr.public_key()), critical=False
    )
    if issuer_cert is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    cert = builder.sign(issuer_key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.DER)


def make_ca(common_name: str, now: float, years: int = 10) -> tuple[PrivateKey, bytes]:
    """A self-signed CA (EC P-256): the simulated provider's root and the TLS root."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    start = dt.datetime.fromtimestamp(int(now), dt.UTC) - dt.timedelta(minutes=5)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=365 * years))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert.public_bytes(serialization.Encoding.DER)


def server_eku() -> x509.ExtendedKeyUsage:
    return x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH])


def x5t(der: bytes) -> str:
    """base64url without padding of the SHA-1 of the DER, as Key Vault computes it."""
    digest = hashlib.sha1(der, usedforsecurity=False).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def b64decode_strict(text: str) -> bytes:
    """Standard or URL-safe base64, padding optional; raises CryptoInputError otherwise."""
    cleaned = "".join(text.split())
    if "-" in cleaned or "_" in cleaned:
        cleaned = cleaned.replace("-", "+").replace("_", "/")
    cleaned += "=" * (-len(cleaned) % 4)
    try:
        return base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CryptoInputError("The value is not valid base64.") from exc


def cert_info(der: bytes) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise CryptoInputError("The value is not an X.509 certificate.") from exc


def der_to_pem(der: bytes) -> bytes:
    return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)


def split_certificates(blob: bytes) -> list[bytes]:
    """DER certificates from one x5c item: DER, or PEM text holding one or more certificates."""
    if b"-----BEGIN" in blob:
        try:
            certs = x509.load_pem_x509_certificates(blob)
        except ValueError as exc:
            raise CryptoInputError("The value holds no PEM certificate.") from exc
        return [c.public_bytes(serialization.Encoding.DER) for c in certs]
    return [cert_info(blob).public_bytes(serialization.Encoding.DER)]
