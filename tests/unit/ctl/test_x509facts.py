"""kvcert.ctl.x509facts: the local checks `kvcert merge` makes before writing anything, and
the facts `status` / `inspect secret` decode from a Secret (never the key)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kvcert.ctl import x509facts
from kvcert.ctl.x509facts import ChainRefused, check_chain, secret_facts

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
PEM = serialization.Encoding.PEM


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    signer: ec.EllipticCurvePrivateKey,
    issuer: str,
    *,
    ca: bool = False,
    start: dt.datetime = NOW - dt.timedelta(days=1),
    days: int = 30,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(0x0ABC)
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        names = [x509.DNSName(subject), x509.RFC822Name("ops@example.com")]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(signer, hashes.SHA256())


def _pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(PEM) for c in certs)


def _csr(key: ec.EllipticCurvePrivateKey) -> x509.CertificateSigningRequest:
    names = x509.SubjectAlternativeName([x509.DNSName("app.example.com")])
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(_name("app.example.com"))
        .add_extension(names, critical=False)
        .sign(key, hashes.SHA256())
    )


ROOT_KEY, MID_KEY, LEAF_KEY, OTHER_KEY = (ec.generate_private_key(ec.SECP256R1()) for _ in "1234")
ROOT = _cert("root", ROOT_KEY, ROOT_KEY, "root", ca=True, days=3650)
MID = _cert("mid", MID_KEY, ROOT_KEY, "root", ca=True, days=365)
LEAF = _cert("app.example.com", LEAF_KEY, MID_KEY, "mid")


@pytest.mark.parametrize(
    ("given", "length", "unlinked"),
    [
        ((LEAF, MID, ROOT), 3, 0),
        ((ROOT, MID, LEAF), 3, 0),  # any order comes out leaf first
        ((MID, LEAF), 2, 0),  # no root: the path ends at the top intermediate
        ((LEAF,), 1, 0),
        ((LEAF, _cert("stray", OTHER_KEY, OTHER_KEY, "stray", ca=True)), 1, 1),
    ],
)
def test_a_chain_for_the_csr_key_is_ordered_leaf_first(
    given: tuple[x509.Certificate, ...], length: int, unlinked: int
) -> None:
    checked = check_chain(_pem(*given), _csr(LEAF_KEY), NOW)
    assert checked.leaf == LEAF
    assert (checked.length, checked.unlinked) == (length, unlinked)
    written = x509.load_pem_x509_certificates(checked.pem)
    assert written[0] == LEAF
    assert len(written) == len(given)


@pytest.mark.parametrize(
    ("pem", "said"),
    [
        (b"not a certificate", "holds no PEM certificate"),
        (_pem(LEAF, MID), "no certificate in the chain is for the CSR's public key"),
    ],
)
def test_a_chain_not_for_the_csr_is_refused(pem: bytes, said: str) -> None:
    with pytest.raises(ChainRefused, match=said):
        check_chain(pem, _csr(OTHER_KEY), NOW)


@pytest.mark.parametrize(
    ("start", "days", "said"),
    [
        (NOW + dt.timedelta(hours=1), 30, "is not valid before 2026-06-01T01:00:00Z"),
        (NOW - dt.timedelta(days=40), 30, "expired at 2026-05-22T00:00:00Z"),
        (NOW - dt.timedelta(days=30), 30, "expired at 2026-06-01T00:00:00Z"),  # notAfter == now
    ],
)
def test_a_leaf_out_of_its_dates_is_refused(start: dt.datetime, days: int, said: str) -> None:
    leaf = _cert("app.example.com", LEAF_KEY, MID_KEY, "mid", start=start, days=days)
    with pytest.raises(ChainRefused, match=said):
        check_chain(_pem(leaf, MID, ROOT), _csr(LEAF_KEY), NOW)


def test_an_expired_issuer_on_the_path_is_refused() -> None:
    old_mid = _cert(
        "mid", MID_KEY, ROOT_KEY, "root", ca=True, start=NOW - dt.timedelta(days=9), days=5
    )
    with pytest.raises(ChainRefused, match="CN=mid expired"):
        check_chain(_pem(LEAF, old_mid, ROOT), _csr(LEAF_KEY), NOW)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


@pytest.mark.parametrize(
    ("data", "matches", "length"),
    [
        ({"tls.crt": _b64(_pem(LEAF, MID)), "tls.key": _b64(_key_pem(LEAF_KEY))}, True, 2),
        ({"tls.crt": _b64(_pem(LEAF, MID)), "tls.key": _b64(_key_pem(OTHER_KEY))}, False, 2),
        ({"tls.crt": _b64(_pem(LEAF)), "tls.key": _b64(b"garbage")}, None, 1),
        ({"tls.crt": _b64(_pem(LEAF)), "tls.key": "%%%not base64"}, None, 1),
        ({"tls.crt": _b64(_pem(LEAF, MID, ROOT))}, None, 3),
    ],
)
def test_secret_facts_say_whether_the_key_is_the_leafs_without_showing_it(
    data: dict[str, str], matches: bool | None, length: int
) -> None:
    facts = secret_facts("kubernetes.io/tls", data)
    assert facts["keyMatchesLeaf"] is matches
    assert facts["chainLength"] == length
    assert facts["keys"] == sorted(data)
    assert facts["leaf"]["subject"] == "CN=app.example.com"
    assert facts["leaf"]["sans"] == ["DNS:app.example.com", "email:ops@example.com"]
    assert facts["leaf"]["issuer"] == "CN=mid"
    assert facts["leaf"]["serialNumber"] == "0ABC"
    assert facts["leaf"]["notBefore"] == "2026-05-31T00:00:00Z"
    assert "PRIVATE" not in repr(facts)
    if "tls.key" in data:
        assert data["tls.key"] not in repr(facts)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"tls.crt": _b64(b"no pem here")}, "tls.crt holds no PEM certificate"),
        ({"tls.crt": "%%%"}, "tls.crt holds no PEM certificate"),
        ({"other": _b64(b"x")}, None),
    ],
)
def test_secret_facts_of_a_secret_without_a_certificate(
    data: dict[str, str], error: str | None
) -> None:
    facts = secret_facts("Opaque", data)
    assert (facts["leaf"], facts["chainLength"], facts["keyMatchesLeaf"]) == (None, 0, None)
    assert facts.get("error") == error


def test_x5t_is_key_vaults_thumbprint() -> None:
    digest = hashlib.sha1(LEAF.public_bytes(serialization.Encoding.DER)).digest()
    assert x509facts.x5t(LEAF) == base64.urlsafe_b64encode(digest).decode().rstrip("=")
    assert "=" not in x509facts.x5t(LEAF)


def test_csr_facts_name_subject_and_sans() -> None:
    facts = x509facts.csr_facts(_csr(LEAF_KEY))
    assert facts == {"subject": "CN=app.example.com", "sans": ["DNS:app.example.com"]}
