"""Which Secret events reach the operator and which of them reconcile a Certificate."""

from __future__ import annotations

import base64

import kopf
import pytest
from kopf._cogs.structs.references import Resource

from kvcert import handlers
from kvcert.runtime import sources
from kvcert.runtime.kube import DATA_HASH_ANNOTATION, OUTPUT_SELECTOR


def test_the_output_secret_watch_is_narrowed_by_the_api_server():
    settings = kopf.OperatorSettings()
    handlers.select_output_secrets(settings)
    secrets = Resource("", "v1", "secrets", kind="Secret", namespaced=True)
    assert settings.watching.label_selectors.collect(secrets) == [OUTPUT_SELECTOR]
    assert OUTPUT_SELECTOR == "app.kubernetes.io/managed-by=kvcert,kvcert.io/certificate"
    others = [
        Resource("", "v1", "configmaps", kind="ConfigMap", namespaced=True),
        Resource("kvcert.io", "v1alpha1", "certificates", kind="Certificate", namespaced=True),
    ]
    for other in others:
        assert settings.watching.label_selectors.collect(other) == []


DATA = {"tls.crt": base64.b64encode(b"CERT").decode(), "ca.crt": base64.b64encode(b"CA").decode()}
WRITTEN = {"metadata": {"annotations": {DATA_HASH_ANNOTATION: sources.data_hash(DATA)}}}


@pytest.mark.parametrize(
    ("event", "body", "reconcile"),
    [
        pytest.param("DELETED", {**WRITTEN, "data": DATA}, True, id="a deleted Secret does"),
        pytest.param(
            "MODIFIED", {**WRITTEN, "data": DATA}, False, id="the echo of our own write does not"
        ),
        pytest.param(None, {**WRITTEN, "data": DATA}, False, id="an intact one listed does not"),
        pytest.param(
            "MODIFIED",
            {**WRITTEN, "data": {**DATA, "tls.crt": base64.b64encode(b"X").decode()}},
            True,
            id="edited data does",
        ),
        pytest.param(None, {**WRITTEN, "data": {}}, True, id="an emptied one listed does"),
        pytest.param(
            "MODIFIED", {"metadata": {}, "data": DATA}, False, id="one without a digest does not"
        ),
        pytest.param(
            "MODIFIED",
            {"metadata": {}, "data": {"ca.crt": DATA["ca.crt"]}},
            True,
            id="one without a digest that lost tls.crt does",
        ),
    ],
)
def test_which_output_secret_events_reconcile(event, body, reconcile):
    assert handlers._output_needs_reconcile(event, body) is reconcile
