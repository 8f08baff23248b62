"""The typed async Key Vault client: every call the operator makes, nothing else.

Each method sends one logical request (session.py retries it when that is safe) and returns the
operator's own observed values, never a wire shape. The vault may be Azure or kvcert's local
vault in either profile; the differences are folded in convert.py and errors.py.
"""

from __future__ import annotations

import base64
import re
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import httpx

from kvcert.keyvault import wire
from kvcert.keyvault.convert import (
    certificate_from_wire,
    operation_from_wire,
)
from kvcert.keyvault.credentials import VaultCredential
from kvcert.keyvault.errors import (
    BadParameter,
    OperationNotInProgress,
    UnexpectedResponse,
)
from kvcert.keyvault.observe import RequestObserver
from kvcert.keyvault.policy import (
    CertificatePolicySpec,
    LifetimeActionSpec,
    build_lifetime_actions,
    build_policy,
)
from kvcert.keyvault.retry import RetryPolicy, VaultRateLimiter, parse_retry_after
from kvcert.keyvault.session import (
    DEFAULT_TIMEOUT,
    VaultSession,
    make_ssl_context,
    parse_model,
)
from kvcert.keyvault.settings import VaultSettings, object_name
from kvcert.reconcile.observed import ObservedCertificate, ObservedOperation

SUPPORTED_API_VERSIONS = ("7.5", "7.6", "2025-07-01", "2026-04-01")
_VERSION = re.compile(r"^[0-9A-Za-z]{1,64}$")


@dataclass(frozen=True)
class CertificateSecret:
    """A certificate's secret for the tls Secret: PEM text (key + chain) or base64 PKCS#12.
    Never printed: the repr hides the value."""

    content_type: str
    value: str = field(repr=False)

    def __repr__(self) -> str:
        return f"CertificateSecret(content_type={self.content_type!r}, value=<redacted>)"


def _operation(response: httpx.Response) -> ObservedOperation:
    return operation_from_wire(
        parse_model(wire.CertificateOperation, response),
        retry_after=parse_retry_after(response.headers.get("retry-after")),
    )


