"""The source Secret watch: which list and watch answers count as a change of a source."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kvcert.runtime.kube import SOURCE_SELECTOR
from kvcert.runtime.sourcewatch import LIST_AS, Gone, _Stream


class _Response:
    def __init__(self, body: dict[str, Any], status: int = 200) -> None:
        self.status, self.reason = status, "reason"
        self.data = json.dumps(body).encode()

    def release_conn(self) -> None:
        pass


class _Core:
    def __init__(self, *lists: dict[str, Any]) -> None:
        self.lists = list(lists)
        self.calls: list[dict[str, Any]] = []

    def list_namespaced_secret(self, namespace: str, **kwargs: Any) -> _Response:
        self.calls.append({"namespace": namespace, **kwargs})
        return _Response(self.lists.pop(0))


def _listing(version: str, **items: str) -> dict[str, Any]:
    metas = [{"namespace": "ns", "name": n, "resourceVersion": rv} for n, rv in items.items()]
    return {"metadata": {"resourceVersion": version}, "items": [{"metadata": m} for m in metas]}


def _stream(core: _Core) -> tuple[_Stream, list[tuple[str, str]]]:
    delivered: list[tuple[str, str]] = []
    return _Stream(core, "ns", lambda ns, name: delivered.append((ns, name))), delivered  # type: ignore[arg-type]


def test_the_first_list_is_no_change_and_a_re_list_reports_what_moved():
    core = _Core(_listing("10", a="1", b="2"), _listing("20", a="1", b="3", c="4"))
    stream, delivered = _stream(core)
    assert stream._list() == "10"
    assert delivered == []
    assert core.calls[0]["label_selector"] == SOURCE_SELECTOR
    assert core.calls[0]["_headers"] == {"Accept": LIST_AS}  # metadata only, never the data
    stream.known.pop(("ns", "a"))
    stream.known[("ns", "gone")] = "5"
    assert stream._list() == "20"
    assert sorted(delivered) == [("ns", "a"), ("ns", "b"), ("ns", "c"), ("ns", "gone")]


@pytest.mark.parametrize(
    ("kind", "delivers"),
    [("ADDED", True), ("MODIFIED", True), ("DELETED", True), ("BOOKMARK", False)],
)
def test_watch_events_change_a_source_except_bookmarks(kind, delivers):
    stream, delivered = _stream(_Core())
    meta = {"namespace": "ns", "name": "signed", "resourceVersion": "42"}
    assert stream._handle({"type": kind, "object": {"metadata": meta}}, "41") == "42"
    assert (delivered == [("ns", "signed")]) is delivers


def test_an_expired_resource_version_asks_for_a_new_list():
    stream, _ = _stream(_Core())
    with pytest.raises(Gone):
        stream._handle({"type": "ERROR", "object": {"code": 410}}, "1")
