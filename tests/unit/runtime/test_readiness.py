"""Readiness: which lists a watch needs, and when the pod may say Ready (issue #13)."""

from __future__ import annotations

import asyncio

import pytest

from kvcert.runtime.readiness import ListFailed, Readiness, parse_endpoint, watched_lists


@pytest.mark.parametrize(
    ("namespaces", "expected"),
    [
        pytest.param(
            (),
            [
                ("certificates", None),
                ("keyvaults", None),
                ("certificateissuers", None),
                ("clusterkeyvaults", None),
                ("clustercertificateissuers", None),
            ],
            id="cluster-wide lists every kind across all namespaces",
        ),
        pytest.param(
            ("a", "b"),
            [
                ("certificates", "a"),
                ("certificates", "b"),
                ("keyvaults", "a"),
                ("keyvaults", "b"),
                ("certificateissuers", "a"),
                ("certificateissuers", "b"),
                ("clusterkeyvaults", None),
                ("clustercertificateissuers", None),
            ],
            id="watched namespaces list namespaced kinds in each, ClusterKeyVaults cluster-wide",
        ),
    ],
)
def test_watched_lists(namespaces, expected):
    assert watched_lists(namespaces) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://0.0.0.0:8081/readyz", ("0.0.0.0", 8081, "/readyz")),
        ("http://127.0.0.1:9000", ("127.0.0.1", 9000, "/")),
    ],
)
def test_parse_endpoint(url, expected):
    assert parse_endpoint(url) == expected


@pytest.mark.parametrize("url", ["https://0.0.0.0:8081/readyz", "http://0.0.0.0/readyz", "8081"])
def test_parse_endpoint_refuses_what_it_cannot_serve(url):
    with pytest.raises(ValueError, match="http://HOST:PORT/PATH"):
        parse_endpoint(url)


class Answers:
    """A probe that answers from a script: plural -> a list of outcomes, one per call."""

    def __init__(self, script):
        self.script = {k: list(v) for k, v in script.items()}
        self.calls: list[tuple[str, str | None]] = []
        self.changed = asyncio.Event()

    async def called(self, pair, times):
        while self.calls.count(pair) < times:
            self.changed.clear()
            await self.changed.wait()

    async def __call__(self, plural, namespace):
        self.calls.append((plural, namespace))
        self.changed.set()
        outcome = (
            self.script[plural].pop(0) if len(self.script[plural]) > 1 else self.script[plural][0]
        )
        if outcome is not None:
            raise outcome


def _readiness(probe: Answers) -> Readiness:
    lists = watched_lists(())
    return Readiness(lists, probe, missing=dict.fromkeys(lists, "not checked yet"))


async def test_ready_once_every_list_answered_and_lists_that_answered_are_not_repeated():
    probe = Answers(
        {
            "certificates": [None],
            "keyvaults": [ListFailed(403, "Forbidden"), None],
            "clusterkeyvaults": [None],
            "certificateissuers": [None],
            "clustercertificateissuers": [None],
        }
    )
    readiness = _readiness(probe)
    await readiness.check(first_delay=0.001)
    assert readiness.missing == {}
    assert probe.calls.count(("certificates", None)) == 1
    assert probe.calls.count(("keyvaults", None)) == 2


async def test_a_refused_list_is_named_and_retried():
    probe = Answers(
        {
            "certificates": [None],
            "keyvaults": [ListFailed(403, "Forbidden")],
            "clusterkeyvaults": [None],
            "certificateissuers": [None],
            "clustercertificateissuers": [None],
        }
    )
    readiness = _readiness(probe)
    running = asyncio.ensure_future(readiness.check(first_delay=0.001, max_delay=0.001))
    await asyncio.wait_for(probe.called(("keyvaults", None), times=3), timeout=5)
    running.cancel()
    assert readiness.missing == {
        ("keyvaults", None): "cannot list keyvaults cluster-wide: 403 Forbidden"
    }
    assert not readiness.final


async def test_a_missing_crd_is_final_and_says_to_restart():
    probe = Answers(
        {
            "certificates": [ListFailed(404, "Not Found")],
            "keyvaults": [None],
            "clusterkeyvaults": [None],
            "certificateissuers": [None],
            "clustercertificateissuers": [None],
        }
    )
    readiness = _readiness(probe)
    await readiness.check(first_delay=0.001)
    assert readiness.final
    assert (
        "install the CRDs, then restart the operator" in readiness.missing[("certificates", None)]
    )
    assert probe.calls == [("certificates", None)]
