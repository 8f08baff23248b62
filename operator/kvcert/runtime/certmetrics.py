"""The per-Certificate series: one small record per Certificate, the series made at scrape time.

prometheus_client's labelled Gauge keeps a full child object (a value and a lock) per series, and a
Certificate has up to 11 series: about 10 KB of heap per Certificate. `CertificateCollector`
keeps a `CertificateRecord` instead (the label values and the few numbers its series are made
of, a few hundred bytes) and builds the five families from the records whenever the registry
is collected (prometheus_client's custom collector: `collect()` yields `GaugeMetricFamily`s).
What a scrape sees is unchanged: the same names, HELP text, type, labels and values, the same
series present or absent, and a deleted Certificate's series gone (kvcert.runtime.metrics lists
them).

Every label value comes from a closed set or a Kubernetes name, never from free text.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from kvcert.reconcile.reasons import Reason

CONDITIONS = ("True", "False", "Unknown")
OPERATION_STATUSES = ("inProgress", "completed", "failed", "cancelled", "deleted")
CERTIFICATE_LABELS = ("name", "namespace", "issuer")
REASONS = frozenset(reason.value for reason in Reason)
LABEL_LIMIT = 253
"""Longest label value kept (a Kubernetes name's limit); longer issuer names are cut."""

# Closed set -> the one shared string object, so that a record never keeps a body's copy alive.
_CONDITION = {value: value for value in CONDITIONS}
_OPERATION = {value: value for value in OPERATION_STATUSES}
_REASON = {value: value for value in REASONS}

# (name, HELP text, extra label names) of each family, in exposition order.
READY = (
    "kvcert_certificate_ready_status",
    "The Ready condition of a Certificate: 1 for its current status, 0 for the others.",
    ("condition", "reason"),
)
EXPIRATION = (
    "kvcert_certificate_expiration_timestamp_seconds",
    "notAfter of the delivered certificate version, Unix seconds.",
    (),
)
NOT_BEFORE = (
    "kvcert_certificate_not_before_timestamp_seconds",
    "notBefore of the delivered certificate version, Unix seconds.",
    (),
)
RENEWAL = (
    "kvcert_certificate_renewal_timestamp_seconds",
    "status.renewalTime: when kvcert next looks at Key Vault for a new version, Unix s.",
    (),
)
OPERATION = (
    "kvcert_certificate_operation_status",
    "The Key Vault pending operation's status: 1 for the current one, 0 for the others.",
    ("status",),
)
FAMILIES = (READY, EXPIRATION, NOT_BEFORE, RENEWAL, OPERATION)


def merge_patch(base: Mapping[str, Any] | None, patch: Mapping[str, Any] | None) -> dict[str, Any]:
    """RFC 7386 JSON merge patch: what the API server stores after a merge-patch of `base`
    with `patch` (None deletes a key, objects merge, anything else replaces). Pure."""
    merged: dict[str, Any] = dict(base or {})
    for key, value in (patch or {}).items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_patch(merged[key], value)
        else:
            merged[key] = value
    return merged


def timestamp(value: Any) -> float | None:
    """An RFC 3339 time (`2027-01-01T00:00:00Z`) as Unix seconds; None if absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def _closed(table: Mapping[str, str], value: Any, default: str) -> str:
    """`value` if it is in the closed set `table` (as the set's own string), else `default`."""
    return table.get(value, default) if isinstance(value, str) else default


@dataclass(frozen=True, slots=True)
class CertificateRecord:
    """What one Certificate's series are made of (its name and namespace are the dict key).

    issuer: spec.policy.issuer.name, cut to LABEL_LIMIT characters ("" when absent);
    ready, reason: the Ready condition's status (one of CONDITIONS) and reason (one of REASONS,
    or "" when there is none or it is outside the closed set);
    not_after, not_before, renewal: status.certificate.notAfter / .notBefore and
    status.renewalTime as Unix seconds, None when absent or unreadable (then no series);
    operation: status.operation.status (one of OPERATION_STATUSES), None when there is no
    operation or its status is outside the set (then no operation series).
    """

    issuer: str
    ready: str
    reason: str
    not_after: float | None
    not_before: float | None
    renewal: float | None
    operation: str | None

    @classmethod
    def from_status(cls, issuer: str, status: Mapping[str, Any]) -> CertificateRecord:
        """The record of a Certificate with this issuer name and this (merged) status. Pure."""
        ready, reason = "Unknown", ""
        for condition in status.get("conditions") or ():
            if isinstance(condition, Mapping) and condition.get("type") == "Ready":
                ready = _closed(_CONDITION, condition.get("status"), "Unknown")
                reason = _closed(_REASON, condition.get("reason"), "")
                break
        certificate = status.get("certificate") or {}
        operation = (status.get("operation") or {}).get("status")
        return cls(
            issuer=sys.intern(issuer[:LABEL_LIMIT]),  # few issuers: share one string each
            ready=ready,
            reason=reason,
            not_after=timestamp(certificate.get("notAfter")),
            not_before=timestamp(certificate.get("notBefore")),
            renewal=timestamp(status.get("renewalTime")),
            operation=_closed(_OPERATION, operation, "") or None,  # outside the set: no series
        )


class CertificateCollector:
    """The five per-Certificate families, built from one CertificateRecord per Certificate.

    `observe` and `forget` run on the event loop; `collect` runs wherever the registry is
    collected, which for a scrape is a worker thread (MetricsServer uses asyncio.to_thread).
    So `collect` walks a copy of the records, taken under `_lock`; the writers hold the lock for
    one dict write, the copy holds it for a dict copy (under a millisecond at 10,000 Certificates):
    the event loop never waits for a scrape to be built. The GIL alone is not enough: walking
    the live dict fails ("dictionary changed size during iteration") when the loop adds or
    removes a Certificate meanwhile, and even `list(dict.items())` allocates one tuple per
    entry, which in Python 3.11 can start a garbage collection that runs Python code
    (finalizers, gc.callbacks) and so lets the event loop in halfway through the copy.
    Records are immutable, so each one in the copy is a consistent state.
    """

    def __init__(self) -> None:
        self._records: dict[tuple[str, str], CertificateRecord] = {}  # by (namespace, name)
        self._lock = threading.Lock()

    def observe(self, body: Mapping[str, Any], patch: Mapping[str, Any] | None = None) -> None:
        """Replace a Certificate's record with one from its status as stored after `patch` (a
        status merge patch, as kvcert.runtime.kube.Kube.patch_certificate_status sends it)."""
        meta = body.get("metadata") or {}
        issuer = ((body.get("spec") or {}).get("policy") or {}).get("issuer") or {}
        status = merge_patch(body.get("status"), patch)
        # Namespaces repeat across Certificates: the key shares one string per namespace.
        key = (sys.intern(str(meta.get("namespace", ""))), str(meta.get("name", "")))
        record = CertificateRecord.from_status(str(issuer.get("name") or ""), status)
        with self._lock:
            self._records[key] = record

    def forget(self, namespace: str, name: str) -> None:
        """Drop a deleted Certificate's record, and so all its series (absent: nothing)."""
        with self._lock:
            self._records.pop((namespace, name), None)

    def describe(self) -> list[Metric]:
        """The five families without samples (the registry checks names with it)."""
        return list(_families())

    def collect(self) -> Iterator[Metric]:
        """The five families with every Certificate's series, Certificates in the order they
        were first observed. A family with no series still carries its HELP and TYPE."""
        ready, expiration, not_before, renewal, operation = families = _families()
        with self._lock:  # a snapshot: the event loop goes on observing (see the class doc)
            records = self._records.copy()
        for (namespace, name), record in records.items():
            labels = (name, namespace, record.issuer)
            for condition in CONDITIONS:
                value = 1.0 if condition == record.ready else 0.0
                ready.add_metric((*labels, condition, record.reason), value)
            for family, seconds in (
                (expiration, record.not_after),
                (not_before, record.not_before),
                (renewal, record.renewal),
            ):
                if seconds is not None:
                    family.add_metric(labels, seconds)
            if record.operation is not None:
                for status in OPERATION_STATUSES:
                    value = 1.0 if status == record.operation else 0.0
                    operation.add_metric((*labels, status), value)
        yield from families


def _families() -> tuple[GaugeMetricFamily, ...]:
    """The five families of FAMILIES, empty, in exposition order."""
    return tuple(
        GaugeMetricFamily(name, documentation, labels=(*CERTIFICATE_LABELS, *extra))
        for name, documentation, extra in FAMILIES
    )
