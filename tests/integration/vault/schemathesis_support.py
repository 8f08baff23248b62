"""Schemathesis against the local vault: Microsoft's definitions, seeded state, checked answers.

`load_definitions(version, patch)` reads `../shared/reference/keyvault-api/{version}/
certificates.json` (Swagger 2.0, beside the repository, never an absolute path) and hands the
parsed document to `patch` (the test module's documented exclusions) before schemathesis loads it.

`Fuzz` sends requests to one running `LocalVault` (HTTPS, its own CA, bearer token, the
definitions' api-version) and validates every answer with the checks it is given:

- `seed(prefix)` makes certificates in each state a route can meet (issued by Self, a manual
  operation in progress, a provider operation in progress, a failed operation, soft-deleted, an
  imported PEM), an issuer object, and valid import/restore values and a merge chain, so that
  generated requests reach more than `404` and `400`;
- `scenario_call(...)` sends one fixed request and validates its answer (the scripted walk);
- `fuzz(operation, seeds, examples)` draws `examples` cases per operation from schemathesis'
  strategies (positive and negative data, hypothesis derandomized: the same inputs every run),
  puts a seeded name, version or issuer in the path and steers body fields to valid values
  most of the time (`steer`), and tallies statuses and distinct failures (check title + status)
  instead of stopping at the first, so one run reports every mismatch of an operation.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import requests
import schemathesis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup
from tests.integration.vault.vault_helpers import OutsideCA, wait_for
from tests.support.vault import LocalVault

DEFINITIONS = Path(__file__).resolve().parents[4] / "shared/reference/keyvault-api"
Check = Callable[..., Any]
Patch = Callable[[dict[str, Any]], None]
FOREVER = 10**6  # the fuzz vault's --ca-delay (s): provider operations stay inProgress


def load_definitions(version: str, patch: Patch) -> Any:
    """Microsoft's certificates definitions of `version` ("2026-04-01", "7.5"), patched.

    Raises FileNotFoundError when ../shared is not beside the repository.
    """
    raw = json.loads((DEFINITIONS / version / "certificates.json").read_text())
    patch(raw)
    return schemathesis.openapi.from_dict(raw, config=schemathesis.Config())


def pem_bundle(cn: str, as_pkcs12: bool = False) -> str:
    """A self-signed EC P-256 certificate and its PKCS#8 key, PEM text (an import's `value`),
    or with `as_pkcs12` base64 of a PKCS#12 file without password."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=90))
        .sign(key, hashes.SHA256())
    )
    if as_pkcs12:
        blob = pkcs12.serialize_key_and_certificates(
            None, key, cert, None, serialization.NoEncryption()
        )
        return base64.b64encode(blob).decode()
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return (key_pem + cert.public_bytes(serialization.Encoding.PEM)).decode()


def policy(issuer: str, **extra: Any) -> dict[str, Any]:
    """A small valid policy: EC P-256, exportable, `CN=fuzz.example.com`, issuer `issuer`."""
    return {
        "key_props": {"kty": "EC", "crv": "P-256", "exportable": True},
        "x509_props": {"subject": "CN=fuzz.example.com", "validity_months": 12},
        "issuer": {"name": issuer},
        **extra,
    }


PEM_POLICY = policy("Unknown", secret_props={"contentType": "application/x-pem-file"})
REMOVE = object()
"""A steering value: drop the field (e.g. `key_size`, so that the key type's default applies)."""
STEERING: dict[str, tuple[Any, ...]] = {
    "contentType": ("application/x-pkcs12", "application/x-pem-file"),
    "kty": ("EC", "RSA"),
    "key_size": (REMOVE,),
    "crv": ("P-256",),
    "pwd": (REMOVE,),
    "platformManaged": (REMOVE,),
    "validity_months": (12,),
    "subject": ("CN=fuzz.example.com",),
    "ekus": (["1.3.6.1.5.5.7.3.1"],),
    "dns_names": (["fuzz.example.com"],),
    "ipAddresses": (["10.0.0.1"],),
    "lifetime_actions": (
        [{"trigger": {"lifetime_percentage": 80}, "action": {"action_type": "AutoRenew"}}],
    ),
}
"""Valid values for policy fields that random data gets wrong (an enum-less content type, an
RSA size, a parsable subject, an OID...): a generated policy passes validation often enough to
reach key generation, signing and storage, with the rest of it still generated."""


