"""The e2e scenario "issuers" (issue #19 §2): a CertificateIssuer and a ClusterCertificateIssuer
written to Key Vault by the operator pod under the chart's RBAC, and deleted with
deletionPolicy: Delete. Applied before their password Secrets, so that a scheduled round reads
the object (get) and the labelled Secret's arrival wakes it; the finalizers are patches."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from tests.integration.operator.harness import GROUP, VERSION, Kube, VaultOps, wait_for

PASSWORD_KEY = "password"


def _issuer(name: str, vault: dict[str, str], secret: dict[str, str]) -> dict[str, Any]:
    return {
        "provider": "DigiCert",
        "issuerName": name,
        "vaultRef": vault,
        "accountId": "e2e",
        "passwordSecretRef": {**secret, "key": PASSWORD_KEY},
        "deletionPolicy": "Delete",
    }


def _password_secret(api: client.ApiClient, namespace: str, name: str) -> None:
    client.CoreV1Api(api).create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name=name, labels={"kvcert.io/source": "true"}),
            string_data={PASSWORD_KEY: "e2e-password"},
        ),
    )


def _ready(read: Any, what: str) -> None:
    def configured() -> bool:
        conditions = (read().get("status") or {}).get("conditions") or []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    wait_for(configured, 90, f"{what} Ready")


def issuers_scenario(
    api: client.ApiClient, kube: Kube, ops: VaultOps, cluster_vault: str, operator_ns: str
) -> None:
    """Namespaced issuer `e2e-ca` in `kube`'s KeyVault main, cluster issuer `e2e-shared-ca` in
    the ClusterKeyVault `cluster_vault` (password Secret in the operator's namespace): each
    Ready, present in Key Vault, then deleted there with its resource."""
    custom = client.CustomObjectsApi(api)
    ns = kube.namespace
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "CertificateIssuer"}
    custom.create_namespaced_custom_object(
        GROUP, VERSION, ns, "certificateissuers",
        {**body, "metadata": {"name": "e2e-ca"},
         "spec": _issuer("e2e-ca", {"name": "main"}, {"name": "ca-account"})},
    )  # fmt: skip
    cluster = {**body, "kind": "ClusterCertificateIssuer", "metadata": {"name": "e2e-shared-ca"}}
    cluster["spec"] = _issuer(
        "e2e-shared-ca",
        {"name": cluster_vault},
        {"name": "shared-ca-account", "namespace": operator_ns},
    )
    custom.create_cluster_custom_object(GROUP, VERSION, "clustercertificateissuers", cluster)
    wait_for(
        lambda: (custom.get_namespaced_custom_object(
            GROUP, VERSION, ns, "certificateissuers", "e2e-ca"
        ).get("status") or {}).get("conditions"),
        60,
        "e2e-ca to report (PasswordNotFound)",
    )  # fmt: skip
    _password_secret(api, ns, "ca-account")
    _password_secret(api, operator_ns, "shared-ca-account")

    def namespaced() -> dict[str, Any]:
        found: dict[str, Any] = custom.get_namespaced_custom_object(
            GROUP, VERSION, ns, "certificateissuers", "e2e-ca"
        )
        return found

    def clusterwide() -> dict[str, Any]:
        found: dict[str, Any] = custom.get_cluster_custom_object(
            GROUP, VERSION, "clustercertificateissuers", "e2e-shared-ca"
        )
        return found

    _ready(namespaced, "CertificateIssuer e2e-ca")
    _ready(clusterwide, "ClusterCertificateIssuer e2e-shared-ca")
    for name in ("e2e-ca", "e2e-shared-ca"):
        assert ops.ok("GET", f"/certificates/issuers/{name}")["provider"] == "DigiCert"
    custom.delete_namespaced_custom_object(GROUP, VERSION, ns, "certificateissuers", "e2e-ca")
    custom.delete_cluster_custom_object(
        GROUP, VERSION, "clustercertificateissuers", "e2e-shared-ca"
    )
    for name in ("e2e-ca", "e2e-shared-ca"):
        wait_for(
            lambda name=name: ops.call("GET", f"/certificates/issuers/{name}").status_code == 404,
            60,
            f"issuer {name} deleted in Key Vault",
        )
