"""A Managed Certificate whose key becomes exportable (or stops being) keeps its own Secret.

The output Secret is `Opaque` (tls.crt, ca.crt) for a non-exportable key and `kubernetes.io/tls`
(with tls.key) for an exportable one. Kubernetes refuses to change a Secret's `type` in place, so
the operator replaces its own Secret: one delete, under a precondition on its resourceVersion,
and one create, in the same write; never a SecretConflict for a Secret that carries this
Certificate's uid (issue #19 follow-up). Someone else's Secret of the name stays a conflict and
is never deleted. The Secret's history is read back with a watch from the resourceVersion before
the change, so every ADDED, MODIFIED and DELETED event of it is counted.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client, watch

from tests.integration.operator.harness import Kube, certificate_spec, never, wait_for

TLS = "kubernetes.io/tls"
OPAQUE = "Opaque"
QUIET = 4.0
"""Seconds in which the Secret must see no further write once the change is delivered."""


def _spec(name: str, exportable: bool) -> dict[str, Any]:
    spec = certificate_spec("main", f"{name}-tls", "Self", f"{name}.example.com")
    spec["policy"]["key"]["exportable"] = exportable
    return spec


def _delivered(kube: Kube, name: str, generation: int, not_version: str | None) -> dict[str, Any]:
    """The Certificate once Ready True Issued for `generation` with a version other than
    `not_version`."""

    def ready() -> dict[str, Any] | None:
        body = kube.certificate(name) or {}
        status = body.get("status") or {}
        version = (status.get("certificate") or {}).get("version")
        if status.get("observedGeneration") != generation or version in (None, not_version):
            return None
        for item in status.get("conditions") or []:
            if item.get("type") == "Ready" and (item.get("status"), item.get("reason")) == (
                "True",
                "Issued",
            ):
                return body
        return None

    return wait_for(ready, 90, f"{name} Ready True Issued at generation {generation}")


def _history(kube: Kube, secret: str, since: str) -> list[tuple[str, str, str]]:
    """(event type, uid, Secret type) of every change of `secret` after resourceVersion
    `since`, replayed by a watch that ends after two quiet seconds."""
    stream = watch.Watch().stream(
        kube.core.list_namespaced_secret,
        kube.namespace,
        field_selector=f"metadata.name={secret}",
        resource_version=since,
        timeout_seconds=2,
    )
    return [(event["type"], event["object"].metadata.uid, event["object"].type) for event in stream]


def _keys(found: client.V1Secret) -> set[str]:
    return set(found.data or {})


def _no_conflict(kube: Kube, name: str) -> None:
    assert "SecretConflict" not in kube.event_reasons(name)
    stalled = kube.condition(name, "Stalled") or {}
    assert stalled.get("status") != "True", stalled


@pytest.mark.one_profile("documented")
@pytest.mark.parametrize(
    ("first", "then"),
    [
        pytest.param(False, True, id="exportable false to true: Opaque becomes kubernetes.io/tls"),
        pytest.param(True, False, id="exportable true to false: kubernetes.io/tls becomes Opaque"),
    ],
)
def test_the_secret_is_replaced_once_when_its_type_must_change(
    kube: Kube, keyvault: str, first: bool, then: bool
):
    name = f"type-{'up' if then else 'down'}"
    secret_name = f"{name}-tls"
    kube.apply_certificate(name, _spec(name, first))
    body = _delivered(kube, name, 1, None)
    before = wait_for(lambda: kube.secret(secret_name), 15, f"Secret {secret_name}")
    assert before.type == (TLS if first else OPAQUE)
    assert ("tls.key" in _keys(before)) is first
    since = before.metadata.resource_version

    kube.patch_certificate(name, {"spec": {"policy": {"key": {"exportable": then}}}})
    _delivered(kube, name, 2, body["status"]["certificate"]["version"])
    wanted = TLS if then else OPAQUE
    after = wait_for(
        lambda: (found := kube.secret(secret_name)) is not None and found.type == wanted and found,
        30,
        f"Secret {secret_name} of type {wanted}",
    )
    never(
        lambda: (
            kube.secret(secret_name).metadata.resource_version  # type: ignore[union-attr]
            != after.metadata.resource_version
        ),
        QUIET,
        "another write of the Secret after the type change",
    )

    assert ("tls.key" in _keys(after)) is then
    assert "tls.crt" in _keys(after)
    assert after.metadata.uid != before.metadata.uid  # a new object: deleted, then created
    annotations = after.metadata.annotations or {}
    certificate = kube.certificate(name) or {}
    assert annotations.get("kvcert.io/certificate-uid") == certificate["metadata"]["uid"]
    history = _history(kube, secret_name, since)
    assert history == [
        ("DELETED", before.metadata.uid, before.type),
        ("ADDED", after.metadata.uid, wanted),
    ]
    _no_conflict(kube, name)


@pytest.mark.one_profile("documented")
def test_another_owners_secret_of_another_type_is_a_conflict_and_never_deleted(
    kube: Kube, keyvault: str
):
    name = "type-foreign"
    secret_name = f"{name}-tls"
    # Another Certificate's Secret by its labels and uid, Opaque, where this Certificate's
    # exportable key would make a kubernetes.io/tls one: ours, it would be replaced.
    foreign = client.V1Secret(
        metadata=client.V1ObjectMeta(
            name=secret_name,
            labels={"app.kubernetes.io/managed-by": "kvcert", "kvcert.io/certificate": "other"},
            annotations={"kvcert.io/certificate-uid": "0000-another-certificate"},
        ),
        type=OPAQUE,
        data={"tls.crt": "bm90IG91cnM="},
    )
    created = kube.core.create_namespaced_secret(kube.namespace, foreign)
    since = created.metadata.resource_version

    kube.apply_certificate(name, _spec(name, True))
    kube.wait_condition(name, "Ready", "False", "SecretConflict", timeout=90)
    kube.wait_event(name, "SecretConflict")
    never(
        lambda: (
            (found := kube.secret(secret_name)) is None or found.metadata.resource_version != since
        ),
        QUIET,
        "the other owner's Secret changed or deleted",
    )

    kept = kube.secret(secret_name)
    assert kept is not None
    assert kept.metadata.uid == created.metadata.uid
    assert kept.type == OPAQUE
    assert kept.data == {"tls.crt": "bm90IG91cnM="}
    assert _history(kube, secret_name, since) == []
    kube.delete_certificate(name)
    kube.core.delete_namespaced_secret(secret_name, kube.namespace)
