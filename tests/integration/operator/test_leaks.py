"""Nothing leaked (issue #18 §5): canary secrets are planted, every flow that reads them runs
(success and failure paths), then everything the operator and the vault show is scanned.

A lab of the module's own (as test_leader.py): control plane, CRDs, a LocalVault whose token
is a canary, an `EchoProxy` in front of it answering some calls with error bodies that quote
the request, an operator at debug level with `--metrics`. Canaries (also looked for in base64):
tokens (the vault's, a refused KeyVault's then rotated, a refused ClusterKeyVault's, a client
secret), passwords (an importFrom PFX's under PKCS#12 and PEM policies, a WRONG one, one not
UTF-8, a PKCS12 output's used and in scope of an OutputRefused), every line of every private
key planted (importFrom, a tls.key left in mergeFrom Secrets, echoed PEM blocks) or delivered
(tls.key, keystore.p12, key.der), every PFX, a mergeFrom Secret's extra key; Key Vault answers
400/403/500 and an issuer's failed operation quoting the Authorization header, the import body
(`pwd`, `value`), a PEM block, a JWT and a client_secret field. Scanned: every Certificate,
KeyVault, ClusterKeyVault (metadata, status), Event, ConfigMap, Secret's metadata, the
operator's and the vault's whole logs (tracebacks counted), a metrics scrape.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import sys
import traceback
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from kubernetes import client
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from kvcert.keyvault.credentials import StaticToken
from kvcert.keyvault.errors import Unauthorized
from kvcert.keyvault.session import error_from_response
from kvcert.runtime import logs, sources
from tests.integration.operator.conftest import log_leaks
from tests.integration.operator.harness import (
    GROUP,
    VERSION,
    Kube,
    VaultOps,
    own_control_plane,
    wait_for,
)
from tests.integration.operator.harness import certificate_spec as spec_of
from tests.integration.operator.proxy import VaultProxy
from tests.integration.operator.testca import TestCA, key_pair, key_pem
from tests.integration.operator.timetravel import external_cluster
from tests.support.operator_process import OperatorProcess
from tests.support.vault import LocalVault, free_port

pytestmark = [external_cluster, pytest.mark.xdist_group("test_leaks")]
NS, OPERATOR_NS, ISSUER, RUN = "leaks", "kvcert-system", "digicert", uuid.uuid4().hex[:12]
PRIVATE_KEY = "PRIVATE KEY"


def canary(kind: str) -> str:
    return f"canary-{kind}-{RUN}"


TOKEN, REFUSED, CLUSTER_TOKEN = canary("vault-token"), canary("refused"), canary("cluster")
CLIENT_SECRET, PFX_PW, WRONG_PW = canary("client-secret"), canary("pfx-pw"), canary("wrong-pw")
BINARY_PW, P12_PW, NOTE = canary("binary-pw"), canary("p12-pw"), canary("merge-note")
ECHO_PW, ECHO_SECRET, BARE_PW = canary("echo-pw"), canary("echo-cs"), canary("bare-pw")
JWT = ".".join(
    base64.urlsafe_b64encode(part.encode()).decode().rstrip("=")
    for part in ('{"alg":"RS256"}', f'{{"sub":"{canary("jwt")}"}}', canary("sig"))
)
ECHO_KEY = key_pem(key_pair())
ECHO_EXTRA = f"{ECHO_KEY.decode()} id_token {JWT} client_secret={ECHO_SECRET}"


def echo(name: str, auth: str, body: str) -> Response:
    """Key Vault's error answer to a create or import of `name`, quoting the request."""
    if name == "echo-bare":
        message = f"The password {json.loads(body).get('pwd')} does not decrypt the PFX."
        return JSONResponse({"error": {"code": "BadParameter", "message": message}}, 400)
    if name == "echo-5xx":
        text = f"upstream failed\nAuthorization: {auth}\n{ECHO_EXTRA}\n{body}"
        return PlainTextResponse(text, 500)
    message = f"caller {{'authorization': '{auth}'}}: {ECHO_EXTRA}; request {body}"
    error: dict[str, Any] = {"code": "BadParameter", "message": message}
    if name == "echo-create":
        error.update(code="Forbidden", innererror={"code": "ForbiddenByPolicy"})
    return JSONResponse({"error": error}, 403 if name == "echo-create" else 400)


