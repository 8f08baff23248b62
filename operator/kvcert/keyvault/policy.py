"""The certificate policy the operator asks for, in plain terms, and its one translation to the
wire.

The handler maps a Certificate's `spec.policy` into a `CertificatePolicySpec`; `build_policy`
is the only place that knows Key Vault's field names, and it refuses combinations Key Vault
would reject later (an EC key with a size, an RSA key with a curve) so the error surfaces at
the resource, not as a 400 after the intent was recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import get_args

from kvcert.keyvault import wire

RSA_SIZES = (2048, 3072, 4096)
PKCS12 = "application/x-pkcs12"
PEM = "application/x-pem-file"


@dataclass(frozen=True)
class LifetimeActionSpec:
    """One renewal rule: exactly one of the two triggers."""

    action: str = "AutoRenew"
    lifetime_percentage: int | None = None
    days_before_expiry: int | None = None

    def __post_init__(self) -> None:
        if (self.lifetime_percentage is None) == (self.days_before_expiry is None):
            raise ValueError("a lifetime action needs exactly one trigger")
        if self.action not in get_args(wire.ActionType):
            raise ValueError(f"unknown lifetime action {self.action!r}")


@dataclass(frozen=True)
class CertificatePolicySpec:
    """What a Certificate asks Key Vault for. Defaults are Key Vault's own."""

    subject: str
    dns_names: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    upns: tuple[str, ...] = ()
    validity_months: int | None = None
    key_type: str = "RSA"
    key_size: int | None = None
    key_curve: str | None = None
    exportable: bool = True
    reuse_key: bool = False
    content_type: str = PKCS12
    key_usage: tuple[str, ...] = ()
    ekus: tuple[str, ...] = ()
    lifetime_actions: tuple[LifetimeActionSpec, ...] = ()
    issuer_name: str = "Self"
    certificate_type: str | None = None
    cert_transparency: bool | None = None

    def __post_init__(self) -> None:
        if not self.subject and not (self.dns_names or self.emails or self.upns):
            raise ValueError("a policy needs a subject or at least one subject alternative name")
        if self.key_type not in get_args(wire.KeyType):
            raise ValueError(f"unknown key type {self.key_type!r}")
        if self.key_type.startswith("EC"):
            if self.key_size is not None:
                raise ValueError("an EC key takes a curve, not a size")
            if self.key_curve is not None and self.key_curve not in get_args(wire.CurveName):
                raise ValueError(f"unknown curve {self.key_curve!r}")
        else:
            if self.key_curve is not None:
                raise ValueError("an RSA key takes a size, not a curve")
            if self.key_size is not None and self.key_size not in RSA_SIZES:
                raise ValueError(f"RSA key size must be one of {RSA_SIZES}")
        if self.content_type not in (PKCS12, PEM):
            raise ValueError(f"content type must be {PKCS12} or {PEM}")
        unknown = set(self.key_usage) - set(get_args(wire.KeyUsage))
        if unknown:
            raise ValueError(f"unknown key usage {sorted(unknown)}")
        if self.validity_months is not None and self.validity_months < 1:
            raise ValueError("validity must be at least one month")
        if not self.issuer_name:
            raise ValueError("an issuer name is required (Self, Unknown or a vault issuer)")


def lifetime_actions_wire(actions: Sequence[LifetimeActionSpec]) -> list[wire.LifetimeAction]:
    """The wire form of lifetime actions (REST: `LifetimeAction`)."""
    return [
        wire.LifetimeAction(
            trigger=wire.Trigger(
                lifetime_percentage=action.lifetime_percentage,
                days_before_expiry=action.days_before_expiry,
            ),
            action=wire.Action.model_validate({"action_type": action.action}),
        )
        for action in actions
    ]


def build_lifetime_actions(actions: Sequence[LifetimeActionSpec]) -> wire.CertificatePolicy:
    """A policy body holding only lifetime actions, for PATCH .../policy."""
    return wire.CertificatePolicy(lifetime_actions=lifetime_actions_wire(actions))


def build_policy(spec: CertificatePolicySpec) -> wire.CertificatePolicy:
    """Translate the plain spec into the body Key Vault expects, leaving out what the spec
    leaves out so the vault applies its own defaults."""
    sans = None
    if spec.dns_names or spec.emails or spec.upns:
        sans = wire.SubjectAlternativeNames(
            dns_names=list(spec.dns_names) or None,
            emails=list(spec.emails) or None,
            upns=list(spec.upns) or None,
        )
    return wire.CertificatePolicy(
        key_props=wire.KeyProperties.model_validate(
            {
                "exportable": spec.exportable,
                "kty": spec.key_type,
                "key_size": spec.key_size,
                "reuse_key": spec.reuse_key,
                "crv": spec.key_curve,
            }
        ),
        secret_props=wire.SecretProperties(content_type=spec.content_type),
        x509_props=wire.X509Properties.model_validate(
            {
                "subject": spec.subject or None,
                "sans": sans,
                "ekus": list(spec.ekus) or None,
                "key_usage": list(spec.key_usage) or None,
                "validity_months": spec.validity_months,
            }
        ),
        lifetime_actions=lifetime_actions_wire(spec.lifetime_actions) or None,
        issuer=wire.IssuerParameters(
            name=spec.issuer_name,
            cty=spec.certificate_type,
            cert_transparency=spec.cert_transparency,
        ),
    )
