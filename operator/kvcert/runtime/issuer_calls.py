"""The I/O of an issuer round (kvcert.runtime.issuers): the password Secret read, the one Key
Vault write and its outcome, and the scrubbed text of an error (issue #19 §2). Nothing here
logs, stores or returns the password except `read_password`'s value for the write.
"""

from __future__ import annotations

import base64
import binascii

from kvcert.api.issuer import IssuerSpecBase
from kvcert.keyvault import KeyVaultClient
from kvcert.keyvault.errors import (
    BadParameter,
    Forbidden,
    KeyVaultError,
    KeyVaultHTTPError,
    NotFound,
    Unauthorized,
)
from kvcert.keyvault.errors import redact as redact_secret
from kvcert.reconcile.issuer import (
    IssuerInput,
    PasswordFacts,
    Write,
    WriteOutcome,
    desired_settings,
    password_text,
)
from kvcert.runtime.kube import Kube
from kvcert.runtime.vaults import VaultClients


async def read_password(
    kube: Kube, namespace: str, name: str, key: str
) -> tuple[PasswordFacts, str | None]:
    """Facts about the password Secret, and the password (None when unusable): sent as is
    but for one trailing newline (kvcert.reconcile.issuer.password_text). Messages name the
    Secret and the key, never the value."""
    where = f"password Secret {namespace}/{name}"
    secret = await kube.get_secret(namespace, name)
    if secret is None:
        return PasswordFacts(problem=f"{where} does not exist"), None
    encoded = (secret.data or {}).get(key)
    if encoded is None:
        return PasswordFacts(problem=f"{where} has no key {key}"), None
    try:
        value = password_text(base64.b64decode(encoded))
    except binascii.Error:
        value = None
    if value is None:
        return PasswordFacts(problem=f"{where}: key {key} is not UTF-8 text"), None
    if not value:
        return PasswordFacts(problem=f"{where}: key {key} is empty"), None
    version = f"{secret.metadata.uid}/{secret.metadata.resource_version}"
    return PasswordFacts(version=version), value


async def write_issuer(
    vaults: VaultClients,
    write: Write,
    *,
    client: KeyVaultClient,
    inp: IssuerInput,
    spec: IssuerSpecBase,
    password: str | None,
) -> WriteOutcome:
    """Perform `write` (REST: SetCertificateIssuer PUT, DeleteCertificateIssuer) and say how
    it went; never raises a KeyVaultError. A refused token drops the vault's client."""
    settings = desired_settings(spec)
    try:
        if write is Write.DELETE:
            await client.delete_issuer(inp.issuer_name)
            return WriteOutcome(ok=True)
        written = await client.set_issuer(
            inp.issuer_name,
            settings.provider,
            account_id=settings.account_id,
            password=password,
            organization_id=settings.organization_id,
            administrators=settings.administrators,
            enabled=settings.enabled,
        )
    except NotFound as error:
        if write is Write.DELETE:
            return WriteOutcome(ok=True, not_found=True)
        return WriteOutcome(ok=False, error=error_text(error, password))
    except (BadParameter, Forbidden) as error:
        return WriteOutcome(ok=False, error=error_text(error, password), rejected=True)
    except KeyVaultError as error:
        if isinstance(error, Unauthorized):
            await vaults.forget(client)
        return WriteOutcome(ok=False, error=error_text(error, password))
    return WriteOutcome(ok=True, observed=written.observed())


def error_text(error: Exception, password: str | None) -> str:
    """An error's scrubbed text, with the password redacted once more (belt and braces). An
    HTTP error's request id is left out: the same failure then reads the same every retry,
    and its status is not written again (issue #19 §2 review)."""
    if isinstance(error, KeyVaultHTTPError):
        text = f"{error.status} {error.code or 'error'}"
        if error.message:
            text += f": {error.message}"
        return safe(text, password)
    return safe(str(error) or type(error).__name__, password)


def safe(text: str, password: str | None) -> str:
    return redact_secret(text, (password,) if password else (), fields=False)
