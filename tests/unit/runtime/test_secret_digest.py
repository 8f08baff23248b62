"""The output Secret's data digest (kvcert.io/data-hash) and the facts built from it: intact,
and for sources whether they are watched and which leaf a mergeFrom chain holds."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from kubernetes import client

from kvcert.runtime import sources
from kvcert.runtime.kube import (
    DATA_HASH_ANNOTATION,
    MANAGED_BY,
    SOURCE_LABEL,
    UID_ANNOTATION,
)
from tests.integration.operator.testca import TestCA, key_pair

DATA = {"tls.crt": b"CERT", "tls.key": b"KEY", "ca.crt": b"CA"}


def _b64(data: dict[str, bytes]) -> dict[str, str]:
    return {key: base64.b64encode(value).decode() for key, value in data.items()}


def _output(data: dict[str, bytes], digest: str | None, uid: str = "u1") -> client.V1Secret:
    annotations = {UID_ANNOTATION: "u1"}
    if digest is not None:
        annotations[DATA_HASH_ANNOTATION] = digest
    return client.V1Secret(
        metadata=client.V1ObjectMeta(
            name="web-tls", labels={MANAGED_BY: "kvcert"}, annotations=annotations
        ),
        data=_b64(data),
    )


WRITTEN = sources.data_hash(_b64(DATA))


def test_the_digest_is_32_hex_characters_independent_of_key_order():
    assert len(WRITTEN) == 32
    int(WRITTEN, 16)
    assert sources.data_hash(dict(reversed(list(_b64(DATA).items())))) == WRITTEN
    # Length prefixes: moving bytes from a key into its value changes the digest.
    assert sources.data_hash(_b64({"ab": b"c"})) != sources.data_hash(_b64({"a": b"bc"}))


@pytest.mark.parametrize(
    ("data", "digest", "uid", "intact"),
    [
        pytest.param(DATA, WRITTEN, "u1", True, id="the data as written is intact"),
        pytest.param(DATA, None, "u1", True, id="a Secret written before the digest is intact"),
        pytest.param(
            {**DATA, "tls.crt": b"EDITED"}, WRITTEN, "u1", False, id="an edited tls.crt is not"
        ),
        pytest.param(
            {k: v for k, v in DATA.items() if k != "tls.key"},
            WRITTEN,
            "u1",
            False,
            id="a removed key is not",
        ),
        pytest.param({**DATA, "extra": b"x"}, WRITTEN, "u1", False, id="an added key is not"),
        pytest.param(
            {**DATA, "tls.crt": b"EDITED"}, WRITTEN, "u2", True, id="someone else's is not judged"
        ),
    ],
)
def test_output_facts_say_whether_the_data_is_what_was_written(data, digest, uid, intact):
    facts = sources.output_facts(_output(data, digest), uid)
    assert facts.intact is intact


def test_a_value_that_is_not_base64_is_not_intact():
    annotations = {DATA_HASH_ANNOTATION: WRITTEN}
    assert sources.intact(annotations, {"tls.crt": "%%%"}) is False
    assert sources.intact({}, {"tls.crt": "%%%"}) is True


def _source(data: dict[str, bytes], labels: dict[str, str] | None) -> client.V1Secret:
    return client.V1Secret(
        metadata=client.V1ObjectMeta(name="signed", labels=labels), data=_b64(data)
    )


@pytest.mark.parametrize(
    ("labels", "watched"),
    [
        pytest.param({SOURCE_LABEL: "true"}, True, id="labelled true is watched"),
        pytest.param({SOURCE_LABEL: "false"}, False, id="labelled false is not"),
        pytest.param(None, False, id="unlabelled is not"),
    ],
)
def test_source_facts_say_whether_the_secret_is_watched(labels, watched):
    pem = b"-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----\n"
    assert sources.merge_facts(_source({"tls.crt": pem}, labels)).watched is watched
    assert sources.merge_facts(_source({}, labels)).watched is watched
    assert sources.import_facts(_source({"tls.crt": pem}, labels), None).watched is watched
    assert sources.merge_facts(None).watched is False


def test_merge_facts_name_the_leaf_of_the_chain_whatever_order_it_was_pasted_in():
    ca = TestCA.make()
    leaf = ca.sign(key_pair().public_key(), "web.example.com")
    der = leaf.public_bytes(serialization.Encoding.DER)
    x5t = base64.urlsafe_b64encode(hashlib.sha1(der).digest()).rstrip(b"=").decode()
    pem = serialization.Encoding.PEM
    for chain in (ca.chain_pem(leaf), ca.cert.public_bytes(pem) + leaf.public_bytes(pem)):
        assert sources.merge_facts(_source({"tls.crt": chain}, None)).leaf_x5t == x5t
    garbage = b"-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----\n"
    assert sources.merge_facts(_source({"tls.crt": garbage}, None)).leaf_x5t is None
