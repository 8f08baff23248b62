"""The in-memory index that routes Secret events to the Certificates they concern."""

from __future__ import annotations

from typing import Any

from kvcert.runtime.index import CertificateIndex


def _body(name: str, uid: str, secret: str = "out", **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "ns", "name": name, "uid": uid},
        "spec": {"secretName": secret, **spec},
    }


def test_an_output_secret_leads_to_its_certificate_only_under_its_current_name():
    index = CertificateIndex()
    index.remember(_body("web", "u1", "web-tls"))
    assert index.owner("ns", "web", "web-tls").uid == "u1"  # type: ignore[union-attr]
    assert index.owner("ns", "web", "old-tls") is None
    assert index.owner("other", "web", "web-tls") is None


def test_sources_lead_to_every_reader_and_follow_spec_changes_and_deletion():
    index = CertificateIndex()
    index.remember(_body("a", "u1", mergeFrom={"secretName": "signed"}))
    index.remember(_body("b", "u2", importFrom={"secretName": "signed"}))
    assert index.readers("ns", "signed") == [("a", "u1"), ("b", "u2")]
    index.remember(_body("a", "u1", mergeFrom={"secretName": "other"}))
    assert index.readers("ns", "signed") == [("b", "u2")]
    assert index.readers("ns", "other") == [("a", "u1")]
    index.forget("ns", "b", "stale-uid")  # another object's deletion: kept
    assert index.readers("ns", "signed") == [("b", "u2")]
    index.forget("ns", "b", "u2")
    assert index.readers("ns", "signed") == []
    assert len(index) == 1
