"""Prometheus metrics, named as cert-manager's so that dashboards and alerts port by prefix.

One `Metrics` object per operator (kopf's memo, `memo.metrics`) holds its own CollectorRegistry,
never prometheus_client's global one, so tests can run several side by side. It is served over
HTTP only when `kvcert operator run --metrics http://HOST:PORT/PATH` is given (MetricsServer).

Series (every label value comes from a closed set or a Kubernetes name; never a secret, a token,
a URL path with names in it, or message text):

per Certificate (labels name, namespace, issuer = spec.policy.issuer.name), from its status
after every reconcile, removed when the Certificate is deleted; kept as one small record per
Certificate and built at scrape time (kvcert.runtime.certmetrics):
- kvcert_certificate_ready_status{condition="True|False|Unknown", reason}: 1 for the Ready
  condition's current status, 0 for the other two; `reason` is the Ready reason
  (kvcert.reconcile.reasons) or "" when there is none yet.
- kvcert_certificate_expiration_timestamp_seconds: status.certificate.notAfter, Unix seconds.
- kvcert_certificate_not_before_timestamp_seconds: status.certificate.notBefore, Unix seconds.
- kvcert_certificate_renewal_timestamp_seconds: status.renewalTime, Unix seconds.
- kvcert_certificate_operation_status{status="inProgress|completed|failed|cancelled|deleted"}:
  1 for status.operation.status, 0 for the others (absent while there is no operation).
per vault (labels host = the vault URL's host, operation = METHOD + route template, code = HTTP
status or "error"; kvcert.keyvault.observe):
- kvcert_keyvault_requests_total, kvcert_keyvault_request_duration_seconds (histogram, seconds),
  kvcert_keyvault_throttled_total{host, operation} (429 answers).
controller:
- kvcert_reconcile_total{result="ok|requeue|error"}: a round that settled and asked for nothing
  more / settled and asked to run again after a delay (polling, backoff, a scheduled wake-up) /
  raised, or did not settle (RECONCILE_RESULTS);
- kvcert_reconcile_duration_seconds (histogram, seconds, no labels);
- kvcert_kubernetes_requests_total{verb, resource, code}: the operator's own API calls
  (kvcert.runtime.kube.Kube and the Events it posts; not kopf's watches);
- kvcert_leader: 1 while this process reconciles (set_leader).
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from kvcert.keyvault.observe import RequestRecord
from kvcert.runtime.certmetrics import CertificateCollector

log = logging.getLogger("kvcert.metrics")

RECONCILE_RESULTS = ("ok", "requeue", "error")
RECONCILE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
KEYVAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """The operator's metrics and the calls that update them (all cheap, none blocking)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        # First, so that the per-Certificate families come first in a scrape, as they did when
        # they were labelled Gauges.
        self.certificates = CertificateCollector()
        r.register(self.certificates)
        vault = ["host", "operation", "code"]
        self.keyvault_requests = Counter(
            "kvcert_keyvault_requests_total",
            "HTTP exchanges with Key Vault (each retry and challenge probe counts).",
            vault,
            registry=r,
        )
        self.keyvault_duration = Histogram(
            "kvcert_keyvault_request_duration_seconds",
            "Duration of one HTTP exchange with Key Vault, seconds.",
            vault,
            buckets=KEYVAULT_BUCKETS,
            registry=r,
        )
        self.keyvault_throttled = Counter(
            "kvcert_keyvault_throttled_total",
            "Key Vault answers 429 (throttled).",
            ["host", "operation"],
            registry=r,
        )
        self.reconciles = Counter(
            "kvcert_reconcile_total",
            "Reconcile rounds of Certificates by result: ok, requeue (asked to run again after "
            "a delay) or error.",
            ["result"],
            registry=r,
        )
        self.reconcile_duration = Histogram(
            "kvcert_reconcile_duration_seconds",
            "Duration of one reconcile round of one Certificate, seconds.",
            buckets=RECONCILE_BUCKETS,
            registry=r,
        )
        self.kubernetes_requests = Counter(
            "kvcert_kubernetes_requests_total",
            "The operator's own Kubernetes API requests (not kopf's watches).",
            ["verb", "resource", "code"],
            registry=r,
        )
        self.leader = Gauge(
            "kvcert_leader", "1 while this process is the one that reconciles.", registry=r
        )
        for result in RECONCILE_RESULTS:
            self.reconciles.labels(result)  # every result shows up as 0 before it happens

    # --- certificates -------------------------------------------------------------------------

    def observe_certificate(
        self, body: Mapping[str, Any], patch: Mapping[str, Any] | None = None
    ) -> None:
        """Update a Certificate's series from its status as stored after `patch` (a status
        merge patch, as kvcert.runtime.kube.Kube.patch_certificate_status sends it)."""
        self.certificates.observe(body, patch)

    def forget_certificate(self, namespace: str, name: str) -> None:
        """Remove every series of a deleted Certificate."""
        self.certificates.forget(namespace, name)

    # --- requests and rounds ------------------------------------------------------------------

    def keyvault_request(self, record: RequestRecord) -> None:
        """A kvcert.keyvault.observe.RequestObserver."""
        values = (record.host, record.operation, record.code)
        self.keyvault_requests.labels(*values).inc()
        self.keyvault_duration.labels(*values).observe(record.seconds)
        if record.code == "429":
            self.keyvault_throttled.labels(record.host, record.operation).inc()

    def kubernetes_request(self, verb: str, resource: str, code: str) -> None:
        """A kvcert.runtime.kubecalls.KubeObserver."""
        self.kubernetes_requests.labels(verb, resource, code).inc()

    def reconciled(self, result: str, seconds: float) -> None:
        """One reconcile round ended with `result` (one of RECONCILE_RESULTS) after `seconds`."""
        if result not in RECONCILE_RESULTS:
            raise ValueError(f"reconcile result must be one of {RECONCILE_RESULTS}: {result!r}")
        self.reconciles.labels(result).inc()
        self.reconcile_duration.observe(seconds)

    def set_leader(self, leader: bool) -> None:
        """kvcert_leader: 1 while this process reconciles, 0 while it stands by."""
        self.leader.set(1.0 if leader else 0.0)

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format (what a scrape returns)."""
        return generate_latest(self.registry)


def parse_endpoint(url: str) -> tuple[str, int, str]:
    """`http://HOST:PORT/PATH` -> (host, port, path); raises ValueError for anything else."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or not parts.hostname or parts.port is None:
        raise ValueError(f"a metrics endpoint is http://HOST:PORT/PATH, not {url!r}")
    return parts.hostname, parts.port, parts.path or "/metrics"


class MetricsServer:
    """Serves one Metrics object over HTTP on the operator's event loop (aiohttp)."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._runner: web.AppRunner | None = None

    async def serve(self, endpoint: str) -> None:
        """Start serving; raises ValueError for a malformed endpoint, OSError when the port
        cannot be bound."""
        host, port, path = parse_endpoint(endpoint)
        app = web.Application()
        app.add_routes([web.get(path, self._scrape)])
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        log.info("serving metrics on %s", endpoint)

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _scrape(self, _: web.Request) -> web.Response:
        body = await asyncio.to_thread(self._metrics.exposition)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
