"""Level-triggered outputs and sources: the operator watches output Secrets and labelled source
Secrets (each through a server-side label selector) and repairs or merges at once, while any
other Secret, and the echo of its own writes, costs nothing."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import serialization
from kubernetes import client

from tests.integration.operator.harness import (
    CREATES,
    MERGES,
    Kube,
    VaultOps,
    certificate_spec,
    never,
    secret_text,
    wait_for,
)
from tests.integration.operator.testca import TestCA, pem_certs
from tests.support.operator_process import OperatorProcess

X5T = "kvcert.io/x5t"
REPAIR_WAIT = 15.0
"""Seconds within which a deleted or edited output Secret is restored (an event, not a poll)."""
MERGE_WAIT = 10.0
"""Seconds within which a labelled mergeFrom Secret is merged (unlabelled: re-checked ~60 s)."""
QUIET = 3.0
"""Seconds of the negative windows: no reconcile may happen in them."""


def _ready_self(kube: Kube, name: str) -> tuple[dict, client.V1Secret]:
    kube.apply_certificate(name, certificate_spec("main", f"{name}-tls"))
    body = kube.wait_condition(name, "Ready", "True", "Issued")
    secret = wait_for(lambda: kube.secret(f"{name}-tls"), 15, f"Secret {name}-tls")
    return body, secret


def _x5t(secret: client.V1Secret | None) -> str | None:
    if secret is None or secret.metadata is None:
        return None
    return (secret.metadata.annotations or {}).get(X5T)


def test_a_deleted_output_secret_is_written_again_without_a_new_create(
    kube: Kube, keyvault: str, vault_ops: VaultOps
):
    body, secret = _ready_self(kube, "gone")
    x5t = body["status"]["certificate"]["x5t"]
    assert _x5t(secret) == x5t
    creates = vault_ops.count(CREATES)

    kube.core.delete_namespaced_secret("gone-tls", kube.namespace)

    restored = wait_for(
        lambda: _x5t(kube.secret("gone-tls")) == x5t and kube.secret("gone-tls"),
        REPAIR_WAIT,
        "the output Secret written again",
    )
    assert restored.metadata.uid != secret.metadata.uid
    assert secret_text(restored, "tls.crt") == secret_text(secret, "tls.crt")
    assert vault_ops.count(CREATES) == creates


def test_an_edited_tls_crt_is_restored(kube: Kube, keyvault: str, vault_ops: VaultOps):
    _, secret = _ready_self(kube, "edited")
    original = secret_text(secret, "tls.crt")
    creates = vault_ops.count(CREATES)
    other = TestCA.make().cert.public_bytes(serialization.Encoding.PEM)
    kube.core.patch_namespaced_secret(
        "edited-tls", kube.namespace, {"data": {"tls.crt": base64.b64encode(other).decode()}}
    )

    def restored() -> bool:
        found = kube.secret("edited-tls")
        return found is not None and secret_text(found, "tls.crt") == original

    wait_for(restored, REPAIR_WAIT, "tls.crt restored")
    assert vault_ops.count(CREATES) == creates


def test_other_secrets_and_metadata_edits_cause_no_reconcile(
    kube: Kube, keyvault: str, vault_ops: VaultOps
):
    body, _ = _ready_self(kube, "quiet")
    # Let the issuing round settle: its own Secret write echoes, which must cost nothing.
    version = body["metadata"]["resourceVersion"]
    requests = vault_ops.total()

    def reconciled() -> bool:
        now = kube.certificate("quiet") or {}
        return vault_ops.total() != requests or now["metadata"]["resourceVersion"] != version

    never(reconciled, QUIET, "a reconcile after the certificate was Ready")
    kube.put_secret("unrelated", {"tls.crt": b"not ours"})
    kube.put_secret("unrelated", {"tls.crt": b"still not ours"})
    kube.core.patch_namespaced_secret(
        "quiet-tls", kube.namespace, {"metadata": {"annotations": {"team": "edge"}}}
    )
    never(reconciled, QUIET, "a reconcile caused by an unrelated Secret or a metadata edit")


def test_a_labelled_merge_from_secret_is_merged_as_soon_as_it_is_applied(
    kube: Kube, keyvault: str, vault_ops: VaultOps, operator: OperatorProcess
):
    spec = certificate_spec("main", "fast-tls", "Unknown", mergeFrom={"secretName": "fast-signed"})
    kube.apply_certificate("fast", spec)
    body = kube.wait_condition("fast", "Issuing", "True", "AwaitingMerge")
    merges = vault_ops.count(MERGES)
    ca = TestCA.make()
    leaf = ca.sign_csr(body["status"]["operation"]["csr"])
    kube.core.create_namespaced_secret(
        kube.namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="fast-signed", labels={"kvcert.io/source": "true"}),
            data={"tls.crt": base64.b64encode(ca.chain_pem(leaf)).decode()},
        ),
    )

    kube.wait_condition("fast", "Ready", "True", "Issued", timeout=MERGE_WAIT)
    assert vault_ops.count(MERGES) == merges + 1
    delivered = pem_certs(secret_text(kube.secret("fast-tls"), "tls.crt"))  # type: ignore[arg-type]
    assert delivered[0] == leaf
    # The merge came from the source watch, not from a poll of the operation.
    line = f"{kube.namespace}/fast: source Secret fast-signed changed"
    assert line in operator.log(tail=2_000_000)
