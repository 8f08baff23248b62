"""kvcert.runtime.metrics: a Certificate's status -> its series, and the request counters.

Each case is one status (as stored after a merge patch) and the series values it must give;
deleting the Certificate removes every series it had; no label value ever looks like a secret.
"""

from __future__ import annotations

import asyncio
import re
import socket
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from kubernetes.client.exceptions import ApiException
from kubernetes_asyncio.client.exceptions import ApiException as AsyncApiException
from prometheus_client.parser import text_string_to_metric_families

from kvcert.keyvault.observe import RequestRecord
from kvcert.runtime.certmetrics import merge_patch
from kvcert.runtime.kube import Kube
from kvcert.runtime.metrics import Metrics, MetricsServer, parse_endpoint

NOT_AFTER = "2027-11-22T22:44:28Z"
NOT_BEFORE = "2026-11-22T22:34:28Z"
RENEWAL = "2027-09-10T12:00:00Z"
CERT = {"name": "web", "namespace": "team-a", "issuer": "Self"}


def _ts(value: str) -> float:
    return datetime.fromisoformat(value).astimezone(UTC).timestamp()


def _body(status: dict[str, Any] | None, *, name: str = "web") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "team-a", "uid": "u-1"},
        "spec": {"policy": {"issuer": {"name": "Self"}}},
        "status": status,
    }