def steer(body: Any, pools: dict[str, tuple[Any, ...]], draw: Callable[[Any], Any]) -> None:
    """Replace, at any depth of a JSON `body`, fields named in `pools`: 4 times in 5 by one of
    their values (a deep copy; `REMOVE` deletes the field), else keep and descend into them."""
    if isinstance(body, list):
        for item in body:
            steer(item, pools, draw)
    if not isinstance(body, dict):
        return
    for key in list(body):
        if key in pools and draw(st.integers(0, 4)) > 0:
            value = draw(st.sampled_from(pools[key]))
            if value is REMOVE:
                del body[key]
            else:
                body[key] = copy.deepcopy(value)
        else:
            steer(body[key], pools, draw)


@dataclass(frozen=True)
class Seeds:
    """Names in each state (`names`), issued version ids (`versions`), an issuer object, and
    valid values for body fields that generated data almost never gets right (`bodies`, by
    field name at any depth: an import's or a restore's `value`, a merge chain for
    `{prefix}-manual`, a policy's content type, issuer, subject, SANs...; `REMOVE` drops it)."""

    names: tuple[str, ...]
    versions: tuple[str, ...]
    issuer: str
    bodies: dict[str, tuple[Any, ...]]


@dataclass
class Tally:
    """What one operation's run saw: answers by status, distinct failures with one sample."""

    statuses: Counter[int] = field(default_factory=Counter)
    failures: dict[str, str] = field(default_factory=dict)
    operations: set[str] = field(default_factory=set)

    @property
    def examples(self) -> int:
        return sum(self.statuses.values())


