"""Operator settings come from the command line and the environment, read once."""

from __future__ import annotations

import pytest

from kvcert.runtime.settings import OperatorSettings


@pytest.mark.parametrize(
    ("environ", "namespace"),
    [
        pytest.param({}, "kvcert-system", id="defaults to kvcert-system"),
        pytest.param(
            {"POD_NAMESPACE": "ops"}, "ops", id="the pod's namespace from the downward API"
        ),
        pytest.param(
            {"POD_NAMESPACE": "ops", "KVCERT_NAMESPACE": "x"}, "x", id="KVCERT_NAMESPACE wins"
        ),
    ],
)
def test_the_operator_namespace(environ, namespace):
    assert OperatorSettings.load(environ=environ).operator_namespace == namespace


def test_namespaces_are_deduplicated_in_order_and_none_means_cluster_wide():
    assert OperatorSettings.load(namespaces=["b", "a", "b"], environ={}).namespaces == ("b", "a")
    assert OperatorSettings.load(environ={}).clusterwide


@pytest.mark.parametrize(
    ("kwargs", "environ", "message"),
    [
        ({"log_level": "loud"}, {}, "log level must be one of"),
        ({}, {"KVCERT_VAULT_CREATES_PER_10S": "0"}, "positive integer"),
        ({}, {"KVCERT_VAULT_CREATES_PER_10S": "many"}, "positive integer"),
    ],
)
def test_bad_settings_are_refused_with_a_message(kwargs, environ, message):
    with pytest.raises(ValueError, match=message):
        OperatorSettings.load(environ=environ, **kwargs)


def test_the_create_limit_can_be_lifted_for_benchmarks():
    limit = OperatorSettings.load(environ={"KVCERT_VAULT_CREATES_PER_10S": "1000"})
    assert limit.creates_per_10s == 1000


def test_the_workload_identity_token_file_is_read_once_into_settings() -> None:
    """Issue #18 §6: the environment is read once, at start-up, into the memo's settings."""
    default = OperatorSettings.load(environ={})
    assert default.federated_token_file == "/var/run/secrets/azure/tokens/azure-identity-token"
    given = OperatorSettings.load(environ={"AZURE_FEDERATED_TOKEN_FILE": "/tmp/token"})
    assert given.federated_token_file == "/tmp/token"
