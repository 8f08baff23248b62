"""Chains are ordered leaf first, each certificate followed by its issuer, whatever the source.

Property-based: hypothesis draws a chain of 1-4 real certificates (a self-signed leaf alone, or a
root, 0-2 intermediates and a leaf, sometimes without its root), adds unrelated certificates and
duplicates, shuffles them, and checks `kvcert.chain.order` and the PEM and PKCS#12 paths of
`kvcert.tls_secret` against the chain it started from. The certificates are made once per module
(EC P-256, one RSA intermediate), so every example is the same real PKI in another order.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kvcert import chain, tls_secret

DER = serialization.Encoding.DER
PEM = serialization.Encoding.PEM
Key = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
EXAMPLES = {"by key": 200, "by structure": 200, "pem": 150, "pkcs12": 150}
"""Examples per property; each runs in about a millisecond (PKCS#12: a few)."""


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,  # no .hypothesis directory in the tree
        suppress_health_check=[HealthCheck.too_slow],
    )


def _cert(cn: str, key: Key, issuer: x509.Certificate | None, signer: Key, ca: bool):
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


def _ec() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@dataclass(frozen=True)
class Pki:
    """A root, two intermediates, a leaf under each CA, a self-signed leaf, and strangers."""

    cas: tuple[x509.Certificate, ...]  # root, intermediate 1 (RSA), intermediate 2
    leaves: tuple[tuple[Key, x509.Certificate], ...]  # index = number of CAs above it
    unrelated_root: x509.Certificate
    unrelated_leaf: x509.Certificate  # a non-CA certificate whose issuer is absent
    namesake: x509.Certificate  # a CA under the root with intermediate 1's name, another key

    @classmethod
    def make(cls) -> Pki:
        root_key, mid1_key, mid2_key = _ec(), rsa.generate_private_key(65537, 2048), _ec()
        root = _cert("root", root_key, None, root_key, ca=True)
        mid1 = _cert("intermediate 1", mid1_key, root, root_key, ca=True)
        mid2 = _cert("intermediate 2", mid2_key, mid1, mid1_key, ca=True)
        alone_key = _ec()
        leaves: list[tuple[Key, x509.Certificate]] = [
            (alone_key, _cert("alone.example", alone_key, None, alone_key, ca=False))
        ]
        for signer_key, signer, cn in (
            (root_key, root, "one.example"),
            (mid1_key, mid1, "two.example"),
            (mid2_key, mid2, "three.example"),
        ):
            key = _ec()
            leaves.append((key, _cert(cn, key, signer, signer_key, ca=False)))
        stranger_key, other_ca_key = _ec(), _ec()
        other_ca = _cert("other CA", other_ca_key, None, other_ca_key, ca=True)
        stranger_root_key = _ec()
        return cls(
            cas=(root, mid1, mid2),
            leaves=tuple(leaves),
            unrelated_root=_cert("other root", stranger_root_key, None, stranger_root_key, True),
            unrelated_leaf=_cert("stranger.example", stranger_key, other_ca, other_ca_key, False),
            namesake=_cert("intermediate 1", _ec(), root, root_key, ca=True),
        )


PKI = Pki.make()


@dataclass(frozen=True)
class Case:
    key: Key
    path: tuple[x509.Certificate, ...]  # the expected order: leaf, then each issuer
    extras: tuple[x509.Certificate, ...]
    given: tuple[x509.Certificate, ...]  # everything, shuffled, maybe with a duplicate


@st.composite
def cases(draw: st.DrawFn, with_key: bool = True) -> Case:
    depth = draw(st.integers(min_value=0, max_value=3), label="CAs above the leaf")
    key, leaf = PKI.leaves[depth]
    path = (leaf, *reversed(PKI.cas[:depth]))
    if depth >= 2 and draw(st.booleans(), label="without its root"):
        path = path[:-1]
    strangers = [PKI.unrelated_root, PKI.namesake]
    if with_key or len(path) > 1:
        # Without a key, a lone non-CA stranger is as much a leaf as a lone leaf: only the
        # given order could tell them apart.
        strangers.append(PKI.unrelated_leaf)
    extras = tuple(draw(st.lists(st.sampled_from(strangers), unique=True), label="extras"))
    everything = [*path, *extras]
    duplicate = draw(st.none() | st.sampled_from(everything), label="duplicate")
    if duplicate is not None:
        everything.append(duplicate)
    given = tuple(draw(st.permutations(everything), label="given order"))
    return Case(key, path, extras, given)


def _ders(certs) -> list[bytes]:
    return [cert.public_bytes(DER) for cert in certs]


def _pems(certs) -> tuple[bytes, ...]:
    return tuple(cert.public_bytes(PEM) for cert in certs)


def _in_given_order(case: Case, certs) -> list[bytes]:
    wanted = set(_ders(certs))
    seen: list[bytes] = []
    for der in _ders(case.given):
        if der in wanted and der not in seen:
            seen.append(der)
    return seen


