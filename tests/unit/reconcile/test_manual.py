"""Manual (issuer Unknown) requests, merges and cancellation, one transition per row."""

from __future__ import annotations

from typing import Any

import pytest

from kvcert.reconcile import (
    CallError,
    MergeChain,
    SourceFacts,
    WriteCsrConfigMap,
    reconcile,
)
from kvcert.reconcile.operation import policy_hash
from kvcert.reconcile.outcomes import (
    CancelRefused,
    CancelRequested,
    CsrPublished,
    Merged,
    MergeRefused,
    OperationRead,
)

from .support import CSR, body, cert, condition, events, intent, kinds, make, op

MANUAL_POLICY = {"issuer": {"name": "Unknown"}, "subject": "CN=web.example.com"}
DIGICERT_POLICY = {"issuer": {"name": "mydigicert"}, "subject": "CN=web.example.com"}


def manual_intent() -> dict[str, Any]:
    probe = make(body(policy=MANUAL_POLICY))
    return intent(policyHash=policy_hash(probe, probe.spec))  # type: ignore[arg-type]


def digicert_intent() -> dict[str, Any]:
    probe = make(body(policy=DIGICERT_POLICY))
    return intent(policyHash=policy_hash(probe, probe.spec))  # type: ignore[arg-type]


def manual(status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    operation = {
        "requestId": "r1",
        "status": "inProgress",
        "issuer": "Unknown",
        "intent": manual_intent(),
    }
    operation.update(status or {})
    conditions = [{"type": "Ready", "status": "False", "reason": "AwaitingMerge"}]
    return body({"operation": operation, "conditions": conditions}, policy=MANUAL_POLICY, **spec)


def unknown_op(status: str = "inProgress", **kw: Any) -> Any:
    return op(status, issuer_name="Unknown", csr_pem=CSR, **kw)


MERGE_FROM = {"secretName": "web-signed"}
CHAIN = SourceFacts(exists=True, fingerprint="fp-1", chain_pem_length=2400)

CASES = [
    pytest.param(
        make(manual(), operation=unknown_op()),
        ["WriteCsrConfigMap"],
        None,
        id="publishes the CSR of a manual request in a ConfigMap",
    ),
    pytest.param(
        make(manual(), operation=unknown_op()).with_outcome(CsrPublished("web-csr")),
        [],
        ("False", "AwaitingMerge"),
        id="records csrRef after publishing and waits for a chain (no event: still AwaitingMerge)",
    ),
    pytest.param(
        make(manual({"csrRef": {"kind": "ConfigMap", "name": "web-csr"}}), operation=unknown_op()),
        [],
        None,
        id="does not publish the same CSR twice",
    ),
    pytest.param(
        make(manual({"csrRef": {"name": "web-csr"}}, mergeFrom=MERGE_FROM), operation=unknown_op()),
        ["ReadMergeSecret"],
        None,
        id="reads the merge Secret when mergeFrom is set",
    ),
    pytest.param(
        make(
            manual({"csrRef": {"name": "web-csr"}}, mergeFrom=MERGE_FROM),
            operation=unknown_op(),
            merge_secret=SourceFacts.absent(),
        ),
        [],
        None,
        id="waits while the merge Secret does not exist",
    ),
    pytest.param(
        make(
            manual({"csrRef": {"name": "web-csr"}}, mergeFrom=MERGE_FROM),
            operation=unknown_op(),
            merge_secret=CHAIN,
        ),
        ["MergeChain"],
        None,
        id="merges the chain when the merge Secret appears",
    ),
    pytest.param(
        make(
            manual(
                {
                    "csrRef": {"name": "web-csr"},
                    "merge": {"fingerprint": "fp-1", "result": "Rejected"},
                },
                mergeFrom=MERGE_FROM,
            ),
            operation=unknown_op(),
            merge_secret=CHAIN,
        ),
        ["Emit"],
        ("False", "MergeRejected"),
        id="does not merge a refused chain twice and keeps reporting the refusal",
    ),
    pytest.param(
        make(
            manual(
                {
                    "csrRef": {"name": "web-csr"},
                    "merge": {"fingerprint": "fp-0", "result": "Rejected"},
                },
                mergeFrom=MERGE_FROM,
            ),
            operation=unknown_op(),
            merge_secret=CHAIN,
        ),
        ["MergeChain"],
        None,
        id="merges again when the chain changes",
    ),
    pytest.param(
        make(
            manual({"csrRef": {"name": "web-csr"}}, mergeFrom=MERGE_FROM),
            operation=unknown_op(),
            merge_secret=SourceFacts(exists=True),
        ),
        ["Emit"],
        ("False", "MergeSecretInvalid"),
        id="reports a merge Secret without a chain",
    ),
    pytest.param(
        make(
            manual({"csrRef": {"name": "web-csr"}}, mergeFrom=MERGE_FROM),
            operation=unknown_op(),
            merge_secret=CHAIN,
        ).with_outcome(
            MergeRefused(
                "fp-1", forbidden=False, error=CallError(400, "BadParameter", "key mismatch")
            )
        ),
        ["Emit"],
        ("False", "MergeRejected"),
        id="reports a key mismatch and keeps the pending operation",
    ),
    pytest.param(
        make(
            body(
                {
                    "operation": {
                        "requestId": "r1",
                        "status": "inProgress",
                        "issuer": "mydigicert",
                        "intent": digicert_intent(),
                    }
                },
                policy=DIGICERT_POLICY,
                mergeFrom=MERGE_FROM,
            ),
            operation=op(issuer_name="mydigicert", csr_pem=CSR),
            merge_secret=CHAIN,
        ).with_outcome(
            MergeRefused(
                "fp-1",
                forbidden=True,
                error=CallError(
                    403, "Forbidden", "Merge is forbidden on pending object created with issuer"
                ),
            )
        ),
        ["Emit"],
        ("False", "MergeForbidden"),
        id="reports a 403 on merge while an issuer's request is in progress",
    ),
    pytest.param(
        make(
            body(
                {
                    "operation": {
                        "requestId": "r1",
                        "status": "failed",
                        "issuer": "mydigicert",
                        "intent": digicert_intent(),
                        "merge": {
                            "fingerprint": "fp-1",
                            "result": "Forbidden",
                            "operationStatus": "inProgress",
                        },
                    }
                },
                policy=DIGICERT_POLICY,
                mergeFrom=MERGE_FROM,
            ),
            merge_secret=CHAIN,
        ),
        ["MergeChain"],
        None,
        id="merges after an issuer-created request failed",
    ),
    pytest.param(
        make(
            body(
                {
                    "operation": {
                        "requestId": "r1",
                        "status": "cancelled",
                        "issuer": "mydigicert",
                        "intent": digicert_intent(),
                    }
                },
                policy=DIGICERT_POLICY,
                mergeFrom=MERGE_FROM,
            ),
            merge_secret=CHAIN,
        ),
        ["MergeChain"],
        None,
        id="merges after an issuer-created request was cancelled",
    ),
    pytest.param(
        make(
            manual({"csrRef": {"name": "web-csr"}}, mergeFrom=MERGE_FROM),
            operation=unknown_op(),
            merge_secret=CHAIN,
        ).with_outcome(Merged(cert())),
        ["ReadSecret"],
        None,
        id="delivers the merged certificate",
    ),
    pytest.param(
        make(
            body(
                {
                    "operation": {
                        "requestId": "r1",
                        "status": "inProgress",
                        "intent": digicert_intent(),
                    }
                },
                policy=DIGICERT_POLICY,
                cancel=True,
            ),
            operation=op(issuer_name="mydigicert"),
        ),
        ["CancelOperation"],
        None,
        id="requests cancellation once when spec.cancel is true",
    ),
    pytest.param(
        make(
            body(
                {
                    "operation": {
                        "requestId": "r1",
                        "status": "inProgress",
                        "intent": digicert_intent(),
                    }
                },
                policy=DIGICERT_POLICY,
                cancel=True,
            ),
            operation=op(issuer_name="mydigicert"),
        ).with_outcome(CancelRequested(op(issuer_name="mydigicert", cancellation_requested=True))),
        ["Emit"],
        ("False", "Cancelling"),
        id="records the cancellation request and keeps polling, with one Cancelling event",
    ),
    pytest.param(
        make(
            body(
                {
                    "operation": {
                        "requestId": "r1",
                        "status": "inProgress",
                        "intent": digicert_intent(),
                    }
                },
                policy=DIGICERT_POLICY,
                cancel=True,
            ),
            operation=op(issuer_name="mydigicert", cancellation_requested=True),
        ),
        ["Emit"],
        ("False", "Cancelling"),
        id="does not cancel twice",
    ),
    pytest.param(
        make(
            body(
                {
                    "operation": {
                        "requestId": "r1",
                        "status": "inProgress",
                        "intent": digicert_intent(),
                    }
                },
                policy=DIGICERT_POLICY,
                cancel=True,
            ),
            operation=op(issuer_name="mydigicert"),
        ).with_outcome(
            CancelRefused(CallError(403, "Forbidden", "Pending status must be in progress"))
        ),
        ["ReadOperation"],
        None,
        id="reads the operation again right after a refused cancellation",
    ),
    pytest.param(
        make(
            body(
                {
                    "operation": {
                        "requestId": "r1",
                        "status": "inProgress",
                        "intent": digicert_intent(),
                    }
                },
                policy=DIGICERT_POLICY,
                cancel=True,
            ),
            operation=op(issuer_name="mydigicert"),
        )
        .with_outcome(
            CancelRefused(CallError(403, "Forbidden", "Pending status must be in progress"))
        )
        .with_outcome(OperationRead(op(issuer_name="mydigicert"))),
        ["Emit"],
        ("False", "CancelRefused"),
        id="reports a refused cancellation once, with one event",
    ),
    pytest.param(
        make(
            body(
                {
                    "operation": {
                        "requestId": "r1",
                        "status": "inProgress",
                        "intent": digicert_intent(),
                    }
                },
                policy=DIGICERT_POLICY,
                cancel=True,
            ),
            operation=op(issuer_name="mydigicert"),
        )
        .with_outcome(CancelRefused(CallError(400, "BadParameter", "not in progress")))
        .with_outcome(OperationRead(op("completed", target="https://kv/certificates/web"))),
        ["ReadCertificate"],
        None,
        id="after a refused cancellation, delivers the operation that completed meanwhile",
    ),
    pytest.param(
        make(
            body(
                {
                    "operation": {
                        "requestId": "r1",
                        "status": "inProgress",
                        "intent": digicert_intent(),
                        "cancelRefused": "no",
                    }
                },
                policy=DIGICERT_POLICY,
                cancel=True,
            ),
            operation=op(issuer_name="mydigicert"),
        ),
        [],
        None,
        id="never retries a refused cancellation",
    ),
]


@pytest.mark.parametrize(("inp", "expected", "ready"), CASES)
def test_transition(inp: Any, expected: list[str], ready: tuple[str, str] | None) -> None:
    decision = reconcile(inp)
    assert kinds(decision) == expected
    if ready is not None:
        got = condition(dict(decision.status_patch)) or {}
        assert (got.get("status"), got.get("reason")) == ready


def test_csr_configmap_is_named_after_the_resource() -> None:
    (publish,) = reconcile(make(manual(), operation=unknown_op())).actions
    assert isinstance(publish, WriteCsrConfigMap)
    assert (publish.name, publish.csr_pem) == ("web-csr", CSR)


def test_csr_and_csr_ref_land_in_status_operation() -> None:
    decision = reconcile(
        make(manual(), operation=unknown_op()).with_outcome(CsrPublished("web-csr"))
    )
    operation = decision.status_patch["operation"]
    assert operation["csr"] == CSR
    assert operation["csrRef"] == {"kind": "ConfigMap", "name": "web-csr"}


def test_merge_names_the_fingerprint_it_decided_on() -> None:
    inp = make(
        manual({"csrRef": {"name": "web-csr"}}, mergeFrom=MERGE_FROM),
        operation=unknown_op(),
        merge_secret=CHAIN,
    )
    (merge,) = reconcile(inp).actions
    assert isinstance(merge, MergeChain)
    assert (merge.secret_name, merge.fingerprint) == ("web-signed", "fp-1")


def test_refused_merge_is_recorded_and_the_operation_stays_pending() -> None:
    inp = make(
        manual({"csrRef": {"name": "web-csr"}}, mergeFrom=MERGE_FROM),
        operation=unknown_op(),
        merge_secret=CHAIN,
    ).with_outcome(
        MergeRefused("fp-1", forbidden=False, error=CallError(400, "BadParameter", "mismatch"))
    )
    decision = reconcile(inp)
    operation = decision.status_patch["operation"]
    assert operation["merge"]["fingerprint"] == "fp-1"
    assert operation["merge"]["result"] == "Rejected"
    assert "status" not in operation  # still inProgress: nothing to change
    assert decision.requeue_after is not None


def test_refused_cancel_is_recorded() -> None:
    inp = make(
        body(
            {"operation": {"requestId": "r1", "status": "inProgress", "intent": digicert_intent()}},
            policy=DIGICERT_POLICY,
            cancel=True,
        ),
        operation=op(issuer_name="mydigicert"),
    ).with_outcome(CancelRefused(CallError(400, "BadParameter", "not in progress")))
    decision = reconcile(inp.with_outcome(OperationRead(op(issuer_name="mydigicert"))))
    assert decision.status_patch["operation"]["cancelRefused"] == "not in progress"
    assert ("Warning", "CancelRefused") in events(decision)


def _failed_digicert(**spec: Any) -> dict[str, Any]:
    operation = {
        "requestId": "r1",
        "status": "failed",
        "issuer": "mydigicert",
        "intent": digicert_intent(),
        "error": {"code": "Rejected", "message": "Domain not validated."},
    }
    conditions = [{"type": "Ready", "status": "False", "reason": "OperationFailed"}]
    return body({"operation": operation, "conditions": conditions}, policy=DIGICERT_POLICY, **spec)


def test_a_failed_request_with_merge_from_looks_at_the_merge_secret_again_later() -> None:
    decision = reconcile(
        make(_failed_digicert(mergeFrom=MERGE_FROM), merge_secret=SourceFacts.absent())
    )
    assert kinds(decision) == []
    assert decision.requeue_after is not None
    ready = condition(dict(decision.status_patch))
    assert ready is None or ready["reason"] == "OperationFailed"


def test_a_failed_request_without_merge_from_is_never_looked_at_again() -> None:
    decision = reconcile(make(_failed_digicert()))
    assert kinds(decision) == []
    assert decision.requeue_after is None


def test_a_forbidden_chain_is_still_reported_on_the_next_poll_and_not_merged_again() -> None:
    raw = body(
        {
            "operation": {
                "requestId": "r1",
                "status": "inProgress",
                "issuer": "mydigicert",
                "intent": digicert_intent(),
                "merge": {"fingerprint": "fp-1", "result": "Forbidden", "message": "Forbidden"},
            },
            "conditions": [{"type": "Ready", "status": "False", "reason": "MergeForbidden"}],
        },
        policy=DIGICERT_POLICY,
        mergeFrom=MERGE_FROM,
    )
    decision = reconcile(
        make(raw, operation=op(issuer_name="mydigicert", csr_pem=CSR), merge_secret=CHAIN)
    )
    assert kinds(decision) == []  # no merge, and no second event for the same reason
    assert decision.requeue_after is not None
    ready = condition(dict(decision.status_patch))
    assert ready is None or ready["reason"] == "MergeForbidden"