class KeyVaultClient(VaultSettings):
    """One vault. Create one per vault URL and credential; share its rate limiter with any
    other client of the same vault. Without `transport`, TLS trusts `ca_bundle_pem` alone when
    given, else the system roots; pass a prebuilt `ssl_context` (make_ssl_context, run off the
    event loop) to share one trust store between clients. `observer` is told of every HTTP
    exchange (kvcert.keyvault.observe), e.g. to count requests for metrics."""

    def __init__(
        self,
        vault_url: str,
        credential: VaultCredential,
        *,
        ca_bundle_pem: str | None = None,
        api_version: str = "7.5",
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        rate_limiter: VaultRateLimiter | None = None,
        verify_challenge_resource: bool = True,
        ssl_context: ssl.SSLContext | None = None,
        observer: RequestObserver | None = None,
    ) -> None:
        if api_version not in SUPPORTED_API_VERSIONS:
            raise ValueError(f"api_version must be one of {SUPPORTED_API_VERSIONS}")
        if ssl_context is None and transport is None:
            ssl_context = make_ssl_context(ca_bundle_pem)
        self._session = VaultSession(
            vault_url,
            credential,
            api_version=api_version,
            ssl_context=ssl_context,
            transport=transport,
            timeout=timeout,
            retry=retry or RetryPolicy(),
            rate_limiter=rate_limiter or VaultRateLimiter(),
            verify_challenge_resource=verify_challenge_resource,
            observer=observer,
        )

    @property
    def vault_url(self) -> str:
        return self._session.vault_url

    @property
    def api_version(self) -> str:
        return self._session.api_version

    async def close(self) -> None:
        """Close the HTTP connections (the credential belongs to the caller)."""
        await self._session.close()

    async def __aenter__(self) -> KeyVaultClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- pending operations -------------------------------------------------------------------

    async def create_certificate(
        self,
        name: str,
        policy: CertificatePolicySpec | wire.CertificatePolicy,
        tags: Mapping[str, str] | None = None,
    ) -> ObservedOperation:
        """Start a certificate (202; its Retry-After lands in `retry_after`). Not retried once
        the vault may have acted: a 409 on a later call is the caller's cue to adopt."""
        if isinstance(policy, CertificatePolicySpec):
            policy = build_policy(policy)
        body = wire.CertificateCreateParameters(policy=policy, tags=dict(tags) if tags else None)
        response = await self._session.call(
            "POST",
            f"/certificates/{object_name(name)}/create",
            expect=202,
            body=body,
            create=True,
            idempotent=False,
        )
        return _operation(response)

    async def get_pending_operation(
        self, name: str, request_id: str | None = None
    ) -> ObservedOperation:
        """Read the pending operation, with the vault's Retry-After hint for the next poll;
        with `request_id`, a 404 means the pending operation is not that one."""
        params = {"request_id": request_id} if request_id else None
        response = await self._session.call(
            "GET", f"/certificates/{object_name(name)}/pending", params=params
        )
        return _operation(response)

    async def cancel_pending_operation(self, name: str) -> ObservedOperation:
        """Ask for cancellation. An operation that already ended raises OperationNotInProgress
        in both profiles (the documented one answers 400, the service 403)."""
        body = wire.CertificateOperationUpdateParameter(cancellation_requested=True)
        try:
            response = await self._session.call(
                "PATCH", f"/certificates/{object_name(name)}/pending", body=body
            )
        except BadParameter as exc:
            if "version" in exc.message.lower():  # an api-version rejection, not a state
                raise
            raise OperationNotInProgress(
                exc.status,
                exc.code,
                exc.message,
                request_id=exc.request_id,
                inner_code=exc.inner_code,
            ) from None
        return _operation(response)

    async def delete_pending_operation(self, name: str) -> ObservedOperation:
        """Delete the pending object; returns it as it was. May not cancel at the provider."""
        response = await self._session.call("DELETE", f"/certificates/{object_name(name)}/pending")
        return _operation(response)

    async def merge_certificate(
        self,
        name: str,
        x5c_der_list: Sequence[bytes],
        tags: Mapping[str, str] | None = None,
    ) -> ObservedCertificate:
        """Complete a manual (or failed/cancelled issuer) operation with a signed chain, leaf
        first, each certificate as DER."""
        if not x5c_der_list:
            raise ValueError("merge needs at least the signed leaf certificate")
        body = wire.CertificateMergeParameters(
            x5c=[base64.b64encode(der).decode("ascii") for der in x5c_der_list],
            tags=dict(tags) if tags else None,
        )
        response = await self._session.call(
            "POST",
            f"/certificates/{object_name(name)}/pending/merge",
            expect=201,
            body=body,
            idempotent=False,
        )
        return certificate_from_wire(parse_model(wire.CertificateBundle, response))

    # --- certificates ---------------------------------------------------------------------------

    async def import_certificate(
        self,
        name: str,
        value: str | bytes,
        *,
        password: str | None = None,
        policy: CertificatePolicySpec | wire.CertificatePolicy | None = None,
        tags: Mapping[str, str] | None = None,
        content_type: str | None = None,
    ) -> ObservedCertificate:
        """Import a PFX (raw bytes or base64 text) or PEM text holding key and chain.

        Key Vault reads `value` as `policy.secret_props.contentType` says: PEM needs
        `application/x-pem-file` (and a PKCS#8 key), a PFX `application/x-pkcs12` or nothing.
        `content_type` is sent in that place, alone when there is no other policy.
        """
        if isinstance(value, bytes):
            value = base64.b64encode(value).decode("ascii")
        if isinstance(policy, CertificatePolicySpec):
            if content_type is not None:
                policy = replace(policy, content_type=content_type)
            policy = build_policy(policy)
        elif content_type is not None:
            secret_props = wire.SecretProperties(content_type=content_type)
            policy = (
                wire.CertificatePolicy(secret_props=secret_props)
                if policy is None
                else policy.model_copy(update={"secret_props": secret_props})
            )
        body = wire.CertificateImportParameters.model_validate(
            {"value": value, "pwd": password, "policy": policy, "tags": dict(tags or {}) or None}
        )
        response = await self._session.call(
            "POST",
            f"/certificates/{object_name(name)}/import",
            body=body,
            create=True,
            idempotent=False,
        )
        return certificate_from_wire(parse_model(wire.CertificateBundle, response))

    async def get_certificate(self, name: str, version: str | None = None) -> ObservedCertificate:
        """The given version, or the latest (which may be a pending one: enabled False)."""
        path = f"/certificates/{object_name(name)}/{self._version(version) if version else ''}"
        response = await self._session.call("GET", path)
        return certificate_from_wire(parse_model(wire.CertificateBundle, response))

    async def get_certificate_secret(self, name: str, version: str) -> CertificateSecret:
        """The secret behind a certificate version: what the tls Secret is built from."""
        path = f"/secrets/{object_name(name)}/{self._version(version)}"
        response = await self._session.call("GET", path)
        bundle = parse_model(wire.SecretBundle, response)
        if bundle.value is None:
            raise UnexpectedResponse("secret bundle without a value")
        return CertificateSecret(
            content_type=bundle.content_type or "application/x-pkcs12",
            value=bundle.value.get_secret_value(),
        )

    async def update_lifetime_actions(
        self, name: str, actions: Sequence[LifetimeActionSpec]
    ) -> None:
        """PATCH /certificates/{name}/policy with only `lifetime_actions`: Key Vault applies it
        in place, no new version (REST: UpdateCertificatePolicy). An empty list is sent as one
        (Key Vault then keeps its default action)."""
        policy = build_lifetime_actions(actions)
        await self._session.call(
            "PATCH", f"/certificates/{object_name(name)}/policy", body=policy, idempotent=True
        )

    async def update_policy(self, name: str, policy: CertificatePolicySpec) -> None:
        """PATCH /certificates/{name}/policy with the whole policy (REST: UpdateCertificatePolicy):
        Key Vault keeps it for the next version; the current version is unchanged."""
        body = build_policy(policy)
        await self._session.call(
            "PATCH", f"/certificates/{object_name(name)}/policy", body=body, idempotent=True
        )

    async def update_tags(self, name: str, tags: Mapping[str, str]) -> ObservedCertificate:
        """PATCH /certificates/{name}/ with `tags` (REST: UpdateCertificate; the map replaces
        the certificate's tags); the latest version, no new one."""
        body = wire.CertificateUpdateParameters(tags=dict(tags))
        response = await self._session.call(
            "PATCH", f"/certificates/{object_name(name)}/", body=body, idempotent=True
        )
        return certificate_from_wire(parse_model(wire.CertificateBundle, response))

    async def delete_certificate(self, name: str) -> ObservedCertificate:
        """Soft delete: the name stays taken until the deletion is purged or recovered."""
        response = await self._session.call("DELETE", f"/certificates/{object_name(name)}")
        return certificate_from_wire(parse_model(wire.CertificateBundle, response))

    async def recover_deleted_certificate(self, name: str) -> ObservedCertificate:
        """Recover a soft-deleted certificate (POST /deletedcertificates/{name}/recover). Key
        Vault may finish the recovery after answering: the certificate reads back (GET) once it
        has. CertificateNotFound: nothing of that name is deleted (purged, or recovered)."""
        response = await self._session.call(
            "POST", f"/deletedcertificates/{object_name(name)}/recover", idempotent=False
        )
        return certificate_from_wire(parse_model(wire.CertificateBundle, response))

    @staticmethod
    def _version(version: str) -> str:
        if not _VERSION.match(version):
            raise ValueError(f"invalid certificate version {version[:40]!r}")
        return version
