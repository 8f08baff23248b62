"""Bad input refused by the API server (issue #18 §4, the first table of test_bad_input.py).

One row per case: the CRD schema or a CEL rule refuses the object with 422 and a message that
names the field (its path, `spec.policy.emails[0]:`) and, where the path is an object, the words
of the rule. test_validation.py has the first cases; these extend them, and
tests/unit/api/test_input_limits.py proves the models refuse every row the same way.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.integration.operator.harness import GROUP, VERSION, Kube

MiB = 1 << 20


# --- REFUSED: the API server says no, naming the field ----------------------------------------

SPEC: dict[str, Any] = {
    "vaultRef": {"name": "main"},
    "secretName": "web-tls",
    "policy": {"issuer": {"name": "Self"}, "subject": "CN=web"},
}
VAULT: dict[str, Any] = {
    "url": "https://kv.example.net",
    "auth": {"token": {"secretRef": {"name": "vault-token", "key": "token"}}},
}


@dataclass(frozen=True)
class Refused:
    """One REFUSED row: `spec` of a `kind`, refused with 422 naming `path`, saying `words`."""

    id: str
    kind: str
    spec: Any
    path: str
    words: str = ""


def cert(id: str, path: str, words: str = "", **fields: Any) -> Refused:
    """A Certificate: SPEC with `fields` (None drops one); `path` under spec."""
    spec = {k: v for k, v in {**SPEC, **fields}.items() if v is not None}
    return Refused(id, "Certificate", spec, f"spec.{path}".rstrip("."), words)


def pol(id: str, path: str, words: str = "", **fields: Any) -> Refused:
    """A Certificate whose spec.policy has `fields`; `path` under spec.policy."""
    return Refused(id, "Certificate", {**SPEC, "policy": {**SPEC["policy"], **fields}},
                   f"spec.policy.{path}", words)  # fmt: skip


def vault(id: str, path: str, words: str = "", kind: str = "KeyVault", **fields: Any) -> Refused:
    """A KeyVault (or ClusterKeyVault): VAULT with `fields`; `path` under spec."""
    return Refused(id, kind, {**VAULT, **fields}, f"spec.{path}", words)


def token_ref(**fields: str) -> dict[str, Any]:
    return {"token": {"secretRef": {"name": "vault-token", "key": "token", **fields}}}


def pkcs12_ref(**fields: str) -> list[dict[str, Any]]:
    return [{"type": "PKCS12", "passwordSecretRef": {"name": "p12", "key": "pw", **fields}}]


def renew(**trigger: int) -> list[dict[str, Any]]:
    return [{"trigger": trigger, "action": "AutoRenew"}]


ONE_MIB = "a" * MiB
MANY_NAMES = [f"n{i}.{'a' * 60}.{'b' * 60}.{'c' * 60}.example" for i in range(4300)]  # 1 MiB
BIG_NOTES = {"example.com/a": "x" * 200_000, "example.com/b": "y" * 200_000}
UNSUPPORTED = "Unsupported value"
REFUSED: list[Refused] = [
    cert("certificateName of 128 characters", "certificateName", "127", certificateName="a" * 128),
    cert("certificateName empty", "certificateName", certificateName=""),
    cert("certificateName in unicode", "certificateName", certificateName="zertifikat-ü"),
    cert("certificateName with dots", "certificateName", certificateName="web.example.com"),
    cert("secretName with capitals", "secretName", secretName="Web-TLS"),
    cert("secretName empty", "secretName", secretName=""),
    cert("no vaultRef", "vaultRef", "Required value", vaultRef=None),
    cert("vaultRef.name with a space", "vaultRef.name", vaultRef={"name": "main vault"}),
    cert("vaultRef.kind unknown", "vaultRef.kind", UNSUPPORTED,
         vaultRef={"name": "main", "kind": "AzureKeyVault"}),
    cert("mergeFrom.secretName invalid", "mergeFrom.secretName", mergeFrom={"secretName": "a_b"}),
    cert("importFrom.secretName empty", "importFrom.secretName", importFrom={"secretName": ""}),
    cert("importFrom.passwordKey empty", "importFrom.passwordKey",
         importFrom={"secretName": "s", "passwordKey": ""}),
    cert("importFrom.passwordKey with a slash", "importFrom.passwordKey",
         importFrom={"secretName": "s", "passwordKey": "pfx/pw"}),
    cert("cancel a string", "cancel", "boolean", cancel="yes"),
    cert("onSoftDeleted unknown", "onSoftDeleted", UNSUPPORTED, onSoftDeleted="Purge"),
    cert("deletionPolicy in lower case", "deletionPolicy", UNSUPPORTED, deletionPolicy="delete"),
    Refused("spec a string", "Certificate", "hello", "spec", "object"),
    cert("policy without issuer", "policy.issuer", "Required value", policy={"subject": "CN=a"}),
    pol("issuer name empty", "issuer.name", issuer={"name": ""}),
    pol("issuer name in unicode", "issuer.name", issuer={"name": "ausstellér"}),
    pol("certificateType of 1 MiB", "issuer.certificateType", "Too long",
        issuer={"name": "Self", "certificateType": ONE_MIB}),
    pol("subject empty", "subject", subject=""),
    pol("subject of 1 MiB", "subject", "Too long", subject="CN=" + ONE_MIB),
    pol("dnsNames with an empty name", "dnsNames[0]", dnsNames=[""]),
    pol("dnsNames a string, not a list", "dnsNames", "array", dnsNames="web.example.com"),
    pol("dnsNames in unicode, not punycode", "dnsNames[0]", dnsNames=["bücher.example"]),
    pol("dnsNames with an empty label", "dnsNames[0]", dnsNames=["a..example.com"]),
    pol("dnsNames with a 64-character label", "dnsNames[0]", dnsNames=["a" * 64 + ".example"]),
    pol("dnsNames of 1 MiB (4300 names)", "dnsNames", "Too many", dnsNames=MANY_NAMES),
    pol("emails not an address", "emails[0]", emails=["not-an-email"]),
    pol("emails in unicode", "emails[0]", emails=["jörg@example.com"]),
    pol("emails of 1 MiB", "emails[0]", "Too long", emails=[ONE_MIB + "@example.com"]),
    pol("upns without @", "upns[0]", upns=["no at sign"]),
    pol("validityMonths negative", "validityMonths", validityMonths=-1),
    pol("validityMonths a string", "validityMonths", "integer", validityMonths="12"),
    pol("validityMonths a fraction", "validityMonths", "integer", validityMonths=1.5),
    pol("key size negative", "key.size", UNSUPPORTED, key={"type": "RSA", "size": -2048}),
    pol("a curve on an RSA key", "key", "curve applies to EC keys only",
        key={"type": "RSA", "curve": "P-256"}),
    pol("key curve empty", "key.curve", UNSUPPORTED, key={"type": "EC", "curve": ""}),
    pol("key a string", "key", "object", key="RSA"),
    pol("key exportable a string", "key.exportable", "boolean", key={"exportable": "true"}),
    pol("lifetime action unknown", "lifetimeActions[0].action", UNSUPPORTED,
        lifetimeActions=[{"trigger": {"lifetimePercentage": 80}, "action": "Renew"}]),
    pol("lifetime trigger with both", "lifetimeActions[0].trigger", "exactly one",
        lifetimeActions=renew(lifetimePercentage=80, daysBeforeExpiry=9)),
    pol("lifetime trigger empty", "lifetimeActions[0].trigger", "exactly one",
        lifetimeActions=renew()),
    pol("daysBeforeExpiry negative", "lifetimeActions[0].trigger.daysBeforeExpiry",
        lifetimeActions=renew(daysBeforeExpiry=-1)),
    cert("renewBefore in days", "renewBefore", renewBefore="30d"),
    cert("renewBefore and renewBeforePercentage", "", "renewBefore and renewBeforePercentage",
         renewBefore="720h", renewBeforePercentage=30),
    cert("renewBeforePercentage negative", "renewBeforePercentage", renewBeforePercentage=-5),
    cert("refreshInterval 0s", "refreshInterval", "at least 1m", refreshInterval="0s"),
    cert("refreshInterval negative", "refreshInterval", refreshInterval="-1h"),
    cert("a tag name of 600 characters", "tags", "tag names", tags={"t" * 600: "v"}),
    cert("a tag name of 1 MiB", "tags", "tag names", tags={ONE_MIB: "v"}),
    cert("an empty tag name", "tags", "tag names", tags={"": "v"}),
    cert("a tag value of 257 characters", "tags.team", "Too long", tags={"team": "v" * 257}),
    cert("tags a list", "tags", "object", tags=["team"]),
    cert("twelve tags", "tags", "Too many", tags={f"t{i}": "v" for i in range(12)}),
    cert("a tag kvcert writes itself", "tags", "kvcert's own", tags={"kvcert-uid": "x"}),
    cert("a label value in unicode", "secretTemplate.labels.team",
         secretTemplate={"labels": {"team": "ä"}}),
    cert("a label value of 64 characters", "secretTemplate.labels.team", "Too long",
         secretTemplate={"labels": {"team": "a" * 64}}),
    cert("a label key with a space", "secretTemplate.labels", "label keys",
         secretTemplate={"labels": {"my team": "a"}}),
    cert("an annotation key with a space", "secretTemplate.annotations", "keys must be",
         secretTemplate={"annotations": {"a b": "x"}}),
    cert("an annotation of 1 MiB", "secretTemplate.annotations.note", "Too long",
         secretTemplate={"annotations": {"note": ONE_MIB}}),
    cert("annotations over 256 KiB in all", "secretTemplate.annotations", "at most",
         secretTemplate={"annotations": BIG_NOTES}),
    cert("a PKCS12 password key with a slash", "additionalOutputFormats[0].passwordSecretRef.key",
         additionalOutputFormats=pkcs12_ref(key="a/b")),
    cert("a PKCS12 password Secret invalid", "additionalOutputFormats[0].passwordSecretRef.name",
         additionalOutputFormats=pkcs12_ref(name="P_W")),
    cert("four additional outputs", "additionalOutputFormats", "Too many",
         additionalOutputFormats=[{"type": "DER"}] * 4),
    vault("vault url over http", "url", url="http://kv.example.net"),
    vault("vault url with a path", "url", url="https://kv.example.net/certificates"),
    vault("vault url with a query", "url", url="https://kv.example.net?x=1"),
    vault("vault url empty", "url", url=""),
    vault("vault without a credential", "auth", "exactly one of", auth={}),
    vault("token secretRef.key empty", "auth.token.secretRef.key", auth=token_ref(key="")),
    vault("token secretRef.key with a slash", "auth.token.secretRef.key",
          auth=token_ref(key="a/b")),
    vault("token secretRef.name with a space", "auth.token.secretRef.name",
          auth=token_ref(name="vault token")),
    vault("workloadIdentity clientId empty", "auth.workloadIdentity.clientId",
          auth={"workloadIdentity": {"clientId": "", "tenantId": "t"}}),
    vault("caBundle not PEM", "caBundle", "must be PEM", caBundle="not a PEM bundle"),
    vault("caBundle of 1 MiB", "caBundle", "Too long",
          caBundle="-----BEGIN CERTIFICATE-----" + ONE_MIB),
    vault("cluster vault secret namespace invalid", "auth.token.secretRef.namespace",
          kind="ClusterKeyVault", auth=token_ref(namespace="Bad_NS")),
    vault("cluster vault url with a path", "url", kind="ClusterKeyVault", url="https://k.net/x"),
]  # fmt: skip
PLURALS = {"Certificate": "certificates", "KeyVault": "keyvaults"}
PLURALS["ClusterKeyVault"] = "clusterkeyvaults"


@pytest.fixture(scope="module")
def refusals(api_client: client.ApiClient, crds: None) -> Iterator[Kube]:
    """A namespace of its own for the REFUSED rows (nothing is meant to be created in it)."""
    core = client.CoreV1Api(api_client)
    name = f"refused-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield Kube(api_client, name)
    core.delete_namespace(name)


@pytest.mark.parametrize("row", [pytest.param(row, id=row.id) for row in REFUSED])
def test_the_api_server_refuses_naming_the_field(refusals: Kube, row: Refused) -> None:
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": row.kind, "spec": row.spec}
    body["metadata"] = {"name": f"r-{uuid.uuid4().hex[:10]}"}
    custom, plural = refusals.custom, PLURALS[row.kind]
    create = (
        functools.partial(custom.create_cluster_custom_object, GROUP, VERSION, plural)
        if row.kind == "ClusterKeyVault"
        else functools.partial(
            custom.create_namespaced_custom_object, GROUP, VERSION, refusals.namespace, plural
        )
    )
    with pytest.raises(ApiException) as raised:
        create(body)
    assert raised.value.status == 422, raised.value.body
    message = str(json.loads(raised.value.body)["message"])
    assert f"{row.path}:" in message, f"{row.path} is not named in {message[:400]}"
    assert row.words in message, message[:400]


def test_the_api_server_refuses_a_name_in_unicode(refusals: Kube) -> None:
    with pytest.raises(ApiException) as raised:
        refusals.apply_certificate("zertifikat-ü", SPEC)
    assert raised.value.status == 422
    assert "metadata.name" in str(json.loads(raised.value.body)["message"])
