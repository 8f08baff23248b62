"""kvcert.runtime.certmetrics: the per-Certificate families as a scrape sees them, a scrape taken
while the event loop changes the Certificates, and what one Certificate costs in memory.

The series' values for each status are pinned in test_metrics.py; these cases pin the rest of
what users see (names, HELP text, type, present with no Certificate at all) and the two reasons
the series are built at scrape time (memory per Certificate; scrapes run in a worker thread).
"""

from __future__ import annotations

import gc
import sys
import threading
import tracemalloc
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from kvcert.runtime.certmetrics import CertificateRecord
from kvcert.runtime.metrics import Metrics

FAMILIES = {
    "kvcert_certificate_ready_status": (
        "The Ready condition of a Certificate: 1 for its current status, 0 for the others."
    ),
    "kvcert_certificate_expiration_timestamp_seconds": (
        "notAfter of the delivered certificate version, Unix seconds."
    ),
    "kvcert_certificate_not_before_timestamp_seconds": (
        "notBefore of the delivered certificate version, Unix seconds."
    ),
    "kvcert_certificate_renewal_timestamp_seconds": (
        "status.renewalTime: when kvcert next looks at Key Vault for a new version, Unix s."
    ),
    "kvcert_certificate_operation_status": (
        "The Key Vault pending operation's status: 1 for the current one, 0 for the others."
    ),
}


def issued(i: int) -> dict[str, Any]:
    """An issued Certificate (11 series) with fresh strings, as a watch event delivers it."""
    name = f"web-{i:05d}"
    return {
        "metadata": {"name": name, "namespace": f"team-{i % 7}", "uid": f"u-{i}"},
        "spec": {"secretName": f"{name}-tls", "policy": {"issuer": {"name": "Self"}}},
        "status": {
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "Issued", "message": f"v{i:032x}"}
            ],
            "certificate": {
                "version": f"{i:032x}",
                "notBefore": "2026-11-22T22:34:28Z",
                "notAfter": "2027-11-22T22:44:28Z",
            },
            "renewalTime": "2027-09-10T12:00:00Z",
            "operation": {"status": "completed", "requestId": f"r-{i}"},
        },
    }


def test_the_families_are_exposed_as_gauges_with_their_help_before_any_certificate() -> None:
    text = Metrics().exposition().decode()
    families = {
        family.name: (family.type, family.documentation, family.samples)
        for family in text_string_to_metric_families(text)
    }
    for name, documentation in FAMILIES.items():
        assert families[name] == ("gauge", documentation, []), name
    ours = [line for line in text.splitlines() if line.startswith("# HELP kvcert_certificate_")]
    assert [line.split()[2] for line in ours] == list(FAMILIES), "first, in this order"


def test_a_certificate_is_kept_as_one_record_that_holds_no_text_of_its_body() -> None:
    body = issued(1)
    body["status"]["conditions"][0]["reason"] = "".join(["Iss", "ued"])  # not the interned one
    record = CertificateRecord.from_status("Self", body["status"])
    assert record.reason == "Issued"
    assert record.reason is not body["status"]["conditions"][0]["reason"]
    assert (record.ready, record.operation) == ("True", "completed")
    assert record.not_after is not None
    assert record.not_before is not None
    assert not hasattr(record, "__dict__"), "a slotted record, a few hundred bytes"


def test_scrapes_in_another_thread_while_certificates_come_and_go_never_fail() -> None:
    """MetricsServer scrapes in a worker thread while the event loop observes and forgets."""
    metrics = Metrics()
    errors: list[BaseException] = []
    stop = threading.Event()

    def scrape() -> None:
        while not stop.is_set():
            try:
                metrics.exposition()
            except BaseException as error:  # reported by the main thread
                errors.append(error)
                return

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: races show up
    scraper = threading.Thread(target=scrape)
    scraper.start()
    try:
        for i in range(3000):
            metrics.observe_certificate(issued(i))
            if i % 3 == 0:
                metrics.forget_certificate(f"team-{i % 7}", f"web-{i:05d}")
    finally:
        stop.set()
        scraper.join()
        sys.setswitchinterval(interval)
    assert errors == []
    names = {
        s.labels["name"]
        for f in text_string_to_metric_families(metrics.exposition().decode())
        for s in f.samples
        if f.name in FAMILIES
    }
    assert len(names) == 2000


def test_a_certificate_costs_well_under_a_kilobyte_of_heap() -> None:
    """Its 11 series as labelled Gauge children cost about 10 KB; a record about 300 bytes."""
    metrics = Metrics()
    count = 1000
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(count):
            metrics.observe_certificate(issued(i))
        gc.collect()
        per_certificate = (tracemalloc.get_traced_memory()[0] - before) / count
    finally:
        tracemalloc.stop()
    assert per_certificate < 1000, per_certificate
