"""Facts about Secrets are fingerprints and flags, never content."""

from __future__ import annotations

import base64

from kubernetes import client

from kvcert.runtime import sources
from kvcert.runtime.kube import MANAGED_BY, UID_ANNOTATION, VERSION_ANNOTATION, X5T_ANNOTATION

PEM = b"-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----\n"


def _secret(data: dict[str, bytes], labels=None, annotations=None) -> client.V1Secret:
    return client.V1Secret(
        metadata=client.V1ObjectMeta(name="s", labels=labels, annotations=annotations),
        data={k: base64.b64encode(v).decode() for k, v in data.items()},
    )


def test_an_output_secret_is_ours_only_with_our_label_and_uid():
    annotations = {UID_ANNOTATION: "u1", X5T_ANNOTATION: "t", VERSION_ANNOTATION: "v"}
    ours = sources.output_facts(_secret({}, {MANAGED_BY: "kvcert"}, annotations), "u1")
    assert (ours.exists, ours.ours, ours.x5t, ours.version) == (True, True, "t", "v")
    other = sources.output_facts(_secret({}, {MANAGED_BY: "kvcert"}, annotations), "u2")
    assert (other.exists, other.ours, other.x5t) == (True, False, None)
    assert sources.output_facts(None, "u1").exists is False


def test_merge_facts_fingerprint_the_chain_and_ignore_a_secret_without_one():
    facts = sources.merge_facts(_secret({"tls.crt": PEM}))
    assert facts.fingerprint == sources.fingerprint(PEM)
    assert facts.chain_pem_length == len(PEM)
    assert sources.merge_facts(_secret({"tls.crt": b"not pem"})).fingerprint is None


def test_import_prefers_a_pfx_and_accepts_a_pem_pair():
    pfx = sources.import_content(_secret({"tls.pfx": b"\x30\x82", "tls.crt": PEM}), None)
    assert pfx.format == "pfx"
    pem = sources.import_content(_secret({"tls.crt": PEM, "tls.key": b"KEY"}), None)
    assert pem.format == "pem"
    assert "KEY" not in repr(pem)
    facts = sources.import_facts(_secret({"tls.crt": PEM}), None)
    assert facts.exists
    assert facts.fingerprint is None


def test_a_chain_is_split_into_der_certificates_in_order():
    assert sources.chain_der(PEM + PEM.replace(b"QUJD", b"REVG")) == [b"ABC", b"DEF"]