def _ready(status: str, reason: str, message: str = "") -> dict[str, Any]:
    return {"type": "Ready", "status": status, "reason": reason, "message": message}


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape: (name, sorted labels) -> value, parsed as Prometheus would."""
    text = metrics.exposition().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def series(metrics: Metrics, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {labels: value for (n, labels), value in samples(metrics).items() if n == name}


def _key(**labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({**CERT, **labels}.items()))


ISSUED = {
    "conditions": [_ready("True", "Issued", "issued version 0123 into Secret web-tls")],
    "certificate": {"notAfter": NOT_AFTER, "notBefore": NOT_BEFORE, "version": "0123"},
    "renewalTime": RENEWAL,
    "operation": {"status": "completed", "requestId": "r-1"},
}

TABLE = [
    pytest.param(
        None,
        {
            "kvcert_certificate_ready_status": {
                _key(condition="True", reason=""): 0.0,
                _key(condition="False", reason=""): 0.0,
                _key(condition="Unknown", reason=""): 1.0,
            }
        },
        id="a Certificate without status is Ready Unknown and has no timestamps",
    ),
    pytest.param(
        ISSUED,
        {
            "kvcert_certificate_ready_status": {
                _key(condition="True", reason="Issued"): 1.0,
                _key(condition="False", reason="Issued"): 0.0,
                _key(condition="Unknown", reason="Issued"): 0.0,
            },
            "kvcert_certificate_expiration_timestamp_seconds": {_key(): _ts(NOT_AFTER)},
            "kvcert_certificate_not_before_timestamp_seconds": {_key(): _ts(NOT_BEFORE)},
            "kvcert_certificate_renewal_timestamp_seconds": {_key(): _ts(RENEWAL)},
            "kvcert_certificate_operation_status": {
                _key(status=s): float(s == "completed")
                for s in ("inProgress", "completed", "failed", "cancelled", "deleted")
            },
        },
        id="an issued Certificate gives Ready True, its validity, renewal and operation",
    ),
    pytest.param(
        {
            "conditions": [_ready("False", "OperationFailed", "issuer said: no")],
            "operation": {"status": "failed", "error": {"code": "x", "message": "no"}},
        },
        {
            "kvcert_certificate_ready_status": {
                _key(condition="True", reason="OperationFailed"): 0.0,
                _key(condition="False", reason="OperationFailed"): 1.0,
                _key(condition="Unknown", reason="OperationFailed"): 0.0,
            },
            "kvcert_certificate_operation_status": {
                _key(status=s): float(s == "failed")
                for s in ("inProgress", "completed", "failed", "cancelled", "deleted")
            },
            "kvcert_certificate_expiration_timestamp_seconds": {},
        },
        id="a failed operation gives Ready False with its reason and operation failed",
    ),
    pytest.param(
        {"conditions": [_ready("False", "my free text: token=abc", "x")]},
        {
            "kvcert_certificate_ready_status": {
                _key(condition="True", reason=""): 0.0,
                _key(condition="False", reason=""): 1.0,
                _key(condition="Unknown", reason=""): 0.0,
            },
        },
        id="a reason outside the closed set is never copied into a label",
    ),
]


@pytest.mark.parametrize(("status", "expected"), TABLE)
def test_status_gives_series(status: dict[str, Any] | None, expected: dict[str, Any]) -> None:
    metrics = Metrics()
    metrics.observe_certificate(_body(status))
    for name, values in expected.items():
        assert series(metrics, name) == values, name


def test_the_status_patch_is_merged_into_the_body_status() -> None:
    metrics = Metrics()
    before = {"conditions": [_ready("Unknown", "Issuing")], "operation": {"status": "inProgress"}}
    patch = {"conditions": ISSUED["conditions"], "certificate": ISSUED["certificate"]}
    patch["operation"] = {"status": "completed"}
    metrics.observe_certificate(_body(before), patch)
    ready = series(metrics, "kvcert_certificate_ready_status")
    assert ready[_key(condition="True", reason="Issued")] == 1.0
    assert series(metrics, "kvcert_certificate_expiration_timestamp_seconds") == {
        _key(): _ts(NOT_AFTER)
    }
    assert series(metrics, "kvcert_certificate_operation_status")[_key(status="completed")] == 1


def test_merge_patch_follows_rfc_7386() -> None:
    base = {"a": {"b": 1, "c": 2}, "d": [1], "e": 1}
    assert merge_patch(base, {"a": {"b": None, "x": 3}, "d": [2], "e": None}) == {
        "a": {"c": 2, "x": 3},
        "d": [2],
    }
    assert base == {"a": {"b": 1, "c": 2}, "d": [1], "e": 1}


def test_a_changed_reason_replaces_the_series_of_the_old_one() -> None:
    metrics = Metrics()
    metrics.observe_certificate(_body({"conditions": [_ready("Unknown", "Issuing")]}))
    metrics.observe_certificate(_body(ISSUED))
    reasons = {dict(k)["reason"] for k in series(metrics, "kvcert_certificate_ready_status")}
    assert reasons == {"Issued"}


def test_a_deleted_certificate_leaves_no_series_and_others_keep_theirs() -> None:
    metrics = Metrics()
    metrics.observe_certificate(_body(ISSUED))
    metrics.observe_certificate(_body(ISSUED, name="other"))
    metrics.forget_certificate("team-a", "web")
    names = {
        dict(labels).get("name")
        for (name, labels) in samples(metrics)
        if name.startswith("kvcert_certificate_")
    }
    assert names == {"other"}
    metrics.forget_certificate("team-a", "web")  # twice is harmless


def test_requests_rounds_and_leader_are_counted() -> None:
    metrics = Metrics()
    op = "GET /certificates/{name}/pending"
    metrics.keyvault_request(RequestRecord("kv.vault.azure.net", op, "200", 0.02))
    metrics.keyvault_request(RequestRecord("kv.vault.azure.net", op, "429", 0.01))
    metrics.kubernetes_request("patch", "certificates/status", "200")
    metrics.reconciled("requeue", 0.3)
    metrics.set_leader(True)
    got = samples(metrics)
    vault = (("host", "kv.vault.azure.net"), ("operation", op))
    assert got[("kvcert_keyvault_requests_total", (("code", "200"), *vault))] == 1
    assert got[("kvcert_keyvault_throttled_total", vault)] == 1
    assert got[("kvcert_keyvault_request_duration_seconds_count", (("code", "429"), *vault))] == 1
    kube = (("code", "200"), ("resource", "certificates/status"), ("verb", "patch"))
    assert got[("kvcert_kubernetes_requests_total", kube)] == 1
    assert got[("kvcert_reconcile_total", (("result", "requeue"),))] == 1
    assert got[("kvcert_reconcile_total", (("result", "error"),))] == 0
    assert got[("kvcert_reconcile_duration_seconds_count", ())] == 1
    assert got[("kvcert_leader", ())] == 1
    with pytest.raises(ValueError, match="reconcile result"):
        metrics.reconciled("maybe", 0.1)


SECRET_LOOKING = re.compile(
    r"BEGIN|PRIVATE|Bearer|eyJ[A-Za-z0-9_-]{10,}|password=|hunter2|[A-Za-z0-9+/]{40,}", re.I
)


def test_no_label_value_looks_like_a_secret() -> None:
    """Statuses full of sensitive-looking text: no label value carries any of it."""
    metrics = Metrics()
    status = {
        **ISSUED,
        "conditions": [_ready("False", "AccessDenied", "Bearer eyJhbGciOiJSUzI1NiJ9.abcdefghijkl")],
        "operation": {
            "status": "failed",
            "csr": "-----BEGIN CERTIFICATE REQUEST-----\nMIIB" + "A" * 60,
            "error": {"code": "password=hunter2", "message": "-----BEGIN PRIVATE KEY-----"},
        },
    }
    metrics.observe_certificate(_body(status))
    metrics.keyvault_request(
        RequestRecord("kv.vault.azure.net", "GET /secrets/{name}/{version}", "200", 0.1)
    )
    for _, labels in samples(metrics):
        for key, value in labels:
            assert not SECRET_LOOKING.search(value), (key, value)


def test_parse_endpoint_refuses_what_is_not_http_host_port() -> None:
    assert parse_endpoint("http://0.0.0.0:9402/metrics") == ("0.0.0.0", 9402, "/metrics")
    for bad in ("https://0.0.0.0:9402/metrics", "http://0.0.0.0/metrics", "0.0.0.0:9402"):
        with pytest.raises(ValueError, match="metrics endpoint"):
            parse_endpoint(bad)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_the_server_answers_a_scrape() -> None:
    metrics = Metrics()
    metrics.observe_certificate(_body(ISSUED))
    server = MetricsServer(metrics)
    port = _free_port()
    await server.serve(f"http://127.0.0.1:{port}/metrics")
    try:
        async with httpx.AsyncClient() as http:
            response = await http.get(f"http://127.0.0.1:{port}/metrics")
    finally:
        await server.close()
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "kvcert_certificate_expiration_timestamp_seconds{" in response.text
    await asyncio.sleep(0)


async def test_kube_requests_are_observed_with_their_code() -> None:
    seen: list[tuple[str, str, str]] = []
    kube = Kube(None, lambda *call: seen.append(call))  # type: ignore[arg-type]

    async def answered(**_: object) -> int:
        return 1

    async def refused(**_: object) -> None:
        raise AsyncApiException(status=403)

    async def unreachable(**_: object) -> None:
        raise ConnectionError("no route")

    assert await kube._call("get", "secrets", answered) == 1
    with pytest.raises(ApiException):
        await kube._call("patch", "certificates/status", refused)
    with pytest.raises(ConnectionError):
        await kube._call("list", "certificates", unreachable)
    await kube._call("create", "secrets", answered)
    assert seen == [
        ("get", "secrets", "200"),
        ("patch", "certificates/status", "403"),
        ("list", "certificates", "error"),
        ("create", "secrets", "201"),
    ]
