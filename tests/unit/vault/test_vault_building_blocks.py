"""Policies, TLS files, the store's transactions and the CLI wiring of the local vault."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from kvcert.vault import policy as policies
from kvcert.vault import tls
from kvcert.vault.cli import register
from kvcert.vault.errors import VaultError
from kvcert.vault.store import Store
from kvcert.vault.wire import PolicyIn

NOW = 1_800_000_000.0


def test_an_empty_policy_gets_key_vaults_defaults() -> None:
    policy = policies.normalize({"x509_props": {"subject": "CN=a"}})
    assert policy["key_props"] == {
        "kty": "RSA",
        "key_size": 2048,
        "exportable": True,
        "reuse_key": False,
    }
    assert policy["secret_props"] == {"contentType": "application/x-pkcs12"}
    assert policy["issuer"] == {"name": "Unknown"}
    assert policy["x509_props"]["validity_months"] == 12
    # issuer Unknown: Key Vault e-mails the contacts at 80 % (it renews only what an issuer signs)
    assert policy["lifetime_actions"] == [
        {"trigger": {"lifetime_percentage": 80}, "action": {"action_type": "EmailContacts"}}
    ]


@pytest.mark.parametrize(
    ("given", "key_props"),
    [
        ({"kty": "EC"}, {"kty": "EC", "crv": "P-256", "key_size": 256}),
        ({"kty": "EC-HSM", "crv": "P-384"}, {"kty": "EC-HSM", "crv": "P-384", "key_size": 384}),
        ({"kty": "RSA", "key_size": 4096}, {"kty": "RSA", "key_size": 4096}),
    ],
    ids=[
        "an EC key defaults to P-256",
        "an EC curve sets the key size",
        "an RSA size Key Vault supports is kept",
    ],
)
def test_key_properties(given: dict[str, Any], key_props: dict[str, Any]) -> None:
    policy = policies.normalize({"key_props": given, "x509_props": {"subject": "CN=a"}})
    assert key_props.items() <= policy["key_props"].items()


def test_a_policy_patch_changes_only_the_fields_it_sets() -> None:
    base = policies.normalize(
        {"key_props": {"kty": "EC"}, "x509_props": {"subject": "CN=a", "validity_months": 6}}
    )
    update = PolicyIn.model_validate({"x509_props": {"subject": "CN=b"}})
    merged = policies.merge(base, update)
    assert merged["x509_props"]["subject"] == "CN=b"
    assert merged["x509_props"]["validity_months"] == 6
    assert merged["key_props"]["kty"] == "EC"


def test_tls_files_are_made_once_and_reissued_only_for_a_new_host_name(tmp_path: Path) -> None:
    first = tls.ensure(tmp_path, [], NOW)
    ca, cert = first.ca.read_bytes(), first.cert.read_bytes()
    again = tls.ensure(tmp_path, [], NOW)
    assert (again.ca.read_bytes(), again.cert.read_bytes()) == (ca, cert)
    named = tls.ensure(tmp_path, ["kv.vault.test"], NOW)
    assert named.ca.read_bytes() == ca
    server = x509.load_pem_x509_certificate(named.cert.read_bytes())
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"localhost", "kv.vault.test"} <= set(san.get_values_for_type(x509.DNSName))
    assert (tmp_path / "tls" / "server.key").stat().st_mode & 0o077 == 0


def test_a_failed_transaction_leaves_the_store_unchanged(tmp_path: Path) -> None:
    store = Store(tmp_path / "vault.sqlite3")
    store.put_issuer("kept", {"provider": "DigiCert"})

    def replace_issuers_then_fail() -> None:
        with store.transaction():
            store.put_issuer("lost", {"provider": "DigiCert"})
            store.delete_issuer("kept")
            raise VaultError(400, "BadParameter", "no")

    with pytest.raises(VaultError):
        replace_issuers_then_fail()
    assert store.get_issuer("kept") == {"provider": "DigiCert"}
    assert store.get_issuer("lost") is None
    store.close()


def test_the_serve_command_takes_every_documented_option() -> None:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        [
            "vault",
            "serve",
            "--host",
            "0.0.0.0",
            "--port",
            "9443",
            "--data-dir",
            "/tmp/v",
            "--token",
            "t",
            "--profile",
            "service",
            "--hostname",
            "a.b.c",
            "--hostname",
            "d.e.f",
            "g.h.i",
            "--ca-delay",
            "1.5",
        ]
    )
    assert (args.host, args.port, args.data_dir, args.token) == (
        "0.0.0.0",
        9443,
        Path("/tmp/v"),
        "t",
    )
    assert (args.profile, args.hostname, args.ca_delay) == (
        "service",
        ["a.b.c", "d.e.f", "g.h.i"],
        1.5,
    )
    assert callable(args.run)