ECHOES = ("echo-import", "echo-create", "echo-5xx", "echo-bare")


class EchoProxy(VaultProxy):
    """The vault, except that a create or import (POST /certificates/{name}/...) of a name in
    ECHOES is answered with an error body quoting the request, as a service echoing input."""

    async def _forward(self, request: Request) -> Response:
        parts = request.url.path.strip("/").split("/")
        auth = request.headers.get("authorization")
        if request.method == "POST" and len(parts) == 3 and parts[1] in ECHOES and auth:
            return echo(parts[1], auth, (await request.body()).decode())
        return await super()._forward(request)


@dataclass
class Lab:
    api: client.ApiClient
    vault: LocalVault
    proxy: EchoProxy
    operator: OperatorProcess
    metrics_url: str
    kube: Kube
    ops: VaultOps
    needles: dict[str, str] = field(default_factory=dict)
    """What must appear nowhere: label -> text."""

    def plant(self, label: str, value: str) -> None:
        self.needles[label] = value
        encoded = base64.b64encode(value.encode()).decode()
        self.needles[f"{label} (base64)"] = encoded[: len(encoded) // 4 * 4 - 4]

    def plant_key(self, label: str, pem: bytes) -> None:
        lines = [line.strip() for line in pem.decode().splitlines() if "-----" not in line]
        for i, line in enumerate(line for line in lines if len(line) >= 16):
            self.needles[f"{label} line {i}"] = line

    def secret(self, name: str, data: dict[str, bytes], namespace: str = NS) -> None:
        """A Secret labelled as a source (the operator's source watch sees its changes)."""
        meta = client.V1ObjectMeta(name=name, labels={"kvcert.io/source": "true"})
        encoded = {k: base64.b64encode(v).decode() for k, v in data.items()}
        body = client.V1Secret(metadata=meta, data=encoded)
        core = client.CoreV1Api(self.api)
        with contextlib.suppress(client.ApiException):
            core.delete_namespaced_secret(name, namespace)
        core.create_namespaced_secret(namespace, body)

    def keyvault(self, name: str, url: str, auth: dict[str, Any], kind: str = "KeyVault") -> None:
        spec = {"url": url, "auth": auth, "caBundle": self.vault.ca_path.read_text()}
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": {"name": name}}
        body["spec"] = spec
        if kind == "KeyVault":
            self.kube.custom.create_namespaced_custom_object(GROUP, VERSION, NS, "keyvaults", body)
        else:
            self.kube.custom.create_cluster_custom_object(GROUP, VERSION, "clusterkeyvaults", body)

    def reason(self, name: str, kind: str = "Ready") -> str | None:
        found = self.kube.condition(name, kind)
        return None if found is None else str(found.get("reason"))

    def log(self) -> str:
        return self.operator.log(tail=50_000_000)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """Control plane, CRDs, the canary-token vault behind an EchoProxy, an operator with
    metrics, KeyVaults `main` (the vault) and `echo` (the proxy), Reachable; everything started
    is stopped afterwards, by PID."""
    directory = tmp_path_factory.mktemp("leaks")
    metrics_url = f"http://127.0.0.1:{free_port()}/metrics"
    with contextlib.ExitStack() as stack:
        plane, api = own_control_plane(stack, directory / "cp")
        core = client.CoreV1Api(api)
        for name in (NS, OPERATOR_NS):
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
        vault = stack.enter_context(LocalVault.start(token=TOKEN, ca_delay=600.0))
        proxy = stack.enter_context(EchoProxy(vault))
        ops = VaultOps(vault)
        stack.callback(ops.close)
        operator = stack.enter_context(
            OperatorProcess(plane.kubeconfig, args=("--metrics", metrics_url))
        )
        here = Lab(api, vault, proxy, operator, metrics_url, Kube(api, NS), ops)
        here.plant("the vault's token", TOKEN)
        here.secret("vault-token", {"token": TOKEN.encode()})
        here.keyvault("main", vault.url, token_auth("vault-token"))
        here.keyvault("echo", proxy.url, token_auth("vault-token"))
        for name in ("main", "echo"):
            wait_vault(here, "keyvaults", name, "Reachable")
        yield here


def token_auth(secret: str) -> dict[str, Any]:
    return {"token": {"secretRef": {"name": secret, "key": "token"}}}


def wait_vault(lab: Lab, plural: str, name: str, reason: str) -> None:
    def current() -> str | None:
        if plural == "keyvaults":
            body = lab.kube.custom.get_namespaced_custom_object(GROUP, VERSION, NS, plural, name)
        else:
            body = lab.kube.custom.get_cluster_custom_object(GROUP, VERSION, plural, name)
        found = (body.get("status") or {}).get("conditions") or []
        return next((c.get("reason") for c in found if c.get("type") == "Ready"), None)

    wait_for(lambda: current() == reason, 30, f"{plural}/{name} Ready with reason {reason}")


def plant_import(
    lab: Lab, name: str, password: bytes, *, wrong: bool = False, pem: bool = False
) -> None:
    """An importFrom Secret `<name>-source` (a PFX, the password in key `password`; `wrong`: the
    PFX is encrypted with another one) and a Certificate `name` importing it (`pem`: under a
    PEM policy, so the operator opens the PFX itself) through KeyVault `echo` for echo-*."""
    ca, key = TestCA.make(), key_pair()
    leaf = ca.sign(key.public_key(), f"{name}.example.com")
    encryption = serialization.BestAvailableEncryption(b"other" if wrong else password)
    pfx = pkcs12.serialize_key_and_certificates(b"x", key, leaf, [ca.cert], encryption)
    if name != "echo-bare":  # its password is the xfail's needle, not the scan's
        lab.plant_key(f"{name}'s key", key_pem(key))
        lab.needles[f"{name}'s PFX"] = base64.b64encode(pfx).decode()[:64]
    lab.secret(f"{name}-source", {"tls.pfx": pfx, "password": password})
    source = {"secretName": f"{name}-source", "passwordKey": "password"}
    spec: dict[str, Any] = {
        "vaultRef": {"name": "echo" if name.startswith("echo") else "main"},
        "secretName": f"{name}-tls",
        "importFrom": source,
    }
    if pem:
        key_spec = {"type": "EC", "curve": "P-256", "exportable": True}
        spec["policy"] = {"issuer": {"name": "Unknown"}, "subject": f"CN={name}", "key": key_spec}
        spec["policy"]["contentType"] = "application/x-pem-file"
    lab.kube.apply_certificate(name, spec)


CANARIES = {
    "a refused token": REFUSED,
    "a ClusterKeyVault token": CLUSTER_TOKEN,
    "a client secret": CLIENT_SECRET,
    "a PFX password": PFX_PW,
    "a wrong PFX password": WRONG_PW,
    "a PKCS12 output password": P12_PW,
    "a mergeFrom Secret's extra key": NOTE,
    "an echoed PFX password": ECHO_PW,
    "an echoed client secret": ECHO_SECRET,
    "an echoed JWT": JWT,
    "a password that is not UTF-8": BINARY_PW,
}
EXPECTED = {
    **dict.fromkeys(("refused", "cluster", "echo-create"), "AccessDenied"),
    **dict.fromkeys(("import-pfx", "import-pfx-pem", "import-pem", "p12", "manual"), "Issued"),
    **dict.fromkeys(("import-wrong", "import-wrong-pem", "echo-import"), "Rejected"),
    "p12-refused": "OutputRefused",
    "manual-wrong": "MergeRejected",
    "echo-5xx": "KeyVaultError",
    "issuer-failed": "OperationFailed",
}
"""Each flow's outcome: the reason on Ready (or Stalled)."""


def start_flows(lab: Lab) -> None:
    """Plant the canaries and apply every flow's objects (their outcomes: EXPECTED)."""
    kube = lab.kube
    for label, value in CANARIES.items():
        lab.plant(label, value)
    lab.plant_key("an echoed key", ECHO_KEY)

    # Credentials refused (a KeyVault, a ClusterKeyVault) or never sent (a client secret).
    lab.secret("refused-token", {"token": REFUSED.encode()})
    lab.keyvault("refused", lab.vault.url, token_auth("refused-token"))
    lab.secret("spn-secret", {"clientSecret": CLIENT_SECRET.encode()})
    ref = {"name": "spn-secret", "key": "clientSecret"}
    lab.keyvault(
        "spn", lab.vault.url, {"clientSecret": {"tenantId": "t", "clientId": "c", "secretRef": ref}}
    )
    lab.secret("cluster-token", {"token": CLUSTER_TOKEN.encode()}, namespace=OPERATOR_NS)
    lab.keyvault("leaks-refused", lab.vault.url, token_auth("cluster-token"), "ClusterKeyVault")
    for name, vault in (("refused", "refused"), ("spn", "spn"), ("cluster", "leaks-refused")):
        spec = spec_of(vault, f"{name}-tls")
        if name == "cluster":
            spec["vaultRef"]["kind"] = "ClusterKeyVault"
        kube.apply_certificate(name, spec)

    # importFrom: right, wrong and undecodable passwords, PKCS#12 and PEM policies; a PEM key;
    # one through the echo proxy.
    for name, password, wrong, pem in (
        ("import-pfx", PFX_PW.encode(), False, False),
        ("import-pfx-pem", PFX_PW.encode(), False, True),
        ("import-wrong", WRONG_PW.encode(), True, False),
        ("import-wrong-pem", WRONG_PW.encode(), True, True),
        ("import-binary", BINARY_PW.encode() + b"\xff", True, False),
        ("echo-import", ECHO_PW.encode(), False, False),
    ):
        plant_import(lab, name, password, wrong=wrong, pem=pem)
    ca, key = TestCA.make(), key_pair()
    lab.plant_key("an importFrom PEM key", key_pem(key))
    chain = ca.chain_pem(ca.sign(key.public_key(), "import-pem.example.com"))
    lab.secret("import-pem-source", {"tls.crt": chain, "tls.key": key_pem(key)})
    source = {"secretName": "import-pem-source"}
    kube.apply_certificate("import-pem", spec_of("main", "import-pem-tls", importFrom=source))

    # PKCS12 output: the password used, and in scope of a refusal (a key the Secret lacks).
    lab.secret("p12-pass", {"password": P12_PW.encode()})
    for name, key_name in (("p12", "password"), ("p12-refused", "nokey")):
        ref = {"name": "p12-pass", "key": key_name}
        formats = [{"type": "PKCS12", "passwordSecretRef": ref}, {"type": "CombinedPEM"}]
        formats.append({"type": "DER"})
        kube.apply_certificate(
            name, spec_of("main", f"{name}-tls", additionalOutputFormats=formats)
        )

    # Manual issuance (merges); Key Vault answers quoting the request; an issuer's error.
    for name in ("manual", "manual-wrong"):
        merge = {"secretName": f"{name}-signed"}
        kube.apply_certificate(name, spec_of("main", f"{name}-tls", "Unknown", mergeFrom=merge))
    for name in ("echo-create", "echo-5xx"):
        kube.apply_certificate(name, spec_of("echo", f"{name}-tls"))
    lab.ops.set_issuer(ISSUER, "DigiCert")
    kube.apply_certificate("issuer-failed", spec_of("main", "issuer-failed-tls", ISSUER))


def await_outcomes(lab: Lab) -> dict[str, str]:
    """Play the issuer and the human, wait for every outcome (EXPECTED), rotate the refused
    token; the Ready condition ("reason: message") of the flows whose failure is shown."""
    kube = lab.kube
    kube.wait_operation("issuer-failed", lambda op: op.get("status") == "inProgress")
    quoted = f'Authorization: Bearer {JWT} {{"pwd": "{ECHO_PW}"}} {ECHO_KEY.decode()}'
    lab.ops.fail("issuer-failed", "Rejected", quoted)
    for name in ("manual", "manual-wrong"):
        kube.wait_condition(name, "Issuing", "True", "AwaitingMerge")
        csr = (kube.config_map(f"{name}-csr") or client.V1ConfigMap()).data["csr.pem"]
        signer, stray = TestCA.make(), key_pair()
        leaf = signer.sign_csr(csr)
        if name == "manual-wrong":
            leaf = signer.sign(key_pair().public_key(), "app.example.com")
        lab.plant_key(f"{name}'s stray tls.key", key_pem(stray))
        data = {"tls.crt": signer.chain_pem(leaf), "tls.key": key_pem(stray), "note": NOTE.encode()}
        lab.secret(f"{name}-signed", data)
    wait_vault(lab, "keyvaults", "refused", "AccessDenied")
    wait_vault(lab, "clusterkeyvaults", "leaks-refused", "AccessDenied")
    for name, reason in EXPECTED.items():
        wait_for(
            lambda n=name, r=reason: r in (lab.reason(n), lab.reason(n, "Stalled")),
            60,
            f"{name}: reason {reason}",
        )
    wait_for(lambda: lab.reason("spn"), 30, "spn: a Ready condition")
    # A password that is not UTF-8 raised out of the round before sources.py refused it: the
    # traceback (if any) is scanned; then the Certificate goes, so that no retry is left.
    failed = f"{NS}/import-binary: reconcile failed"
    wait_for(lambda: failed in lab.log() or lab.reason("import-binary"), 30, "import-binary")
    kube.delete_certificate("import-binary")

    # The refused token replaced by the good one: the Certificate recovers on a retry.
    lab.secret("refused-token", {"token": TOKEN.encode()})
    kube.patch_certificate("refused", {"metadata": {"annotations": {"kvcert.io/retry": "1"}}})
    kube.wait_condition("refused", "Ready", "True", "Issued", timeout=60)

    # The echoes reached status scrubbed (else this test could pass on a body never shown).
    shown = {}
    for name in ("echo-import", "echo-create", "echo-5xx", "issuer-failed", "spn", "cluster"):
        ready = kube.condition(name, "Ready") or {}
        shown[name] = f"{ready.get('reason')}: {ready.get('message')}"
    for name in ("echo-import", "echo-create", "echo-5xx", "issuer-failed"):
        assert "[PEM redacted]" in shown[name], shown[name]
        assert "[redacted]" in shown[name], shown[name]
    return shown


def test_no_canary_secret_appears_in_any_status_event_config_map_log_or_metric(lab: Lab) -> None:
    start_flows(lab)
    shown = await_outcomes(lab)

    # Delivered keys, keystores and DER keys are as secret as what was planted.
    core = client.CoreV1Api(lab.api)
    selector = "app.kubernetes.io/managed-by=kvcert"
    outputs = core.list_namespaced_secret(NS, label_selector=selector).items
    for secret in outputs:
        data, name = secret.data or {}, secret.metadata.name
        if "tls.key" in data:
            lab.plant_key(f"{name}'s tls.key", base64.b64decode(data["tls.key"]))
        for key in ("keystore.p12", "key.der"):
            if key in data:
                lab.needles[f"{name}'s {key}"] = data[key][:64]
    delivered = sum("tls.key" in (s.data or {}) for s in outputs)
    assert delivered >= 6, f"only {delivered} output Secrets hold a key"

    places = gather(lab)
    leaks = [
        f"{label} in {place}"
        for place, text in places.items()
        for label, needle in lab.needles.items()
        if needle in text
    ] + [f"{PRIVATE_KEY!r} in {place}" for place, text in places.items() if PRIVATE_KEY in text]
    log = places["log: the operator's"]
    tracebacks = log.split("Traceback (most recent call last)")[1:]
    kinds = Counter(place.split(" ", 1)[0].rstrip(":") for place in places)
    print(
        f"\nleak scan: {len(lab.needles)} canaries and key lines, {len(EXPECTED) + 2}"
        f" Certificates' flows; objects scanned {dict(sorted(kinds.items()))}; operator log"
        f" {len(log):,} bytes with {len(tracebacks)} tracebacks"
        f" ({sum(map(len, tracebacks)):,} bytes); vault log {len(places['log: the vault']):,}"
        f" bytes; metrics {len(places['metrics:']):,} bytes; leaks {len(leaks)}"
    )
    for name, text in shown.items():
        print(f"  {name}: {text[:300]}")
    assert "kvcert_certificate_ready_status" in places["metrics:"]
    assert not leaks, "\n".join(leaks)


def gather(lab: Lab) -> dict[str, str]:
    """Everything the operator and the vault show: place -> text."""
    core, custom = client.CoreV1Api(lab.api), lab.kube.custom
    serialize = lab.api.sanitize_for_serialization
    places: dict[str, str] = {}
    for plural, kind in (
        ("certificates", "Certificate"),
        ("keyvaults", "KeyVault"),
        ("clusterkeyvaults", "ClusterKeyVault"),
    ):
        for item in custom.list_cluster_custom_object(GROUP, VERSION, plural)["items"]:
            meta = item["metadata"]
            where = f"{kind} {meta.get('namespace', '-')}/{meta['name']}"
            places[where] = json.dumps({"metadata": meta, "status": item.get("status")})
    for kind, items in (
        ("Event", core.list_event_for_all_namespaces().items),
        ("ConfigMap", core.list_config_map_for_all_namespaces().items),
        ("Secret-metadata", [s.metadata for s in core.list_secret_for_all_namespaces().items]),
    ):
        for item in items:
            meta = getattr(item, "metadata", item)
            places[f"{kind} {meta.namespace}/{meta.name}"] = json.dumps(serialize(item))
    places["log: the operator's"] = lab.log()
    places["log: the vault"] = (lab.vault.data_dir / "server.log").read_text(errors="replace")
    places["metrics:"] = httpx.get(lab.metrics_url, timeout=10).text
    return places


def test_an_error_body_quoting_the_password_bare_does_not_show_it(lab: Lab) -> None:
    plant_import(lab, "echo-bare", BARE_PW.encode())
    body = lab.kube.wait_condition("echo-bare", "Ready", "False", "Rejected")
    events = [str(e.message) for e in lab.kube.events("echo-bare")]
    assert "does not decrypt the PFX" in json.dumps(body["status"])
    assert BARE_PW not in json.dumps(body["status"])
    assert all(BARE_PW not in message for message in events)
    assert BARE_PW not in lab.log()


def test_exceptions_raised_with_a_secret_in_scope_do_not_carry_it() -> None:
    """A wrong PFX password and a refused token, raised as the operator raises them: the whole
    formatted exception (chained causes included) and the objects holding the secret show none
    of it."""
    ca, key = TestCA.make(), key_pair()
    encryption = serialization.BestAvailableEncryption(b"right")
    pfx = pkcs12.serialize_key_and_certificates(
        b"x", key, ca.sign(key.public_key(), "x"), [ca.cert], encryption
    )
    content = sources.ImportContent("pfx", pfx, WRONG_PW, sources.fingerprint(pfx))
    with pytest.raises(sources.SourceError) as wrong:
        sources.prepare_import(content, sources.PEM_TYPE)
    request = httpx.Request("GET", "https://kv.example/x", headers={"authorization": TOKEN})
    quoted = f"Bearer {TOKEN} refused; -----BEGIN PRIVATE KEY-----\n{key_pem(key).decode()}"
    answer = httpx.Response(401, json={"error": {"message": quoted}}, request=request)
    refused = error_from_response(answer)
    assert isinstance(refused, Unauthorized)
    texts = {
        "the wrong password's SourceError": "".join(traceback.format_exception(wrong.value)),
        "the refusal's Unauthorized": "".join(traceback.format_exception(refused)),
        "the import content": repr(content),
        "the credential": repr(StaticToken(TOKEN)),
    }
    needles = [WRONG_PW, TOKEN, PRIVATE_KEY, *key_pem(key).decode().splitlines()[1:-1]]
    leaks = [f"{n!r} in {where}" for where, text in texts.items() for n in needles if n in text]
    assert not leaks, leaks
    assert "PFX" in texts["the wrong password's SourceError"]
    assert "[redacted]" in texts["the refusal's Unauthorized"]


def test_the_log_checks_find_keys_and_tokens_and_the_formatters_redact_them() -> None:
    token, key = f"tok-{RUN}", key_pem(key_pair()).decode()
    text = f"ok\nsent {token}\n{key}\nok"
    assert log_leaks(text, [token]) == [
        "line 2: a vault's token",
        "line 3: a PRIVATE KEY block",
        f"line {len(key.splitlines()) + 2}: a PRIVATE KEY block",
    ]
    assert log_leaks("ok\nprivate key refused\n", [token, ""]) == []
    secret_line = key.splitlines()[1]
    for formatter in (logs.TextFormatter(logs.TEXT_FORMAT), logs.JsonFormatter()):
        try:
            raise ValueError(f"cannot use {key} with Authorization: Bearer {JWT}")
        except ValueError:
            record = logging.LogRecord("t", logging.ERROR, __file__, 1, "got %s", (key,), None)
            record.exc_info = sys.exc_info()
        line = formatter.format(record)
        assert PRIVATE_KEY not in line
        assert secret_line not in line
        assert JWT not in line
        assert "[PEM redacted]" in line
