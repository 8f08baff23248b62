"""Durability: a kill -9 right after acknowledged writes loses none of them; state survives."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tests.integration.vault.vault_helpers import create, pending, set_issuer, url, wait_status
from tests.support.vault import LocalVault


def test_kill_minus_9_loses_no_acknowledged_write() -> None:
    with tempfile.TemporaryDirectory(prefix="kvcert-restart-") as tmp:
        vault = LocalVault.start(data_dir=Path(tmp), profile="service")
        try:
            ca_before = vault.ca_path.read_bytes()
            with vault.client() as kv:
                create(kv, "selfcert", "Self")
                issued = wait_status(kv, "selfcert", timeout=10)
                certificate = kv.get(url("/certificates/selfcert/")).json()
                manual = create(kv, "manual", "Unknown").json()
                set_issuer(kv, "mydigicert", "DigiCert")
                provider = create(kv, "provider", "mydigicert").json()
                assert (
                    kv.put(
                        url("/certificates/contacts"),
                        json={"contacts": [{"email": "a@example.com"}]},
                    ).status_code
                    == 200
                )
                create(kv, "gone", "Self")
                wait_status(kv, "gone", timeout=10)
                assert kv.delete(url("/certificates/gone")).status_code == 200
                # the last acknowledged write, immediately followed by the kill
                last = kv.patch(
                    url("/certificates/provider/pending"), json={"cancellation_requested": True}
                )
                assert last.status_code == 200
            vault.kill()
            assert vault.process is not None
            assert vault.process.returncode == -9

            vault.restart()
            assert vault.ca_path.read_bytes() == ca_before
            with vault.client() as kv:
                again = kv.get(url("/certificates/selfcert/")).json()
                assert again["id"] == certificate["id"]
                assert again["x5t"] == certificate["x5t"]
                assert pending(kv, "selfcert").json()["request_id"] == issued["request_id"]
                op = pending(kv, "manual").json()
                assert (op["status"], op["csr"]) == ("inProgress", manual["csr"])
                op = pending(kv, "provider").json()
                assert op["request_id"] == provider["request_id"]
                assert op["cancellation_requested"] is True
                assert wait_status(kv, "provider", timeout=10)["status"] == "cancelled"
                assert kv.get(url("/certificates/issuers/mydigicert")).status_code == 200
                assert kv.get(url("/certificates/contacts")).json()["contacts"] == [
                    {"email": "a@example.com"}
                ]
                assert kv.get(url("/deletedcertificates/gone")).status_code == 200
                secret = kv.get(url("/secrets/selfcert")).json()
                assert secret["contentType"] == "application/x-pkcs12"
        finally:
            vault.close()
