"""What the watches told the operator (kvcert.runtime.cache): the newest body kept only for a
round due soon, output Secrets judged without a GET, and the write path that turns a wrong
guess (a 409 or 404) back into a read (issue #17: no API read in the steady path)."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException
from kubernetes_asyncio import client

from kvcert.reconcile import actions
from kvcert.reconcile.facts import SecretFacts
from kvcert.reconcile.observed import CallError
from kvcert.runtime import perform
from kvcert.runtime.cache import KEEP_BODY_SECONDS, KnownSecret, LatestBodies, OutputSecrets
from kvcert.runtime.kube import Owner
from kvcert.runtime.sources import data_hash


def _body(uid: str, version: str, **status: Any) -> dict[str, Any]:
    return {"metadata": {"uid": uid, "resourceVersion": version}, "status": status}


@pytest.mark.parametrize(
    ("delay", "offered", "kept"),
    [
        pytest.param(10.0, None, "5", id="a round due soon keeps the body the round knows"),
        pytest.param(10.0, "7", "7", id="a newer watch event replaces it"),
        pytest.param(10.0, "3", "5", id="an older watch event (a late echo) does not"),
        pytest.param(KEEP_BODY_SECONDS + 1, None, None, id="a renewal months away keeps none"),
        pytest.param(None, "7", None, id="nothing scheduled: nothing kept, events ignored"),
    ],
)
def test_latest_bodies(delay: float | None, offered: str | None, kept: str | None) -> None:
    bodies = LatestBodies()
    bodies.keep(_body("u", "5"), delay)
    if offered is not None:
        bodies.offer(_body("u", offered))
    taken = bodies.take("u")
    assert (taken["metadata"]["resourceVersion"] if taken else None) == kept
    assert bodies.take("u") is None  # taken once
    assert len(bodies) == 0


def _secret_body(
    *, version: str = "9", uid: str = "uid", managed: bool = True, edited: bool = False
) -> dict[str, Any]:
    data = {"tls.crt": base64.b64encode(b"cert").decode()}
    annotations = {
        "kvcert.io/certificate-uid": uid,
        "kvcert.io/x5t": "x5t-1",
        "kvcert.io/version": "v1",
        "kvcert.io/data-hash": data_hash({"tls.crt": base64.b64encode(b"other").decode()})
        if edited
        else data_hash(data),
    }
    labels = {"app.kubernetes.io/managed-by": "kvcert"} if managed else {}
    return {
        "metadata": {
            "namespace": "ns",
            "name": "web-tls",
            "resourceVersion": version,
            "labels": labels,
            "annotations": annotations,
        },
        "type": "kubernetes.io/tls",
        "data": data,
    }


@pytest.mark.parametrize(
    ("body", "facts"),
    [
        pytest.param(
            _secret_body(),
            SecretFacts(exists=True, ours=True, x5t="x5t-1", version="v1", intact=True),
            id="ours and intact",
        ),
        pytest.param(
            _secret_body(edited=True),
            SecretFacts(exists=True, ours=True, x5t="x5t-1", version="v1", intact=False),
            id="ours, its data edited",
        ),
        pytest.param(
            _secret_body(uid="another"),
            SecretFacts(exists=True, ours=False),
            id="another Certificate's",
        ),
        pytest.param(
            _secret_body(managed=False), SecretFacts(exists=True, ours=False), id="not kvcert's"
        ),
    ],
)
def test_a_known_secret_gives_the_facts_a_read_would(
    body: dict[str, Any], facts: SecretFacts
) -> None:
    assert KnownSecret.from_body(body).facts("uid") == facts


def test_output_secrets_follow_the_watch_and_keep_the_newest() -> None:
    outputs = OutputSecrets()
    assert outputs.seen(_secret_body(version="9")) is not None
    outputs.seen(_secret_body(version="8", edited=True))  # a late event: older, ignored
    known = outputs.get("ns", "web-tls")
    assert known is not None
    assert (known.resource_version, known.intact) == ("9", True)
    assert outputs.seen(_secret_body(version="9"), deleted=True) is None
    assert outputs.get("ns", "web-tls") is None


class _Kube:
    """A fake API: Secrets by name; put_secret fails with `refuse` once, if set."""

    def __init__(self, secrets: dict[str, dict[str, Any]], refuse: int | None = None) -> None:
        self.secrets = secrets
        self.refuse = refuse
        self.gets = 0
        self.puts: list[tuple[bool, str | None]] = []

    async def get_secret(self, namespace: str, name: str) -> client.V1Secret | None:
        self.gets += 1
        found = self.secrets.get(name)
        if found is None:
            return None
        meta = found["metadata"]
        return client.V1Secret(
            metadata=client.V1ObjectMeta(
                name=name,
                resource_version=meta["resourceVersion"],
                labels=meta["labels"],
                annotations=meta["annotations"],
            ),
            type=found["type"],
            data=found["data"],
        )

    async def put_secret(
        self, namespace: str, secret: client.V1Secret, *, exists: bool
    ) -> dict[str, Any]:
        self.puts.append((exists, secret.metadata.resource_version))
        if self.refuse is not None:
            status, self.refuse = self.refuse, None
            raise ApiException(status=status)
        written: dict[str, Any] = client.ApiClient().sanitize_for_serialization(secret)
        written["metadata"]["resourceVersion"] = "10"
        return written


class _Vault:
    async def get_certificate_secret(self, name: str, version: str) -> Any:
        from tests.unit.runtime.test_write_secret import _Fetched, _pem_secret  # noqa: PLC0415

        return _Fetched("application/x-pem-file", _pem_secret())


WRITE = actions.WriteSecret("web-tls", "web", "v1", "x5t-1")


def _performer(kube: _Kube, outputs: OutputSecrets, *, delivered: bool) -> perform.Performer:
    return perform.Performer(
        kube=kube,  # type: ignore[arg-type]
        vault=_Vault(),  # type: ignore[arg-type]
        namespace="ns",
        owner=Owner("web", "uid"),
        resource_version=None,
        outputs=outputs,
        delivered=delivered,
    )


async def test_a_new_certificate_reads_nothing_and_creates_its_secret() -> None:
    kube, outputs = _Kube({}), OutputSecrets()
    performer = _performer(kube, outputs, delivered=False)
    assert await performer.perform(actions.ReadSecret("web-tls")) == SecretFacts.absent()
    assert await performer.perform(WRITE) is None
    assert (kube.gets, kube.puts) == (0, [(False, None)])
    known = outputs.get("ns", "web-tls")
    assert known is not None
    assert (known.resource_version, known.intact) == ("10", True)  # the write, remembered


async def test_a_known_secret_is_replaced_at_its_version_without_a_read() -> None:
    outputs = OutputSecrets()
    outputs.seen(_secret_body(version="9"))
    kube = _Kube({"web-tls": _secret_body(version="9")})
    performer = _performer(kube, outputs, delivered=True)
    facts = await performer.perform(actions.ReadSecret("web-tls"))
    assert isinstance(facts, SecretFacts)
    assert facts.ours
    assert await performer.perform(WRITE) is None
    assert (kube.gets, kube.puts) == (0, [(True, "9")])


@pytest.mark.parametrize(
    ("stored", "refuse", "result", "puts"),
    [
        pytest.param(
            _secret_body(version="9"),
            409,
            None,
            [(False, None), (True, "9")],
            id="a create that finds our Secret reads it and replaces it",
        ),
        pytest.param(
            _secret_body(version="9", managed=False),
            409,
            409,
            [(False, None)],
            id="a create that finds someone else's Secret reports the clash",
        ),
    ],
)
async def test_a_wrong_guess_turns_into_a_read(
    stored: dict[str, Any], refuse: int, result: int | None, puts: list[Any]
) -> None:
    kube = _Kube({"web-tls": stored}, refuse=refuse)
    performer = _performer(kube, OutputSecrets(), delivered=False)
    outcome = await performer.perform(WRITE)
    if result is None:
        assert outcome is None
    else:
        assert isinstance(outcome, CallError)
        assert outcome.status == result
    assert kube.gets == 1
    assert kube.puts == puts


async def test_a_delivered_certificate_unknown_to_the_cache_reads_its_secret() -> None:
    kube = _Kube({"web-tls": _secret_body(version="9")})
    outputs = OutputSecrets()
    performer = _performer(kube, outputs, delivered=True)
    facts = await performer.perform(actions.ReadSecret("web-tls"))
    assert isinstance(facts, SecretFacts)
    assert (facts.exists, facts.ours, kube.gets) == (True, True, 1)
    assert outputs.get("ns", "web-tls") is not None  # labelled ours: kept from now on


def test_an_event_during_a_round_is_kept_so_the_round_does_not_end_on_an_older_body() -> None:
    bodies = LatestBodies()
    bodies.offer(_body("u", "7"))  # nothing kept, no round running: ignored
    assert bodies.take("u") is None
    bodies.offer(_body("u", "7"), running=True)  # a label edit while the round runs
    bodies.keep(_body("u", "6"), 10.0)  # the round ends with the body it knew
    taken = bodies.take("u")
    assert taken is not None
    assert taken["metadata"]["resourceVersion"] == "7"


def test_a_state_older_than_a_deletion_is_not_taken_for_the_secrets() -> None:
    outputs = OutputSecrets()
    outputs.seen(_secret_body(version="9"))
    outputs.seen(_secret_body(version="12"), deleted=True)
    outputs.record("ns", "web-tls", KnownSecret.from_body(_secret_body(version="9")))
    assert outputs.get("ns", "web-tls") is None  # a read answered before the deletion
    outputs.seen(_secret_body(version="15"))  # created again
    known = outputs.get("ns", "web-tls")
    assert known is not None
    assert known.resource_version == "15"


async def test_a_listed_round_reads_the_secret_whatever_the_cache_says() -> None:
    outputs = OutputSecrets()
    outputs.seen(_secret_body(version="9"))
    kube = _Kube({})  # deleted while the watch was away: no DELETED event came
    performer = _performer(kube, outputs, delivered=True)
    performer.fresh_reads = True
    assert await performer.perform(actions.ReadSecret("web-tls")) == SecretFacts.absent()
    assert kube.gets == 1
    assert outputs.get("ns", "web-tls") is None