class Fuzz:
    """Requests to one vault through the definitions, each answer validated by `checks`."""

    def __init__(self, vault: LocalVault, schema: Any, api_version: str, checks: Sequence[Check]):
        self.vault = vault
        self.schema = schema
        self.api_version = api_version
        self.checks = list(checks)
        self.session = requests.Session()
        self.session.trust_env = False  # REQUESTS_CA_BUNDLE would replace the vault's CA
        self.session.verify = str(vault.ca_path)
        self.session.headers.update(vault.auth_headers())

    def close(self) -> None:
        self.session.close()

    # one request ------------------------------------------------------------------------------
    def send(self, case: Any, tally: Tally) -> requests.Response:
        """Send `case` with the token and the CA; record its status and any failed check."""
        response: requests.Response = case.call(
            base_url=self.vault.url,
            session=self.session,
            verify=str(self.vault.ca_path),
            timeout=30,
        )
        tally.statuses[response.status_code] += 1
        tally.operations.add(case.operation.label)
        try:
            case.validate_response(response, checks=self.checks)
        except FailureGroup as group:
            for failure in group.exceptions:
                key = f"{case.operation.label}: {failure.title} [{response.status_code}]"
                text = f"{key}\n{failure.message}\n{case.as_curl_command()}"
                tally.failures.setdefault(key, text)
        return response

    def scenario_call(
        self,
        operation_id: str,
        tally: Tally,
        path: dict[str, str] | None = None,
        body: Any = None,
        **query: Any,
    ) -> requests.Response:
        """One fixed request of the scripted walk; the answer is checked like a generated one."""
        operation = self.schema.find_operation_by_id(operation_id)
        case = operation.Case(
            path_parameters=path or {},
            query={"api-version": self.api_version, **query},
            **({"body": body, "media_type": "application/json"} if body is not None else {}),
        )
        return self.send(case, tally)

    # seeded state -----------------------------------------------------------------------------
    def seed(self, prefix: str) -> Seeds:
        """Certificates `{prefix}-self|manual|provider|failed|deleted|pem`, `{prefix}-ca`, and
        the backup of a purged `{prefix}-gone`.

        Plain httpx, not checked: this is the stage, not the play. Waits (30 s at most) for the
        Self issuance so that `-self` and `-deleted` have an issued version.
        """
        q = {"api-version": self.api_version}
        issuer = f"{prefix}-ca"
        with self.vault.client() as kv:

            def ok(response: httpx.Response) -> dict[str, Any]:
                assert response.status_code < 300, response.text
                body: dict[str, Any] = response.json()
                return body

            ok(kv.put(f"/certificates/issuers/{issuer}", params=q, json={"provider": "DigiCert"}))
            creates = {"self": "Self", "deleted": "Self", "manual": "Unknown"}
            creates |= {"failed": "Unknown", "provider": issuer}
            csrs = {}
            for suffix, by in creates.items():
                url = f"/certificates/{prefix}-{suffix}/create"
                csrs[suffix] = ok(kv.post(url, params=q, json={"policy": policy(by)}))["csr"]
            fail = f"/_kvcert/certificates/{prefix}-failed/pending/fail"
            assert kv.post(fail, json={}).status_code == 200
            pem = {"value": pem_bundle("pem.example.com"), "policy": PEM_POLICY}
            imported = ok(kv.post(f"/certificates/{prefix}-pem/import", params=q, json=pem))

            def issued(name: str) -> str | None:
                body = kv.get(f"/certificates/{name}", params=q).json()
                return str(body["id"]).rsplit("/", 1)[1] if "x5t" in body else None

            versions = [wait_for(lambda: issued(f"{prefix}-self"), timeout=30.0)]
            wait_for(lambda: issued(f"{prefix}-deleted"), timeout=30.0)
            ok(kv.delete(f"/certificates/{prefix}-deleted", params=q))
            versions.append(str(imported["id"]).rsplit("/", 1)[1])
            # `-gone`: backed up, deleted and purged, so its backup restores (once).
            gone = f"/certificates/{prefix}-gone"
            ok(kv.post(f"{gone}/import", params=q, json=pem))
            blob = ok(kv.post(f"{gone}/backup", params=q))["value"]
            ok(kv.delete(gone, params=q))
            assert kv.delete(f"/deletedcertificates/{prefix}-gone", params=q).status_code == 204
        names = tuple(f"{prefix}-{s}" for s in (*creates, "pem"))
        bodies = {
            **STEERING,
            "value": (pem_bundle("fuzz.example.com"), pem_bundle("p.example.com", True), blob),
            "x5c": (OutsideCA().x5c(csrs["manual"]),),
            "issuer": ({"name": "Self"}, {"name": "Unknown"}, {"name": issuer}),
        }
        return Seeds(names=names, versions=tuple(versions), issuer=issuer, bodies=bodies)

    # generated requests -----------------------------------------------------------------------
    def fuzz(self, operation: Any, seeds: Seeds, examples: int) -> Tally:
        """`examples` generated cases for `operation`, each sent and checked (see module doc)."""
        query = {"api-version": self.api_version}
        cases = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE, query=query),
            operation.as_strategy(GenerationMode.NEGATIVE, query=query),
        )
        # None keeps what schemathesis generated (an unknown or invalid name).
        names = st.sampled_from((*seeds.names, None))
        versions = st.sampled_from(("", *seeds.versions, None))
        issuers = st.sampled_from((seeds.issuer, None))
        tally = Tally()

        @settings(
            max_examples=examples,
            derandomize=True,  # reproducible in CI: the same inputs every run
            database=None,  # no .hypothesis directory in the tree
            deadline=None,
            phases=(Phase.explicit, Phase.generate),  # failures are tallied, never shrunk
            suppress_health_check=list(HealthCheck),
            print_blob=False,
        )
        @given(data=st.data())
        def run(data: st.DataObject) -> None:
            case = data.draw(cases)
            params = case.path_parameters
            for key, pool in (
                ("certificate-name", names),
                ("certificate-version", versions),
                ("issuer-name", issuers),
            ):
                if key in params and (value := data.draw(pool)) is not None:
                    params[key] = value
            steer(case.body, seeds.bodies, data.draw)
            self.send(case, tally)

        run()
        return tally
