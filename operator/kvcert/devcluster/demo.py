"""`kvcert dev up`: everything kvcert needs, started locally, and the examples applied.

The control plane, the local vault and the operator run as child processes; the simulated
DigiCert issuer is declared as a CertificateIssuer (examples/certificateissuer.yaml) and waited
for; a certificate is made directly in the vault, as a team migrating to kvcert would already
have one (`legacy-web`, delivered by examples/existing-certificate.yaml); examples/ is applied
with kubectl, and the one step a human does for a manual certificate (signing its CSR with a CA
of their choice) is done by a throwaway demo CA.
"""

from __future__ import annotations

import base64
import datetime
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from kvcert.devcluster.processes import RunningVault

REPO_ROOT = Path(__file__).resolve().parents[3]
NAMESPACE = "demo"
GROUP, VERSION = "kvcert.io", "v1alpha1"


def api_client(kubeconfig: Path) -> client.ApiClient:
    api: client.ApiClient = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
    return api


def install_crds(kubectl: list[str]) -> None:
    subprocess.run([*kubectl, "apply", "-f", str(REPO_ROOT / "crds")], check=True)  # noqa: S603
    subprocess.run(  # noqa: S603
        [*kubectl, "wait", "--for=condition=Established", "crd", "--all", "--timeout=60s"],
        check=True,
    )


ISSUER_EXAMPLE = REPO_ROOT / "examples" / "certificateissuer.yaml"
ISSUER_PASSWORD = "demo-password"  # noqa: S105 - the local vault's simulated DigiCert account


def create_issuer(api: client.ApiClient, timeout: float = 60) -> None:
    """The CA issuer `mydigicert`, as a platform team declares it: its password Secret
    (labelled so that a rotation is applied at once) and examples/certificateissuer.yaml, then
    wait until the operator has written it to Key Vault (Ready), before any Certificate names
    it (a create naming an issuer Key Vault does not have is refused)."""
    issuer = yaml.safe_load(ISSUER_EXAMPLE.read_text())
    secret = issuer["spec"]["passwordSecretRef"]
    client.CoreV1Api(api).create_namespaced_secret(
        NAMESPACE,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name=secret["name"], labels={"kvcert.io/source": "true"}),
            string_data={secret["key"]: ISSUER_PASSWORD},
        ),
    )
    custom = client.CustomObjectsApi(api)
    custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "certificateissuers", issuer)
    name = issuer["metadata"]["name"]
    deadline = time.monotonic() + timeout
    while True:
        found: dict[str, Any] = custom.get_namespaced_custom_object(  # type: ignore[assignment]
            GROUP, VERSION, NAMESPACE, "certificateissuers", name
        )
        conditions = (found.get("status") or {}).get("conditions") or []
        ready = next((c for c in conditions if c.get("type") == "Ready"), None)
        if ready is not None and ready.get("status") == "True":
            print(f"CertificateIssuer {name}: Ready ({ready.get('message')})", flush=True)
            return
        if time.monotonic() > deadline:
            said = f"{ready.get('reason')}: {ready.get('message')}" if ready else "no status"
            raise TimeoutError(f"CertificateIssuer {name} did not become Ready ({said})")
        time.sleep(0.5)


EXISTING_EXAMPLE = REPO_ROOT / "examples" / "existing-certificate.yaml"


def create_outside_certificate(vault: RunningVault, timeout: float = 30) -> None:
    """A certificate made in the vault without kvcert (as `az keyvault certificate create`
    would), untagged, issuer Self: what examples/existing-certificate.yaml delivers."""
    name = yaml.safe_load(EXISTING_EXAMPLE.read_text())["spec"]["certificateName"]
    policy = {
        "issuer": {"name": "Self"},
        "x509_props": {
            "subject": "CN=legacy.example.com",
            "sans": {"dns_names": ["legacy.example.com"]},
        },
        "key_props": {"kty": "EC", "crv": "P-256", "exportable": True},
        "secret_props": {"contentType": "application/x-pem-file"},
    }
    params = {"api-version": "7.5"}
    with vault.client() as http:
        answer = http.post(f"/certificates/{name}/create", params=params, json={"policy": policy})
        answer.raise_for_status()
        deadline = time.monotonic() + timeout
        pending = f"/certificates/{name}/pending"
        while http.get(pending, params=params).json()["status"].lower() != "completed":
            if time.monotonic() > deadline:
                raise TimeoutError(f"the vault did not issue {name}")
            time.sleep(0.2)
    print(f"Key Vault certificate {name} made outside kvcert (issuer Self)", flush=True)


def create_vault_resource(api: client.ApiClient, vault: RunningVault) -> None:
    core = client.CoreV1Api(api)
    try:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE)))
    except ApiException as error:
        if error.status != 409:
            raise
    token = base64.b64encode(vault.token.encode()).decode()
    core.create_namespaced_secret(
        NAMESPACE,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="local-vault-token"), data={"token": token}
        ),
    )
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP,
        VERSION,
        NAMESPACE,
        "keyvaults",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "KeyVault",
            "metadata": {"name": "local"},
            "spec": {
                "url": vault.url,
                "auth": {"token": {"secretRef": {"name": "local-vault-token", "key": "token"}}},
                "caBundle": vault.ca_path.read_text(),
            },
        },
    )


def sign_manual_request(api: client.ApiClient, timeout: float = 120) -> None:
    """Play the human: take the CSR from the ConfigMap, sign it, put the chain in mergeFrom."""
    core = client.CoreV1Api(api)
    deadline = time.monotonic() + timeout
    while True:
        try:
            data = core.read_namespaced_config_map("api-csr", NAMESPACE).data or {}
            csr_pem = data["csr.pem"]
            break
        except (ApiException, KeyError, TypeError):
            if time.monotonic() > deadline:
                raise TimeoutError("the manual certificate's CSR never appeared") from None
            time.sleep(0.5)
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kvcert demo CA")])
    now = datetime.datetime.now(datetime.UTC)
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(ca_name)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=90))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("api.example.com")]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    chain = leaf.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(
        serialization.Encoding.PEM
    )
    core.create_namespaced_secret(
        NAMESPACE,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="api-signed"),
            data={"tls.crt": base64.b64encode(chain).decode()},
        ),
    )
    print(
        "signed the CSR of 'api' with a demo CA and put the chain in Secret api-signed", flush=True
    )


def all_ready(api: client.ApiClient) -> tuple[bool, int]:
    listed: dict[str, Any] = client.CustomObjectsApi(api).list_namespaced_custom_object(  # type: ignore[assignment]
        GROUP, VERSION, NAMESPACE, "certificates"
    )
    items = listed.get("items", [])
    ready = [
        item
        for item in items
        if any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in (item.get("status") or {}).get("conditions") or []
        )
    ]
    return bool(items) and len(ready) == len(items), len(items)


def watch_until_ready(kubectl: list[str], api: client.ApiClient, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        shown = subprocess.run(  # noqa: S603
            [*kubectl, "get", "kvcerts", "-n", NAMESPACE],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        if shown != last:
            print(shown, flush=True)
            last = shown
        done, _ = all_ready(api)
        if done:
            return True
        time.sleep(2)
    return False


def examples() -> list[Path]:
    return [*sorted((REPO_ROOT / "examples").glob("certificate-*.yaml")), EXISTING_EXAMPLE]


def describe_examples() -> str:
    names = [yaml.safe_load(path.read_text())["metadata"]["name"] for path in examples()]
    return ", ".join(names)
