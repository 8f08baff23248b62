"""Benchmark of the whole operator: N Self EC certificates from apply to Ready.

    .venv/bin/python -m tests.perf.bench_operator [--count 100 --count 1000] [--out results.json]

Starts its own control plane (or uses KUBECONFIG), a local vault and the operator subprocess,
applies N Certificates (Self issuer, EC P-256, PEM) into a fresh namespace, and reports:
  - seconds until every one is Ready (and certificates/s),
  - Kubernetes API writes per certificate, from kube-apiserver's `apiserver_request_total`
    (POST/PUT/PATCH/DELETE, by resource; the benchmark's own creates and the apiserver's own
    lease renewals are left out),
  - Key Vault requests per certificate, from the vault's `/_kvcert/stats`.
Prints a table, writes JSON. Compare with DESIGN §5: 3 status writes, 1 Secret write, 2 events;
1 create, <= 2 operation reads, 1 certificate read, 1 secret read.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import ssl
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
from kubernetes import client, config

from kvcert.devcluster import binaries
from kvcert.devcluster.controlplane import ControlPlane
from tests.integration.operator.harness import install_crds
from tests.support.operator_process import OperatorProcess
from tests.support.vault import LocalVault

GROUP, VERSION = "kvcert.io", "v1alpha1"
WRITE_VERBS = {"POST", "PUT", "PATCH", "DELETE", "APPLY"}
_SAMPLE = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>[0-9.e+]+)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def api_writes(plane: ControlPlane) -> Counter[str]:
    """Cumulative write requests served by kube-apiserver, keyed by resource[/subresource]."""
    text = httpx.get(
        f"{plane.url}/metrics",
        headers={"Authorization": f"Bearer {plane.admin_token}"},
        verify=ssl.create_default_context(cafile=str(plane.ca_cert)),
        timeout=30,
    ).text
    counts: Counter[str] = Counter()
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if not match:
            continue
        labels = dict(_LABEL.findall(match.group("labels")))
        if labels.get("verb") not in WRITE_VERBS or labels.get("resource") == "leases":
            continue
        key = labels.get("resource", "?")
        if labels.get("subresource"):
            key += "/" + labels["subresource"]
        counts[f"{labels['verb']} {key}"] += int(float(match.group("value")))
    return counts


def vault_stats(vault: LocalVault) -> dict[str, int]:
    with vault.client() as http:
        stats: dict[str, int] = http.get("/_kvcert/stats").json()["requests"]
        return stats


def certificate(index: int) -> dict[str, Any]:
    name = f"c{index:05d}"
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Certificate",
        "metadata": {"name": name},
        "spec": {
            "vaultRef": {"name": "local"},
            "secretName": f"{name}-tls",
            "policy": {
                "issuer": {"name": "Self"},
                "subject": f"CN={name}.example.com",
                "dnsNames": [f"{name}.example.com"],
                "key": {"type": "EC", "curve": "P-256"},
                "contentType": "application/x-pem-file",
            },
        },
    }


def ready_count(custom: client.CustomObjectsApi, namespace: str) -> int:
    listed = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "certificates")
    return sum(
        1
        for item in listed["items"]
        if any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in (item.get("status") or {}).get("conditions") or []
        )
    )


def run_once(
    plane: ControlPlane, api: client.ApiClient, vault: LocalVault, count: int, timeout: float
) -> dict[str, Any]:
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    namespace = f"bench-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    core.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="token"), string_data={"token": vault.token}
        ),
    )
    custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        "keyvaults",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "KeyVault",
            "metadata": {"name": "local"},
            "spec": {
                "url": vault.url,
                "auth": {"token": {"secretRef": {"name": "token", "key": "token"}}},
                "caBundle": vault.ca_path.read_text(),
            },
        },
    )
    time.sleep(2)  # let the KeyVault probe settle so its writes stay out of the counts
    with vault.client() as http:
        http.delete("/_kvcert/stats")
    before = api_writes(plane)
    started = time.perf_counter()
    for index in range(count):
        custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, "certificates", certificate(index)
        )
    applied = time.perf_counter() - started
    deadline = time.monotonic() + timeout
    done = 0
    while time.monotonic() < deadline:
        done = ready_count(custom, namespace)
        if done == count:
            break
        time.sleep(0.5)
    elapsed = time.perf_counter() - started
    time.sleep(3)  # trailing writes (events) of the last certificates
    writes = api_writes(plane) - before
    writes["POST certificates"] -= count  # the benchmark's own creates
    operator_writes = {key: value for key, value in writes.items() if value > 0}
    kv = vault_stats(vault)
    return {
        "count": count,
        "ready": done,
        "apply_seconds": round(applied, 2),
        "seconds_to_all_ready": round(elapsed, 2),
        "certificates_per_second": round(done / elapsed, 1) if elapsed else None,
        "k8s_writes_per_certificate": round(sum(operator_writes.values()) / count, 2),
        "k8s_writes_by_kind_per_certificate": {
            key: round(value / count, 2) for key, value in sorted(operator_writes.items())
        },
        "keyvault_requests_per_certificate": round(sum(kv.values()) / count, 2),
        "keyvault_requests_by_route_per_certificate": {
            key: round(value / count, 2) for key, value in sorted(kv.items())
        },
    }


@contextmanager
def cluster(stack: ExitStack) -> Iterator[ControlPlane]:
    """Always a local control plane: its metrics endpoint is what the write counts come from."""
    directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kvcert-bench-")))
    yield stack.enter_context(ControlPlane(binaries=binaries.ensure(), directory=directory))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, action="append", help="certificates (repeatable)")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--creates-per-10s",
        type=int,
        default=20,
        help="the operator's create limit per vault (Key Vault's published one is 20)",
    )
    args = parser.parse_args()
    counts = args.count or [100]
    results: list[dict[str, Any]] = []
    with ExitStack() as stack:
        plane = stack.enter_context(cluster(stack))
        kubeconfig = plane.kubeconfig
        api = stack.enter_context(config.new_client_from_config(config_file=str(kubeconfig)))
        install_crds(api)
        vault = stack.enter_context(LocalVault.start(profile="service"))
        limit = {"KVCERT_VAULT_CREATES_PER_10S": str(args.creates_per_10s)}
        operator = stack.enter_context(OperatorProcess(kubeconfig, env=limit, verbose=False))
        for count in counts:
            result = run_once(plane, api, vault, count, args.timeout)
            results.append(result)
            if not operator.alive():
                print(operator.log(), file=sys.stderr)
                return 1
    head = ("N", "ready", "s to Ready", "cert/s", "k8s writes/cert", "KV req/cert")
    print(f"{head[0]:>6} {head[1]:>6} {head[2]:>10} {head[3]:>7} {head[4]:>16} {head[5]:>12}")
    for r in results:
        print(
            f"{r['count']:>6} {r['ready']:>6} {r['seconds_to_all_ready']:>10} "
            f"{r['certificates_per_second']:>7} {r['k8s_writes_per_certificate']:>16} "
            f"{r['keyvault_requests_per_certificate']:>12}"
        )
        for key, value in r["k8s_writes_by_kind_per_certificate"].items():
            print(f"{'':>6}   k8s {key}: {value}")
        for key, value in r["keyvault_requests_by_route_per_certificate"].items():
            print(f"{'':>6}   KV  {key}: {value}")
    document = {
        "benchmark": "operator",
        "machine": platform.platform(),
        "creates_per_10s": args.creates_per_10s,
        "results": results,
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(document, indent=2))
    return 0 if all(r["ready"] == r["count"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