def _check_order(case: Case, ordered: chain.Chain) -> None:
    assert _ders(ordered.path) == _ders(case.path)
    assert _ders(ordered.unlinked) == _in_given_order(case, case.extras)
    for child, issuer in zip(ordered.path, ordered.path[1:], strict=False):
        child.verify_directly_issued_by(issuer)
    top = ordered.top
    if top.issuer == top.subject:
        assert top in (PKI.cas[0], PKI.leaves[0][1])  # the root, or a self-signed leaf alone
    else:
        assert len(ordered.path) > 1  # no root given: the last issuer present


@given(case=cases())
@_settings(EXAMPLES["by key"])
def test_a_shuffled_chain_is_ordered_from_the_leaf_that_holds_the_key(case: Case):
    _check_order(case, chain.order(case.given, case.key.public_key()))


@given(case=cases(with_key=False))
@_settings(EXAMPLES["by structure"])
def test_a_shuffled_chain_without_a_key_is_ordered_from_the_certificate_that_issues_none(
    case: Case,
):
    _check_order(case, chain.order(case.given))


@given(case=cases(with_key=False))
@_settings(EXAMPLES["pem"])
def test_a_pem_secret_in_any_order_gives_the_same_secret_and_its_key_untouched(case: Case):
    # The key block is not a key at all: a parse would fail, a pass-through keeps it.
    fake_key = b"-----BEGIN PRIVATE KEY-----\nQUJD\n-----END PRIVATE KEY-----\n"
    blocks = list(_pems(case.given))
    blocks.insert(len(blocks) // 2, fake_key)
    data = tls_secret.from_vault_secret(tls_secret.PEM, b"".join(blocks).decode())

    assert data.certificates == _pems(case.path)
    assert data.ca_crt == case.path[-1].public_bytes(PEM)
    assert data.key == fake_key


@given(case=cases())
@_settings(EXAMPLES["pkcs12"])
def test_a_pkcs12_secret_in_any_order_gives_the_same_secret(case: Case):
    # The bag's own certificate must match its key, so the shuffle is of the other bags.
    leaf = case.path[0]
    rest = [cert for cert in case.given if cert != leaf]
    blob = pkcs12.serialize_key_and_certificates(
        b"kv", case.key, leaf, rest or None, serialization.NoEncryption()
    )
    data = tls_secret.from_vault_secret(tls_secret.PKCS12, base64.b64encode(blob).decode())

    assert data.certificates == _pems(case.path)
    assert data.ca_crt == case.path[-1].public_bytes(PEM)
    assert data.key is not None


def _pem_secret(key: Key, certs) -> str:
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return (key_pem + b"".join(_pems(certs))).decode()


def _pfx_secret(key: Key, certs) -> str:
    leaf, *cas = certs
    blob = pkcs12.serialize_key_and_certificates(
        b"kv", key, leaf, cas or None, serialization.NoEncryption()
    )
    return base64.b64encode(blob).decode()


@pytest.mark.parametrize(
    ("content_type", "build"),
    [
        pytest.param(tls_secret.PEM, _pem_secret, id="pem"),
        pytest.param(tls_secret.PKCS12, _pfx_secret, id="pkcs12"),
    ],
)
def test_the_issue_example_root_first_becomes_leaf_intermediate_root(content_type, build):
    key, leaf = PKI.leaves[2]
    root, mid = PKI.cas[:2]
    # Key Vault keeps the leaf first and the rest as uploaded: leaf, root, intermediate.
    data = tls_secret.from_vault_secret(content_type, build(key, [leaf, root, mid]))

    assert data.certificates == _pems([leaf, mid, root])
    assert data.ca_crt == root.public_bytes(PEM)


def test_a_key_that_matches_no_certificate_is_an_error_that_names_no_content():
    key, _ = PKI.leaves[1]
    with pytest.raises(chain.ChainError, match="matches none") as raised:
        chain.order([PKI.leaves[2][1], PKI.cas[1]], key.public_key())
    assert "BEGIN" not in str(raised.value)


def test_a_merge_chain_given_root_first_is_sent_leaf_first_with_strangers_after():
    _, leaf = PKI.leaves[3]
    root, mid1, mid2 = PKI.cas
    given = _ders([root, PKI.unrelated_root, mid1, leaf, mid2])
    assert chain.order_der(given) == _ders([leaf, mid2, mid1, root, PKI.unrelated_root])


def test_a_merge_chain_with_an_unreadable_certificate_is_sent_as_given():
    given = [b"not a certificate", PKI.cas[0].public_bytes(DER)]
    assert chain.order_der(given) == given


def test_a_merge_chain_of_two_lone_leaves_keeps_the_first_given_leaf_first():
    alone = PKI.leaves[0][1]
    given = _ders([alone, PKI.unrelated_leaf])
    assert chain.order_der(given) == given
    assert chain.order_der(list(reversed(given))) == list(reversed(given))


def test_nothing_to_order_is_an_error():
    with pytest.raises(chain.ChainError):
        chain.order([])
