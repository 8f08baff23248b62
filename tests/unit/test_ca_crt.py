"""`ca.crt` holds only a CA certificate, and `tls.crt` stays leaf then chain (kvcert.chain rule 6).

A table of the chains users merge or import, given in every order that matters (leaf first, as
Key Vault keeps it, and root first, as users often paste it), through the three paths that make
the output Secret: PEM (the key passed through), PKCS#12 (the leaf found by its key) and a
certificate alone (a non-exportable key). cert-manager leaves `ca.crt` out when the issuing CA is
unknown and puts a self-signed certificate in its own `ca.crt`: kvcert does the same.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from kvcert import chain, tls_secret

PEM = serialization.Encoding.PEM
DER = serialization.Encoding.DER


def _cert(
    cn: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    signer: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer is not None else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(signer, hashes.SHA256())
    )


@dataclass(frozen=True)
class Pki:
    root: x509.Certificate
    mid: x509.Certificate
    leaf_key: ec.EllipticCurvePrivateKey
    leaf: x509.Certificate  # issued by mid
    self_key: ec.EllipticCurvePrivateKey
    self_signed: x509.Certificate  # a leaf that signed itself (Key Vault's Self issuer)
    other_root: x509.Certificate


def _make() -> Pki:
    root_key, mid_key, leaf_key, self_key, other_key = (
        ec.generate_private_key(ec.SECP256R1()) for _ in range(5)
    )
    root = _cert("ca.crt root", root_key, None, root_key, ca=True)
    mid = _cert("ca.crt intermediate", mid_key, root, root_key, ca=True)
    return Pki(
        root=root,
        mid=mid,
        leaf_key=leaf_key,
        leaf=_cert("leaf.example", leaf_key, mid, mid_key, ca=False),
        self_key=self_key,
        self_signed=_cert("self.example", self_key, None, self_key, ca=False),
        other_root=_cert("another root", other_key, None, other_key, ca=True),
    )


PKI = _make()


@dataclass(frozen=True)
class Row:
    given: tuple[str, ...]  # names of PKI fields, in the order handed over
    tls_crt: tuple[str, ...]  # what tls.crt holds, in order
    ca_crt: str | None  # what ca.crt holds; None: no ca.crt key at all


ROWS = [
    pytest.param(Row(("leaf",), ("leaf",), None), id="a leaf alone has no ca.crt"),
    pytest.param(
        Row(("leaf", "mid"), ("leaf", "mid"), "mid"),
        id="leaf and intermediate: ca.crt is the intermediate",
    ),
    pytest.param(
        Row(("leaf", "mid", "root"), ("leaf", "mid", "root"), "root"),
        id="leaf, intermediate and root: ca.crt is the root and tls.crt keeps it",
    ),
    pytest.param(
        Row(("root", "mid", "leaf"), ("leaf", "mid", "root"), "root"),
        id="the same chain root first: reordered, ca.crt is the root",
    ),
    pytest.param(
        Row(("leaf", "root"), ("leaf",), None),
        id="leaf and root without the intermediate: no ca.crt, the unlinked root left out",
    ),
    pytest.param(
        Row(("leaf", "mid", "other_root"), ("leaf", "mid"), "mid"),
        id="an unrelated root is never ca.crt: the top intermediate is",
    ),
    pytest.param(
        Row(("self_signed",), ("self_signed",), "self_signed"),
        id="a self-signed leaf is its own CA, as in cert-manager",
    ),
]


def _pem(names: tuple[str, ...]) -> bytes:
    return b"".join(getattr(PKI, name).public_bytes(PEM) for name in names)


def _key_of(row: Row) -> ec.EllipticCurvePrivateKey:
    return PKI.self_key if row.given == ("self_signed",) else PKI.leaf_key


def _check(data: tls_secret.TlsData, row: Row) -> None:
    assert data.tls_crt == _pem(row.tls_crt)
    assert data.ca_crt == (_pem((row.ca_crt,)) if row.ca_crt else None)
    keys = set(data.secret_data())
    assert ("ca.crt" in keys) is (row.ca_crt is not None)
    if row.ca_crt is not None:
        assert base64.b64decode(data.secret_data()["ca.crt"]) == _pem((row.ca_crt,))


@pytest.mark.parametrize("row", ROWS)
def test_the_chain_orders_and_names_its_ca(row: Row):
    ordered = chain.order(getattr(PKI, name) for name in row.given)
    assert [c.public_bytes(DER) for c in ordered.path] == [
        getattr(PKI, name).public_bytes(DER) for name in row.tls_crt
    ]
    wanted = getattr(PKI, row.ca_crt) if row.ca_crt else None
    assert ordered.ca == wanted


@pytest.mark.parametrize("row", ROWS)
def test_a_pem_secret_gets_ca_crt_by_the_rule(row: Row):
    key = _key_of(row).private_bytes(
        PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    data = tls_secret.from_vault_secret(tls_secret.PEM, (_pem(row.given) + key).decode())
    _check(data, row)
    assert data.secret_type == "kubernetes.io/tls"


@pytest.mark.parametrize("row", ROWS)
def test_a_pkcs12_secret_gets_ca_crt_by_the_rule(row: Row):
    key = _key_of(row)
    certs = [getattr(PKI, name) for name in row.given]
    leaf = next(c for c in certs if c.public_key() == key.public_key())
    rest = [c for c in certs if c is not leaf]
    blob = pkcs12.serialize_key_and_certificates(
        b"kv", key, leaf, rest or None, serialization.NoEncryption()
    )
    _check(tls_secret.from_vault_secret(tls_secret.PKCS12, base64.b64encode(blob).decode()), row)


@pytest.mark.parametrize(
    ("name", "ca_crt"),
    [
        pytest.param("leaf", None, id="a CA-issued certificate alone has no ca.crt"),
        pytest.param("self_signed", "self_signed", id="a self-signed one alone is its own CA"),
    ],
)
def test_a_certificate_without_its_key_gets_ca_crt_by_the_rule(name: str, ca_crt: str | None):
    data = tls_secret.from_der(getattr(PKI, name).public_bytes(DER))
    _check(data, Row((name,), (name,), ca_crt))
    assert data.secret_type == "Opaque"
