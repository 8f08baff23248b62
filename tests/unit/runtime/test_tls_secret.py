"""Key Vault's certificate secret becomes the data of a kubernetes.io/tls Secret."""

from __future__ import annotations

import base64
import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from kvcert import tls_secret


def _cert(
    name: str, key: ec.EllipticCurvePrivateKey, issuer: str, signer: ec.EllipticCurvePrivateKey
):
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(signer, hashes.SHA256())
    )


@pytest.fixture(scope="module")
def chain():
    root_key, mid_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    root = _cert("root", root_key, "root", root_key)
    mid = _cert("mid", mid_key, "root", root_key)
    leaf = _cert("leaf", leaf_key, "mid", mid_key)
    return leaf_key, leaf, mid, root


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def test_pem_secret_is_ordered_leaf_first_and_finds_the_key_anywhere(chain):
    key, leaf, mid, root = chain
    text = (_pem(root) + _key_pem(key) + _pem(mid) + _pem(leaf)).decode()
    data = tls_secret.from_vault_secret(tls_secret.PEM, text)
    assert data.tls_crt == _pem(leaf) + _pem(mid) + _pem(root)
    assert data.ca_crt == _pem(root)
    assert data.key == _key_pem(key)
    assert data.secret_type == "kubernetes.io/tls"
    assert set(data.secret_data()) == {"tls.crt", "tls.key", "ca.crt"}


def test_pkcs12_secret_is_reordered_leaf_first_whatever_the_bag_order(chain):
    key, leaf, mid, root = chain
    blob = pkcs12.serialize_key_and_certificates(
        b"web", key, leaf, [root, mid], serialization.NoEncryption()
    )
    data = tls_secret.from_vault_secret(tls_secret.PKCS12, base64.b64encode(blob).decode())
    assert data.certificates == (_pem(leaf), _pem(mid), _pem(root))
    assert data.key is not None
    assert serialization.load_pem_private_key(data.key, None).public_key() == key.public_key()


def test_a_certificate_without_its_key_is_an_opaque_secret_with_no_tls_key(chain):
    _, leaf, _, _ = chain
    data = tls_secret.from_der(leaf.public_bytes(serialization.Encoding.DER))
    assert data.secret_type == "Opaque"
    # The leaf alone, its issuer not given: no ca.crt (the leaf is no CA; kvcert.chain rule 6).
    assert set(data.secret_data()) == {"tls.crt"}


@pytest.mark.parametrize(
    ("content_type", "value"),
    [
        pytest.param(tls_secret.PKCS12, "%%% not base64", id="pkcs12 that is not base64"),
        pytest.param(tls_secret.PKCS12, base64.b64encode(b"junk").decode(), id="corrupt pkcs12"),
        pytest.param(
            tls_secret.PEM,
            "-----BEGIN PRIVATE KEY-----\nQUJD\n-----END PRIVATE KEY-----\n",
            id="pem without a certificate",
        ),
    ],
)
def test_unusable_secrets_fail_with_a_message_that_holds_no_content(content_type, value):
    with pytest.raises(tls_secret.TlsSecretError) as raised:
        tls_secret.from_vault_secret(content_type, value)
    assert "QUJD" not in str(raised.value)
    assert value not in str(raised.value)


def test_the_key_never_appears_in_the_repr(chain):
    key, leaf, _, _ = chain
    data = tls_secret.from_pem(_key_pem(key) + _pem(leaf))
    assert "PRIVATE" not in repr(data)


def test_a_certificate_that_cannot_be_read_fails_with_a_message_that_holds_no_content(chain):
    key, leaf, _, _ = chain
    broken = b"-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----\n"
    with pytest.raises(tls_secret.TlsSecretError) as raised:
        tls_secret.from_pem(_key_pem(key) + _pem(leaf) + broken)
    assert "QUJD" not in str(raised.value)


def _pem_data(chain) -> tls_secret.TlsData:
    key, leaf, mid, root = chain
    return tls_secret.from_pem(_key_pem(key) + _pem(leaf) + _pem(mid) + _pem(root))


def _der(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.mark.parametrize(
    ("formats", "keys"),
    [
        pytest.param(set(), set(), id="no formats: nothing more"),
        pytest.param({"CombinedPEM"}, {"tls-combined.pem"}, id="CombinedPEM"),
        pytest.param({"DER"}, {"key.der"}, id="DER"),
        pytest.param({"PKCS12"}, {"keystore.p12"}, id="PKCS12"),
        pytest.param(
            {"CombinedPEM", "DER", "PKCS12"},
            {"tls-combined.pem", "key.der", "keystore.p12"},
            id="all three",
        ),
    ],
)
def test_additional_outputs_hold_the_same_key_and_chain(chain, formats, keys):
    key, leaf, mid, root = chain
    data = _pem_data(chain)
    out = tls_secret.additional_outputs(data, formats, b"pw")
    assert set(out) == keys
    if "tls-combined.pem" in out:
        assert out["tls-combined.pem"] == _key_pem(key) + _pem(leaf) + _pem(mid) + _pem(root)
    if "key.der" in out:
        assert out["key.der"] == _der(key)
    if "keystore.p12" in out:
        p12_key, p12_leaf, extra = pkcs12.load_key_and_certificates(out["keystore.p12"], b"pw")
        assert p12_key is not None
        assert _der(p12_key) == _der(key)
        assert p12_leaf == leaf
        assert extra == [mid, root]
    assert set(tls_secret.TlsData(data.certificates, data.key, data.ca_crt).secret_data(out)) == {
        "tls.crt",
        "tls.key",
        "ca.crt",
        *keys,
    }


def test_additional_outputs_need_the_key(chain):
    _key, leaf, _mid, _root = chain
    data = tls_secret.from_der(leaf.public_bytes(serialization.Encoding.DER))
    assert tls_secret.additional_outputs(data, {"CombinedPEM", "DER", "PKCS12"}, b"pw") == {}


def test_a_keystore_without_a_password_is_refused_without_key_bytes(chain):
    with pytest.raises(tls_secret.TlsSecretError) as caught:
        tls_secret.additional_outputs(_pem_data(chain), {"PKCS12"}, b"")
    assert "PRIVATE" not in str(caught.value)
