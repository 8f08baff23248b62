"""The plain policy spec becomes exactly the body Key Vault documents."""

from __future__ import annotations

import pytest

from kvcert.keyvault import CertificatePolicySpec, LifetimeActionSpec, build_policy, wire

from .conftest import example


def test_the_documented_create_example_is_reproduced() -> None:
    spec = CertificatePolicySpec(
        subject="CN=*.microsoft.com",
        dns_names=("onedrive.microsoft.com", "xbox.microsoft.com"),
        key_type="RSA",
        key_size=2048,
    )
    expected = example("CreateCertificate")["parameters"]["parameters"]["policy"]
    assert build_policy(spec).to_wire() == expected


def test_every_field_uses_its_wire_name() -> None:
    spec = CertificatePolicySpec(
        subject="CN=web",
        dns_names=("web.example.com",),
        emails=("ops@example.com",),
        upns=("web@example.com",),
        validity_months=12,
        key_type="EC",
        key_curve="P-256",
        exportable=True,
        reuse_key=True,
        content_type="application/x-pem-file",
        key_usage=("digitalSignature", "keyEncipherment"),
        ekus=("1.3.6.1.5.5.7.3.1",),
        lifetime_actions=(
            LifetimeActionSpec("AutoRenew", lifetime_percentage=80),
            LifetimeActionSpec("EmailContacts", days_before_expiry=10),
        ),
        issuer_name="mydigicert",
        certificate_type="OV-SSL",
        cert_transparency=False,
    )
    assert build_policy(spec).to_wire() == {
        "key_props": {"exportable": True, "kty": "EC", "reuse_key": True, "crv": "P-256"},
        "secret_props": {"contentType": "application/x-pem-file"},
        "x509_props": {
            "subject": "CN=web",
            "ekus": ["1.3.6.1.5.5.7.3.1"],
            "sans": {
                "emails": ["ops@example.com"],
                "dns_names": ["web.example.com"],
                "upns": ["web@example.com"],
            },
            "key_usage": ["digitalSignature", "keyEncipherment"],
            "validity_months": 12,
        },
        "lifetime_actions": [
            {"trigger": {"lifetime_percentage": 80}, "action": {"action_type": "AutoRenew"}},
            {"trigger": {"days_before_expiry": 10}, "action": {"action_type": "EmailContacts"}},
        ],
        "issuer": {"name": "mydigicert", "cty": "OV-SSL", "cert_transparency": False},
    }


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"key_type": "EC", "key_size": 2048}, id="EC with a size"),
        pytest.param({"key_type": "RSA", "key_curve": "P-256"}, id="RSA with a curve"),
        pytest.param({"key_type": "RSA", "key_size": 1024}, id="weak RSA"),
        pytest.param({"key_type": "EC", "key_curve": "P-999"}, id="unknown curve"),
        pytest.param({"key_type": "oct"}, id="not a certificate key"),
        pytest.param({"content_type": "text/plain"}, id="unknown content type"),
        pytest.param({"key_usage": ("signEverything",)}, id="unknown key usage"),
        pytest.param({"validity_months": 0}, id="zero validity"),
        pytest.param({"issuer_name": ""}, id="no issuer"),
        pytest.param({"subject": ""}, id="no subject and no SAN"),
    ],
)
def test_impossible_policies_are_refused_early(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        CertificatePolicySpec(**{"subject": "CN=web", **kwargs})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"lifetime_percentage": 80, "days_before_expiry": 3},
        {"action": "Nope", "days_before_expiry": 1},
    ],
)
def test_lifetime_actions_need_one_trigger_and_a_known_action(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        LifetimeActionSpec(**kwargs)  # type: ignore[arg-type]


def test_requests_refuse_unknown_fields() -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        wire.KeyProperties.model_validate({"kty": "RSA", "keysize": 2048})


def test_import_secrets_are_hidden_in_repr_but_sent() -> None:
    body = wire.CertificateImportParameters.model_validate({"value": "PFXDATA", "pwd": "pw"})
    assert "PFXDATA" not in repr(body)
    assert "pw'" not in repr(body)
    assert body.to_wire() == {"value": "PFXDATA", "pwd": "pw"}
