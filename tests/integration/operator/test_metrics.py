"""The session operator's Prometheus endpoint (`--metrics`, conftest's `metrics_url`): a Self
certificate's series follow its status, the request counters name the vault's host only, and
the series of a deleted Certificate disappear."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.operator.harness import Kube, wait_for
from tests.support.vault import LocalVault

Sample = tuple[str, dict[str, str], float]


def scrape(url: str) -> list[Sample]:
    """Every sample of one scrape: (name, labels, value)."""
    response = httpx.get(url, timeout=10.0)
    response.raise_for_status()
    return [
        (sample.name, dict(sample.labels), sample.value)
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    ]


def value(samples: list[Sample], metric: str, /, **labels: str) -> float | None:
    found = [v for n, ls, v in samples if n == metric and labels.items() <= ls.items()]
    return sum(found) if found else None


@pytest.mark.one_profile("documented")
def test_metrics_follow_a_certificate_and_forget_it_when_deleted(
    kube: Kube, keyvault: str, vault: LocalVault, metrics_url: str
) -> None:
    kube.apply_certificate(
        "metered",
        {
            "vaultRef": {"name": keyvault},
            "secretName": "metered-tls",
            "policy": {
                "issuer": {"name": "Self"},
                "subject": "CN=metered.example.com",
                "validityMonths": 12,
                "key": {"type": "EC", "curve": "P-256", "exportable": True},
                "contentType": "application/x-pem-file",
            },
        },
    )
    body = kube.wait_condition("metered", "Ready", "True", "Issued")
    ours = {"name": "metered", "namespace": kube.namespace, "issuer": "Self"}
    ready = {**ours, "condition": "True", "reason": "Issued"}

    def scraped_ready() -> list[Sample] | None:
        samples = scrape(metrics_url)
        return samples if value(samples, "kvcert_certificate_ready_status", **ready) == 1 else None

    samples = wait_for(scraped_ready, timeout=30, what="Ready True in the metrics")
    for condition in ("False", "Unknown"):
        assert value(samples, "kvcert_certificate_ready_status", **ours, condition=condition) == 0
    not_after = datetime.fromisoformat(body["status"]["certificate"]["notAfter"]).timestamp()
    got = value(samples, "kvcert_certificate_expiration_timestamp_seconds", **ours)
    assert got == not_after
    not_before = datetime.fromisoformat(body["status"]["certificate"]["notBefore"]).timestamp()
    assert value(samples, "kvcert_certificate_not_before_timestamp_seconds", **ours) == not_before
    if body["status"].get("renewalTime"):
        renewal = datetime.fromisoformat(body["status"]["renewalTime"]).timestamp()
        assert value(samples, "kvcert_certificate_renewal_timestamp_seconds", **ours) == renewal
    assert value(samples, "kvcert_certificate_operation_status", **ours, status="completed") == 1
    assert value(samples, "kvcert_certificate_operation_status", **ours, status="failed") == 0

    host = urlsplit(vault.url).hostname or ""
    requests = [(ls, v) for n, ls, v in samples if n == "kvcert_keyvault_requests_total"]
    assert sum(v for ls, v in requests if ls["host"] == host) > 0
    for labels, _ in requests:
        assert set(labels) == {"host", "operation", "code"}
        assert "/" not in labels["host"]
        assert ":" not in labels["host"]
        assert "metered" not in labels["operation"]
    assert value(samples, "kvcert_keyvault_request_duration_seconds_count", host=host)
    settled = sum(
        value(samples, "kvcert_reconcile_total", result=result) or 0 for result in ("ok", "requeue")
    )
    assert settled > 0
    assert value(samples, "kvcert_reconcile_duration_seconds_count")
    status_writes = value(
        samples, "kvcert_kubernetes_requests_total", verb="patch", resource="certificates/status"
    )
    assert status_writes
    assert value(samples, "kvcert_leader") == 1

    kube.delete_certificate("metered")

    def gone() -> bool:
        return not any(
            name.startswith("kvcert_certificate_") and labels.get("name") == "metered"
            for name, labels, _ in scrape(metrics_url)
        )

    wait_for(gone, timeout=30, what="the deleted Certificate's series to disappear")
