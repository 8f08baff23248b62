"""The local vault's own TLS: a CA and a server certificate under DATA_DIR/tls/.

Made on first start and reused, so clients keep trusting `ca.crt` across restarts. The server
certificate is re-issued from the same CA when a start asks for a host name it does not cover.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kvcert.vault import crypto


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


def _write(path: Path, data: bytes, private: bool = False) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    if private:
        os.chmod(tmp, 0o600)
    tmp.replace(path)


def _names(hostnames: list[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.DNSName("localhost"),
    ]
    for name in hostnames:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            out.append(x509.DNSName(name))
    return out


def _covers(cert_path: Path, names: list[x509.GeneralName]) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return False
    present = set(san)
    return all(n in present for n in names)


def ensure(data_dir: Path, hostnames: list[str], now: float) -> TlsFiles:
    """Create (or reuse) DATA_DIR/tls/{ca.crt,ca.key,server.crt,server.key}."""
    tls = data_dir / "tls"
    tls.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(tls / "ca.crt", tls / "server.crt", tls / "server.key")
    ca_key_path = tls / "ca.key"
    if not files.ca.exists() or not ca_key_path.exists():
        key, der = crypto.make_ca("kvcert local vault CA", now)
        _write(ca_key_path, crypto.key_to_pem(key), private=True)
        _write(files.ca, crypto.der_to_pem(der))
    names = _names(hostnames)
    if files.key.exists() and _covers(files.cert, names):
        return files
    ca_key = crypto.key_from_pem(ca_key_path.read_bytes())
    ca_cert = x509.load_pem_x509_certificate(files.ca.read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    start = dt.datetime.fromtimestamp(int(now), dt.UTC) - dt.timedelta(minutes=5)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kvcert local vault")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(crypto.server_eku(), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write(files.key, crypto.key_to_pem(key), private=True)
    _write(files.cert, cert.public_bytes(serialization.Encoding.PEM))
    return files
