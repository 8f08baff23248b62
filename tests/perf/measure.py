"""What the benchmarks read off the machine and the servers: CPU seconds and RSS of a process
(from /proc), kube-apiserver's request counters by verb and resource, the local vault's request
counters, and the times at which each Certificate became Ready (one watch, no polling)."""

from __future__ import annotations

import os
import re
import ssl
import statistics
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from kubernetes import client, watch

from kvcert.devcluster.controlplane import ControlPlane
from tests.support.vault import LocalVault

GROUP, VERSION = "kvcert.io", "v1alpha1"
WRITE_VERBS = {"POST", "PUT", "PATCH", "DELETE", "APPLY"}
READ_VERBS = {"GET", "LIST"}
_SAMPLE = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>[0-9.e+]+)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')
_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` and all its threads (/proc/PID/stat fields
    14 and 15, in clock ticks); 0.0 when the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = text.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def rss_bytes(pid: int) -> int:
    """Resident set size of `pid` in bytes (VmRSS of /proc/PID/status); 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def plane_pids(plane: ControlPlane) -> dict[str, int]:
    """{"etcd": pid, "kube-apiserver": pid} of a running local control plane."""
    return {name: process.pid for name, process, _ in plane._processes}


def api_requests(plane: ControlPlane) -> Counter[str]:
    """Cumulative requests served by kube-apiserver, keyed "VERB resource[/subresource]", for
    every verb but WATCH; the API server's own lease renewals are left out."""
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
        resource = labels.get("resource")
        if not resource or resource == "leases" or labels.get("verb") == "WATCH":
            continue
        key = resource + ("/" + labels["subresource"] if labels.get("subresource") else "")
        counts[f"{labels['verb']} {key}"] += int(float(match.group("value")))
    return counts


def split_requests(counts: Counter[str]) -> tuple[dict[str, int], dict[str, int]]:
    """(writes, reads) of an `api_requests` difference, zero entries dropped."""
    writes = {k: v for k, v in counts.items() if k.split()[0] in WRITE_VERBS and v > 0}
    reads = {k: v for k, v in counts.items() if k.split()[0] in READ_VERBS and v > 0}
    return writes, reads


def vault_requests(vault: LocalVault) -> dict[str, int]:
    """The local vault's request counters by route (`GET /_kvcert/stats`)."""
    with vault.client() as http:
        stats: dict[str, int] = http.get("/_kvcert/stats").json()["requests"]
        return stats


def reset_vault_requests(vault: LocalVault) -> None:
    with vault.client() as http:
        http.delete("/_kvcert/stats")


def percentile(values: list[float], fraction: float) -> float | None:
    """The `fraction` quantile (0..1) of `values`, linear between ranks; None when empty."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(fraction * 100) - 1]


class ReadyWatch:
    """Records, from one watch on a namespace's Certificates, the wall time (time.time()) at
    which each first had condition Ready=True. A thread of its own; `stop()` ends it."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self._custom = client.CustomObjectsApi(api)
        self._namespace = namespace
        self._watch = watch.Watch()
        self.ready_at: dict[str, float] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._thread = threading.Thread(target=self._run, daemon=True, name="ready-watch")
        self._stopped = False

    def start(self) -> ReadyWatch:
        self._thread.start()
        return self

    def _run(self) -> None:
        version = ""
        while not self._stopped:
            try:
                for event in self._watch.stream(
                    self._custom.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    self._namespace,
                    "certificates",
                    resource_version=version or None,
                    timeout_seconds=300,
                ):
                    obj: dict[str, Any] = event["object"]
                    meta = obj.get("metadata", {})
                    version = meta.get("resourceVersion", version)
                    if _is_ready(obj):
                        with self._changed:
                            self.ready_at.setdefault(meta["name"], time.time())
                            self._changed.notify_all()
                    if self._stopped:
                        return
            except Exception:  # a dropped watch is restarted from where it was
                if self._stopped:
                    return
                time.sleep(0.2)

    def wait_for(self, count: int, timeout: float) -> int:
        """Block until `count` Certificates were seen Ready or `timeout` s passed; how many."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.ready_at) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(min(left, 1.0))
            return len(self.ready_at)

    def stop(self) -> None:
        self._stopped = True
        self._watch.stop()


def _is_ready(obj: dict[str, Any]) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
