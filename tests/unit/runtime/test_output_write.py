"""How WriteSecret writes the output Secret: ownership alone refuses, a type change recreates.

Issue #19 follow-up: a Secret that is this Certificate's is never a SecretConflict because of its
type or its keys; Kubernetes keeps a Secret's `type` immutable, so Opaque <-> kubernetes.io/tls
is a delete (under a resourceVersion precondition) and a create.
"""

from __future__ import annotations

import pytest

from kvcert.runtime.cache import KnownSecret
from kvcert.runtime.sources import OutputWrite, output_write

TLS = "kubernetes.io/tls"
OPAQUE = "Opaque"
UID = "uid-of-this-certificate"


@pytest.mark.parametrize(
    ("ours", "current", "wanted", "expected"),
    [
        pytest.param(None, None, TLS, OutputWrite.CREATE, id="no Secret: created"),
        pytest.param(True, TLS, TLS, OutputWrite.REPLACE, id="ours, same type: replaced"),
        pytest.param(True, OPAQUE, TLS, OutputWrite.RECREATE, id="ours, Opaque to tls: recreated"),
        pytest.param(True, TLS, OPAQUE, OutputWrite.RECREATE, id="ours, tls to Opaque: recreated"),
        pytest.param(
            True, None, OPAQUE, OutputWrite.REPLACE, id="ours, no type is Opaque: replaced"
        ),
        pytest.param(True, None, TLS, OutputWrite.RECREATE, id="ours, no type to tls: recreated"),
        pytest.param(False, TLS, TLS, OutputWrite.REFUSE, id="another's, same type: refused"),
        pytest.param(False, OPAQUE, TLS, OutputWrite.REFUSE, id="another's, another type: refused"),
    ],
)
def test_the_write_follows_ownership_then_type(ours, current, wanted, expected):
    assert output_write(ours, current, wanted) is expected


def _known(*, managed: bool, uid: str | None, owners: tuple[str, ...], type_: str) -> KnownSecret:
    return KnownSecret("7", type_, managed, uid, owners, "x5t", "v1", None, intact=False)


@pytest.mark.parametrize(
    ("known", "expected"),
    [
        pytest.param(
            _known(managed=True, uid=UID, owners=(UID,), type_=OPAQUE),
            OutputWrite.RECREATE,
            id="ours by annotation and ownerReference, edited data, other type: recreated",
        ),
        pytest.param(
            _known(managed=True, uid=UID, owners=(), type_=OPAQUE),
            OutputWrite.RECREATE,
            id="ours by the uid annotation alone: recreated",
        ),
        pytest.param(
            _known(managed=True, uid="another-uid", owners=("another-uid",), type_=OPAQUE),
            OutputWrite.REFUSE,
            id="another Certificate's: refused",
        ),
        pytest.param(
            _known(managed=False, uid=None, owners=(), type_=TLS),
            OutputWrite.REFUSE,
            id="another tool's of the same type: refused",
        ),
    ],
)
def test_known_secrets_are_judged_by_their_owner_not_their_shape(known, expected):
    assert output_write(known.facts(UID).ours, known.type, TLS) is expected
