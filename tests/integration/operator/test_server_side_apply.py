"""Server-side apply, as Argo CD (ServerSideApply=true) and Flux apply: every namespaced example
(examples/*.yaml: Certificate, KeyVault, CertificateIssuer, pointed at the test's vault and
namespace) applied
twice is a no-op the second time, and the operator owns no spec field: its managedFields entries
touch only status, metadata.finalizers and the kopf/kvcert annotations."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from tests.integration.operator.harness import GROUP, VERSION, Kube, VaultOps, wait_for
from tests.support.gitops import REPO

pytestmark = pytest.mark.one_profile("documented")
MANAGER = "gitops-test"
PLURALS = {
    "Certificate": "certificates",
    "KeyVault": "keyvaults",
    "CertificateIssuer": "certificateissuers",
}
OWNED_METADATA = {"f:finalizers", "f:annotations"}
OWNED_ANNOTATION_PREFIXES = ("f:kvcert.io/", "f:kopf.zalando.org/")


def examples(vault: str) -> list[dict[str, Any]]:
    """examples/*.yaml, namespaced kinds only (a ClusterCertificateIssuer would reach past the
    test's namespace), each Certificate and CertificateIssuer pointed at `vault`, the KeyVault
    renamed (the test's own KeyVault is `main`). The adoption example names the same Key Vault
    certificate and Secret as the Existing one it turns Managed: it gets names of its own."""
    found = []
    for path in sorted((REPO / "examples").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc["kind"] not in PLURALS:
                continue
            if doc["kind"] in ("Certificate", "CertificateIssuer"):
                doc["spec"]["vaultRef"] = {"name": vault}
            else:
                doc["metadata"]["name"] = f"example-{doc['metadata']['name']}"
            if path.name == "adopt-certificate.yaml":
                doc["metadata"]["name"] = doc["spec"]["certificateName"] = "example-adopt"
                doc["spec"]["secretName"] = "example-adopt-tls"
            found.append(doc)
    return found


def apply(kube: Kube, doc: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = kube.custom.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        kube.namespace,
        PLURALS[doc["kind"]],
        doc["metadata"]["name"],
        copy.deepcopy(doc),
        field_manager=MANAGER,
        _content_type="application/apply-patch+yaml",
    )
    return result


def get(kube: Kube, doc: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = kube.custom.get_namespaced_custom_object(
        GROUP, VERSION, kube.namespace, PLURALS[doc["kind"]], doc["metadata"]["name"]
    )
    return found


def ours(body: dict[str, Any]) -> dict[str, Any]:
    (entry,) = [m for m in body["metadata"]["managedFields"] if m["manager"] == MANAGER]
    return dict(entry)


def test_applying_each_example_twice_is_a_no_op_and_the_operator_owns_no_spec(
    kube: Kube, keyvault: str, vault_ops: VaultOps
) -> None:
    vault_ops.set_issuer("mydigicert", "DigiCert")
    docs = examples(keyvault)
    assert {doc["kind"] for doc in docs} == set(PLURALS)
    for doc in docs:
        apply(kube, doc)
    for doc in docs:
        # The operator has acted: a Ready condition for the current generation.
        wait_for(
            lambda doc=doc: any(
                c.get("type") == "Ready"
                for c in (get(kube, doc).get("status") or {}).get("conditions") or []
            ),
            60,
            f"{doc['kind']} {doc['metadata']['name']} Ready condition",
        )
    for doc in docs:
        for attempt in range(3):
            before = get(kube, doc)
            try:
                after = apply(kube, doc)
            except ApiException as error:  # a 409 is a field conflict with the operator
                pytest.fail(
                    f"second apply of {doc['metadata']['name']}: {error.status} {error.body}"
                )
            if after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]:
                break
            # The operator may have written status in between: only our entry must be unchanged.
            assert ours(after) == ours(before), f"{doc['metadata']['name']}: apply changed fields"
            assert attempt < 2, f"{doc['metadata']['name']}: the second apply was not a no-op"
        assert after["metadata"]["generation"] == before["metadata"]["generation"]
        assert after["spec"] == before["spec"]
        for entry in after["metadata"]["managedFields"]:
            if entry["manager"] == MANAGER:
                assert "f:status" not in entry["fieldsV1"]
                continue
            fields = entry.get("fieldsV1") or {}
            assert set(fields) <= {"f:status", "f:metadata"}, (entry["manager"], fields)
            metadata = fields.get("f:metadata") or {}
            assert set(metadata) <= OWNED_METADATA, (entry["manager"], metadata)
            for key in metadata.get("f:annotations") or {}:
                if key != ".":
                    assert key.startswith(OWNED_ANNOTATION_PREFIXES), (entry["manager"], key)
