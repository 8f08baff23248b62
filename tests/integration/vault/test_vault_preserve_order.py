"""`preserveCertOrder` (api-version 7.6 on): "Specifies whether the certificate chain preserves its
original order. The default value is false, which sets the leaf certificate at index 0."

Over HTTPS against the running vault: the order of the certificates in a version's secret for an
import (PEM and PKCS#12) and for a create + merge, the flag's echo in the certificate bundle, the
operation and the deleted bundle (only for api-versions that know it), and its survival across a
restart and a backup/restore.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from tests.integration.vault.vault_helpers import policy
from tests.support.vault import LocalVault

NEW = "2026-04-01"
OLD = "7.5"
PEM_TYPE = "application/x-pem-file"
ROOT_FIRST = ["root", "intermediate", "leaf"]
LEAF_FIRST = ["leaf", "root", "intermediate"]


def _cert(
    cn: str, key: ec.EllipticCurvePrivateKey, issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey]
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(issuer[0])
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=cn != "leaf", path_length=None), critical=True)
        .sign(issuer[1], hashes.SHA256())
    )


@dataclass(frozen=True)
class Chain:
    """root -> intermediate -> leaf; `leaf` may be replaced by a leaf for another key (a CSR)."""

    root_key: ec.EllipticCurvePrivateKey
    root: x509.Certificate
    inter_key: ec.EllipticCurvePrivateKey
    inter: x509.Certificate
    leaf_key: ec.EllipticCurvePrivateKey
    leaf: x509.Certificate

    @classmethod
    def make(cls) -> Chain:
        root_key, inter_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in "abc")
        root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "root")])
        root = _cert("root", root_key, (root_name, root_key))
        inter = _cert("intermediate", inter_key, (root.subject, root_key))
        leaf = _cert("leaf", leaf_key, (inter.subject, inter_key))
        return cls(root_key, root, inter_key, inter, leaf_key, leaf)

    def certs(self, order: list[str]) -> list[x509.Certificate]:
        by_cn = {"root": self.root, "intermediate": self.inter, "leaf": self.leaf}
        return [by_cn[cn] for cn in order]

    def pem(self, order: list[str]) -> str:
        key = self.leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        blocks = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.certs(order))
        return (key + blocks).decode()

    def pfx_b64(self, order: list[str]) -> str:
        """Certificate bags in `order`: the leaf's bag first carries the key's localKeyId, a
        leaf elsewhere goes in a plain bag (the reader pairs it with the key by its key)."""
        certs = self.certs(order)
        leaf = certs[0] if order[0] == "leaf" else None
        cas = certs[1:] if leaf is not None else certs
        blob = pkcs12.serialize_key_and_certificates(
            None, self.leaf_key, leaf, cas, serialization.NoEncryption()
        )
        return base64.b64encode(blob).decode()


def common_names(certs: list[x509.Certificate]) -> list[str]:
    return [str(c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value) for c in certs]


def secret_order(kv: httpx.Client, name: str, leaf_cn: str = "leaf") -> list[str]:
    """The common names of the certificates in the secret, in the order the value holds them."""
    response = kv.get(f"/secrets/{name}?api-version={NEW}")
    assert response.status_code == 200, response.text
    body = response.json()
    if body["contentType"] == PEM_TYPE:
        return common_names(x509.load_pem_x509_certificates(body["value"].encode()))
    blob = base64.b64decode(body["value"])
    parsed = pkcs12.load_pkcs12(blob, None)
    assert parsed.key is not None
    assert parsed.cert is not None
    assert common_names([parsed.cert.certificate]) == [leaf_cn]  # the key's certificate
    # The reader returns the key's certificate apart; the bag order is the order in which each
    # certificate's DER appears in the (unencrypted) PKCS#12 the vault wrote.
    certs = [parsed.cert.certificate] + [c.certificate for c in parsed.additional_certs]
    certs.sort(key=lambda c: blob.index(c.public_bytes(serialization.Encoding.DER)))
    return common_names(certs)


def import_(kv: httpx.Client, name: str, body: dict[str, Any], api: str = NEW) -> dict[str, Any]:
    response = kv.post(f"/certificates/{name}/import?api-version={api}", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


@pytest.fixture(scope="module")
def chain() -> Chain:
    return Chain.make()


@pytest.mark.parametrize("fmt", ["pem", "pfx"])
@pytest.mark.parametrize(("preserve", "expected"), [(True, ROOT_FIRST), (False, LEAF_FIRST)])
def test_import_root_first_keeps_the_order_only_when_asked(
    kv: httpx.Client, name: str, chain: Chain, fmt: str, preserve: bool, expected: list[str]
) -> None:
    body: dict[str, Any] = {"preserveCertOrder": preserve}
    if fmt == "pem":
        body |= {
            "value": chain.pem(ROOT_FIRST),
            "policy": {"secret_props": {"contentType": PEM_TYPE}},
        }
    else:
        body["value"] = chain.pfx_b64(ROOT_FIRST)
    bundle = import_(kv, name, body)
    assert bundle["preserveCertOrder"] is preserve
    assert secret_order(kv, name) == expected
    # The bundle's `cer` is the leaf whatever the order.
    cer = x509.load_der_x509_certificate(base64.b64decode(bundle["cer"]))
    assert common_names([cer]) == ["leaf"]


def test_import_pem_with_the_leaf_in_the_middle_keeps_it_there(
    kv: httpx.Client, name: str, chain: Chain
) -> None:
    order = ["intermediate", "leaf", "root"]
    body = {
        "value": chain.pem(order),
        "policy": {"secret_props": {"contentType": PEM_TYPE}},
        "preserveCertOrder": True,
    }
    import_(kv, name, body)
    assert secret_order(kv, name) == order


def test_before_7_6_the_field_is_ignored_and_not_echoed(
    kv: httpx.Client, name: str, chain: Chain
) -> None:
    body = {"value": chain.pfx_b64(ROOT_FIRST), "preserveCertOrder": True}
    bundle = import_(kv, name, body, api=OLD)
    assert "preserveCertOrder" not in bundle
    assert secret_order(kv, name) == LEAF_FIRST
    # Read under a version that knows the field: the version was made without it.
    again = kv.get(f"/certificates/{name}?api-version={NEW}").json()
    assert again["preserveCertOrder"] is False


def _signed_for(chain: Chain, csr_b64: str) -> x509.Certificate:
    csr = x509.load_der_x509_csr(base64.b64decode(csr_b64))
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(chain.inter.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(chain.inter_key, hashes.SHA256())
    )


def _der_items(certs: list[x509.Certificate]) -> list[str]:
    return [base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode() for c in certs]


def test_create_unknown_and_merge_root_first_keeps_the_x5c_order(
    kv: httpx.Client, name: str, chain: Chain
) -> None:
    body = {"policy": policy("Unknown"), "preserveCertOrder": True}
    created = kv.post(f"/certificates/{name}/create?api-version={NEW}", json=body)
    assert created.status_code == 202, created.text
    assert created.json()["preserveCertOrder"] is True
    op = kv.get(f"/certificates/{name}/pending?api-version={NEW}").json()
    assert op["preserveCertOrder"] is True
    assert (
        "preserveCertOrder" not in kv.get(f"/certificates/{name}/pending?api-version={OLD}").json()
    )
    only_pending = kv.get(f"/certificates/{name}?api-version={NEW}").json()
    assert only_pending["preserveCertOrder"] is True
    leaf = _signed_for(chain, op["csr"])
    x5c = _der_items([chain.root, chain.inter, leaf])
    merged = kv.post(f"/certificates/{name}/pending/merge?api-version={NEW}", json={"x5c": x5c})
    assert merged.status_code == 201, merged.text
    assert merged.json()["preserveCertOrder"] is True
    assert merged.json()["cer"] == x5c[2]
    order = secret_order(kv, name, leaf_cn="test.example.com")
    assert order == ["root", "intermediate", "test.example.com"]
    done = kv.get(f"/certificates/{name}/pending?api-version={NEW}").json()
    assert done["status"] == "completed"
    assert done["preserveCertOrder"] is True
    assert "preserveCertOrder" not in kv.get(f"/certificates/{name}?api-version={OLD}").json()


def test_create_without_the_flag_still_wants_the_leaf_first(
    kv: httpx.Client, name: str, chain: Chain
) -> None:
    created = kv.post(
        f"/certificates/{name}/create?api-version={NEW}", json={"policy": policy("Unknown")}
    )
    assert created.status_code == 202, created.text
    assert created.json()["preserveCertOrder"] is False
    leaf = _signed_for(chain, created.json()["csr"])
    root_first = {"x5c": _der_items([chain.root, chain.inter, leaf])}
    refused = kv.post(f"/certificates/{name}/pending/merge?api-version={NEW}", json=root_first)
    assert refused.status_code == 400, refused.text
    leaf_first = {"x5c": _der_items([leaf, chain.inter, chain.root])}
    merged = kv.post(f"/certificates/{name}/pending/merge?api-version={NEW}", json=leaf_first)
    assert merged.status_code == 201, merged.text
    assert merged.json()["preserveCertOrder"] is False
    order = secret_order(kv, name, leaf_cn="test.example.com")
    assert order == ["test.example.com", "intermediate", "root"]


def test_self_issued_create_echoes_the_flag(kv: httpx.Client, name: str) -> None:
    body = {"policy": policy("Self"), "preserveCertOrder": True}
    created = kv.post(f"/certificates/{name}/create?api-version=7.6", json=body)
    assert created.status_code == 202, created.text
    assert created.json()["preserveCertOrder"] is True


def test_the_flag_survives_restart_delete_recover_and_backup_restore(chain: Chain) -> None:
    with LocalVault.start(profile="documented") as vault, vault.client() as kv:
        body = {
            "value": chain.pem(ROOT_FIRST),
            "policy": {"secret_props": {"contentType": PEM_TYPE}},
            "preserveCertOrder": True,
        }
        import_(kv, "kept", body)
        vault.restart()
        with vault.client() as again:
            assert again.get(f"/certificates/kept?api-version={NEW}").json()["preserveCertOrder"]
            assert secret_order(again, "kept") == ROOT_FIRST
            deleted = again.delete(f"/certificates/kept?api-version={NEW}")
            assert deleted.status_code == 200, deleted.text
            assert deleted.json()["preserveCertOrder"] is True
            shown = again.get(f"/deletedcertificates/kept?api-version={NEW}").json()
            assert shown["preserveCertOrder"] is True
            assert (
                "preserveCertOrder"
                not in again.get(f"/deletedcertificates/kept?api-version={OLD}").json()
            )
            recovered = again.post(f"/deletedcertificates/kept/recover?api-version={NEW}")
            assert recovered.status_code == 200, recovered.text
            backup = again.post(f"/certificates/kept/backup?api-version={NEW}").json()
            assert again.delete(f"/certificates/kept?api-version={NEW}").status_code == 200
            purged = again.delete(f"/deletedcertificates/kept?api-version={NEW}")
            assert purged.status_code == 204, purged.text
            restored = again.post(f"/certificates/restore?api-version={NEW}", json=backup)
            assert restored.status_code == 200, restored.text
            assert restored.json()["preserveCertOrder"] is True
            assert secret_order(again, "kept") == ROOT_FIRST


def test_pkcs12_with_encrypted_certificate_bags_puts_the_leaf_first(
    kv: httpx.Client, name: str, chain: Chain
) -> None:
    """The leaf's bag position is not visible in an encrypted SafeContents: the leaf comes
    first, the other certificates keep their bag order."""
    certs = chain.certs(ROOT_FIRST)
    blob = pkcs12.serialize_key_and_certificates(
        None, chain.leaf_key, None, certs, serialization.BestAvailableEncryption(b"pw")
    )
    body = {"value": base64.b64encode(blob).decode(), "pwd": "pw", "preserveCertOrder": True}
    assert import_(kv, name, body)["preserveCertOrder"] is True
    assert secret_order(kv, name) == ["leaf", "root", "intermediate"]
