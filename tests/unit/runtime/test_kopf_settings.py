"""kopf is told there is no diff-base (kvcert has only on.event handlers): no essence is built
or stored, so no deep copy of each event's body (issue #17)."""

from __future__ import annotations

import kopf

from kvcert.handlers import NoDiffBase


def test_no_diff_base_builds_reads_and_stores_nothing() -> None:
    secret = kopf.Body(
        {
            "metadata": {"name": "web-tls", "annotations": {"kvcert.io/x5t": "abc"}},
            "data": {"tls.key": "c2VjcmV0"},
        }
    )
    storage = NoDiffBase()
    assert storage.build(body=secret) == {}
    assert storage.fetch(body=secret) is None
    patch = kopf.Patch()
    storage.store(body=secret, patch=patch, essence=kopf.BodyEssence())
    assert not patch
