"""Perform reconcile's actions: each one call, its result a value or a `CallError`.

Failures are returned, not raised, so that reconcile decides what they mean (adopt a 409,
report a 403, back off on a 503); only programming errors escape.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client.exceptions import ApiException
from kubernetes_asyncio import client

from kvcert import tls_secret
from kvcert.api.certificate import Policy
from kvcert.chain import order_der
from kvcert.keyvault import KeyVaultClient
from kvcert.keyvault.convert import call_error as vault_call_error
from kvcert.keyvault.errors import KeyVaultError
from kvcert.keyvault.policy import CertificatePolicySpec, LifetimeActionSpec
from kvcert.reconcile import actions
from kvcert.reconcile.facts import SecretFacts
from kvcert.reconcile.observed import CallError
from kvcert.reconcile.outcomes import OUTPUT_REFUSED
from kvcert.runtime import crashpoints, sources
from kvcert.runtime.cache import KnownSecret, OutputSecrets, known_from_model
from kvcert.runtime.kube import (
    CERTIFICATE_LABEL,
    DATA_HASH_ANNOTATION,
    MANAGED_BY,
    OUTPUT_HASH_ANNOTATION,
    UID_ANNOTATION,
    VERSION_ANNOTATION,
    X5T_ANNOTATION,
    Kube,
    Owner,
)
from kvcert.runtime.kube import call_error as kube_call_error

log = logging.getLogger("kvcert.perform")


def policy_spec(policy: Policy) -> CertificatePolicySpec:
    """The resource's policy in the Key Vault client's terms."""
    names = [*(policy.dns_names or []), *(policy.emails or []), *(policy.upns or [])]
    subject = policy.subject or (f"CN={names[0]}" if names else "")
    return CertificatePolicySpec(
        subject=subject,
        dns_names=tuple(policy.dns_names or ()),
        emails=tuple(policy.emails or ()),
        upns=tuple(policy.upns or ()),
        validity_months=policy.validity_months,
        key_type=policy.key.type.value,
        key_size=policy.key.size,
        key_curve=policy.key.curve.value if policy.key.curve else None,
        exportable=policy.key.exportable,
        reuse_key=policy.key.reuse_key,
        content_type=policy.content_type.value,
        key_usage=tuple(usage.value for usage in policy.key_usage or ()),
        ekus=tuple(policy.ekus or ()),
        lifetime_actions=tuple(
            LifetimeActionSpec(
                action=item.action.value,
                lifetime_percentage=item.trigger.lifetime_percentage,
                days_before_expiry=item.trigger.days_before_expiry,
            )
            for item in policy.lifetime_actions or ()
        ),
        issuer_name=policy.issuer.name,
        certificate_type=policy.issuer.certificate_type,
        cert_transparency=policy.issuer.certificate_transparency,
    )


@dataclass
class Performer:
    """Performs actions for one Certificate during one reconcile.

    `outputs` is what the output Secrets' watch said (kvcert.runtime.cache): a known output
    Secret is judged and replaced without a GET. `delivered` says whether the Certificate ever
    delivered one (status.certificate is set); one that never did is presumed to have none, and
    its Secret is created: a 409 (someone else's Secret, or a write the status never recorded)
    turns into a GET and a judgement, as before (issue #17: no read in the steady path)."""

    kube: Kube
    vault: KeyVaultClient | None
    namespace: str
    owner: Owner
    resource_version: str | None
    outputs: OutputSecrets = field(default_factory=OutputSecrets)
    delivered: bool = True
    fresh_reads: bool = False
    """Read the output Secret (ReadSecret) instead of trusting the cache: a start-up or
    re-list round re-derives everything from the cluster."""
    written_status: list[dict[str, Any]] = field(default_factory=list)
    latest_body: dict[str, Any] | None = None
    """The body the last status write returned (the newest this round knows)."""

    async def perform(self, action: actions.Action) -> object:
        try:
            return await self._dispatch(action)
        except KeyVaultError as error:
            return vault_call_error(error)
        except ApiException as error:
            return kube_call_error(error)
        except (sources.SourceError, tls_secret.TlsSecretError) as error:
            return CallError(status=422, code=type(error).__name__, message=str(error))

    async def _update_in_place(self, action: actions.UpdateInPlace) -> None:
        """An adoption (the whole policy, issue #19 §3): the tags first, so that Key Vault
        never holds a policy of ours on a certificate not yet tagged ours (a crash or a
        refusal between the two leaves it tagged, and the recorded intent resumes). Otherwise
        the policy's lifetime actions, then the tags (issue #15 §3)."""
        client = self._client()
        if action.policy is not None:
            if action.tags is not None:
                await client.update_tags(action.certificate_name, action.tags)
            await client.update_policy(action.certificate_name, policy_spec(action.policy))
            return
        if action.lifetime_actions is not None:
            rules = tuple(
                LifetimeActionSpec(
                    action=item.action.value,
                    lifetime_percentage=item.trigger.lifetime_percentage,
                    days_before_expiry=item.trigger.days_before_expiry,
                )
                for item in action.lifetime_actions
            )
            await client.update_lifetime_actions(action.certificate_name, rules)
        if action.tags is not None:
            await client.update_tags(action.certificate_name, action.tags)

    def _client(self) -> KeyVaultClient:
        if self.vault is None:
            raise KeyVaultError("no vault client for this Certificate")
        return self.vault

    async def _dispatch(self, action: actions.Action) -> object:
        match action:
            case actions.RecordIntent(patch=patch):
                crashpoints.reached("before:intent")
                body = await self.kube.patch_certificate_status(
                    self.namespace, self.owner.name, patch, self.resource_version
                )
                crashpoints.reached("after:intent")
                self.latest_body = body
                self.resource_version = body.get("metadata", {}).get("resourceVersion")
                self.written_status.append(dict(patch))
                return None
            case actions.CreateCertificate(certificate_name=name, policy=policy, tags=tags):
                crashpoints.reached("before:create")
                created = await self._client().create_certificate(name, policy_spec(policy), tags)
                crashpoints.reached("after:create")
                return created
            case actions.ImportCertificate():
                crashpoints.reached("before:import")
                imported = await self._import(action)
                crashpoints.reached("after:import")
                return imported
            case actions.ReadOperation(certificate_name=name):
                return await self._client().get_pending_operation(name)
            case actions.ReadCertificate(certificate_name=name):
                return await self._client().get_certificate(name)
            case actions.CancelOperation(certificate_name=name):
                return await self._client().cancel_pending_operation(name)
            case actions.DeletePendingOperation(certificate_name=name):
                return await self._client().delete_pending_operation(name)
            case actions.DeleteCertificate(certificate_name=name):
                return await self._client().delete_certificate(name)
            case actions.RecoverCertificate(certificate_name=name):
                return await self._client().recover_deleted_certificate(name)
            case actions.MergeChain():
                crashpoints.reached("before:merge")
                merged = await self._merge(action)
                crashpoints.reached("after:merge")
                return merged
            case actions.UpdateInPlace():
                await self._update_in_place(action)
                return None
            case actions.ReadSecret(secret_name=name):
                known = await self._output(name, read=self.fresh_reads)
                return known.facts(self.owner.uid) if known else SecretFacts.absent()
            case actions.ReadMergeSecret(secret_name=name):
                found = await self.kube.get_secret(self.namespace, name)
                # Ordering the chain for leaf_x5t verifies signatures: off the event loop.
                return await asyncio.to_thread(sources.merge_facts, found)
            case actions.ReadImportSecret(secret_name=name, password_key=password_key):
                found = await self.kube.get_secret(self.namespace, name)
                return sources.import_facts(found, password_key)
            case actions.WriteSecret():
                crashpoints.reached("before:secret")
                refused = await self._write_secret(action)
                crashpoints.reached("after:secret")
                return refused
            case actions.WriteCsrConfigMap():
                return await self._write_csr(action)
            case actions.Emit():
                return None
        raise TypeError(f"unknown action {type(action).__name__}")

    async def _source(self, name: str) -> client.V1Secret:
        found = await self.kube.get_secret(self.namespace, name)
        if found is None:
            raise sources.SourceError(f"Secret {name} does not exist")
        return found

    async def _import(self, action: actions.ImportCertificate) -> object:
        content = sources.import_content(
            await self._source(action.secret_name), action.password_key
        )
        if content.fingerprint != action.fingerprint:
            return CallError(412, "SourceChanged", "importFrom changed since it was read")
        policy = policy_spec(action.policy) if action.policy is not None else None
        # Key parsing and PKCS#12 encoding cost tens of milliseconds: off the event loop.
        request = await asyncio.to_thread(
            sources.prepare_import, content, policy.content_type if policy else None
        )
        return await self._client().import_certificate(
            action.certificate_name,
            request.value,
            password=request.password,
            policy=policy,
            tags=action.tags,
            content_type=request.content_type,
        )

    async def _merge(self, action: actions.MergeChain) -> object:
        secret = await self._source(action.secret_name)
        pem = sources.field(secret, "tls.crt")
        if sources.fingerprint(pem) != action.fingerprint:
            return CallError(412, "SourceChanged", "mergeFrom changed since it was read")
        chain = await asyncio.to_thread(order_der, sources.chain_der(pem))
        return await self._client().merge_certificate(action.certificate_name, chain)

    async def _keystore_password(self, action: actions.WriteSecret) -> bytes | CallError | None:
        """The PKCS12 password from its Secret (one GET, only when PKCS12 is asked for); a
        missing or empty one is a refusal that names the Secret and key, never a value."""
        ref = next((f.password_secret_ref for f in action.formats if f.password_secret_ref), None)
        if ref is None:
            return None
        found = await self.kube.get_secret(self.namespace, ref.name)
        value = None
        if found is not None:
            try:
                value = sources.field(found, ref.key)
            except ValueError:  # SourceError (missing or empty key), or not base64
                value = None
        if not value:
            message = (
                f"the PKCS12 keystore needs a password: Secret {ref.name} is missing or has no"
                f" non-empty key {ref.key}"
            )
            return CallError(422, OUTPUT_REFUSED, message)
        return value

    async def _output(self, name: str, *, read: bool = False) -> KnownSecret | None:
        """The output Secret as known (None: absent), from the watch's cache; read (GET) when
        the cache does not know it and the Certificate delivered one before, or with `read`."""
        known = self.outputs.get(self.namespace, name)
        if known is not None and not read:
            return known
        if not read and not self.delivered:
            return None
        found = await self.kube.get_secret(self.namespace, name)
        if found is None:
            self.outputs.forget(self.namespace, name)
            return None
        known = known_from_model(found)
        if known.managed:  # only labelled Secrets are watched: an unlabelled one is not kept
            self.outputs.record(self.namespace, name, known)
        return known

    async def _write_secret(self, action: actions.WriteSecret) -> object:
        existing = await self._output(action.secret_name)
        if existing is not None and not existing.facts(self.owner.uid).ours:
            return CallError(409, "SecretNotOwned", f"Secret {action.secret_name} is not ours")
        password = await self._keystore_password(action)
        if isinstance(password, CallError):
            return password
        vault = self._client()
        try:
            fetched = await vault.get_certificate_secret(action.certificate_name, action.version)
            if tls_secret.is_pem(fetched.content_type, fetched.value):
                # PEM is split, never re-parsed for its key (DESIGN §5): cheaper than the
                # thread hand-off it would cost (issue #17).
                data = tls_secret.from_pem(fetched.value)
            else:  # PKCS#12 parsing costs milliseconds: off the event loop
                data = await asyncio.to_thread(
                    tls_secret.from_vault_secret, fetched.content_type, fetched.value
                )
        except KeyVaultError as error:
            # A non-exportable key: Key Vault withholds the secret (a bare 403), deliver the
            # certificate. A 403 with an inner code is something else (an access denial,
            # ForbiddenByRbac, a disabled version's SecretDisabled): reported, never a Secret
            # without its key.
            if getattr(error, "status", None) != 403 or getattr(error, "inner_code", None):
                raise
            cert = await vault.get_certificate(action.certificate_name, action.version)
            if cert.der is None:
                raise
            data = await asyncio.to_thread(tls_secret.from_der, cert.der)
        formats = {item.type.value for item in action.formats}
        # Key parsing and keystore encryption: off the loop. Nothing without an exportable key.
        extra = (
            await asyncio.to_thread(tls_secret.additional_outputs, data, formats, password)
            if formats and data.key is not None
            else {}
        )
        annotations = {
            **dict(action.annotations),
            UID_ANNOTATION: self.owner.uid,
            X5T_ANNOTATION: action.x5t,
            VERSION_ANNOTATION: action.version,
        }
        if action.output_hash is not None:
            annotations[OUTPUT_HASH_ANNOTATION] = action.output_hash
        secret_data = data.secret_data(extra)
        # What was written, so that an edit of the data is told from the echo of this write.
        annotations[DATA_HASH_ANNOTATION] = sources.data_hash(secret_data)
        secret = client.V1Secret(
            metadata=client.V1ObjectMeta(
                name=action.secret_name,
                namespace=self.namespace,
                # The template's keys first: kvcert's own labels and annotations always win.
                labels={
                    **dict(action.labels),
                    MANAGED_BY: "kvcert",
                    CERTIFICATE_LABEL: self.owner.name,
                },
                annotations=annotations,
                owner_references=[self.owner.reference()],
            ),
            type=data.secret_type,
            data=secret_data,
        )
        written = await self._put_output(secret, existing)
        if isinstance(written, CallError):
            return written
        self.outputs.record(
            self.namespace, action.secret_name, KnownSecret.from_body(written, data_intact=True)
        )
        return None

    async def _put_output(
        self, secret: client.V1Secret, existing: KnownSecret | None
    ) -> dict[str, Any] | CallError:
        """Write the output Secret as `sources.output_write` says: create, replace, or (ours,
        another type) delete under its resourceVersion and create. A write the API server
        refuses because the cache was behind (404, 409, or 422 for a type it did not know) is
        judged again on a fresh read and made once more; failing again, it is a transient
        412 SecretChanged (retried with backoff), never a SecretConflict: only a Secret that is
        not ours is one (409 SecretNotOwned)."""
        assert secret.metadata is not None
        name = str(secret.metadata.name)
        for attempt in range(2):
            if attempt:
                existing = await self._output(name, read=True)
            mode = sources.output_write(
                existing.facts(self.owner.uid).ours if existing else None,
                existing.type if existing else None,
                str(secret.type),
            )
            if mode is sources.OutputWrite.REFUSE:
                return CallError(409, "SecretNotOwned", f"Secret {name} is not ours")
            version = existing.resource_version if existing else None
            if mode is sources.OutputWrite.RECREATE and not version:
                continue  # never delete without a precondition: read it first
            secret.metadata.resource_version = version  # type: ignore[assignment]
            try:
                if mode is sources.OutputWrite.RECREATE:
                    return await self.kube.put_secret(
                        self.namespace, secret, exists=True, recreate=True
                    )
                return await self.kube.put_secret(
                    self.namespace, secret, exists=mode is sources.OutputWrite.REPLACE
                )
            except ApiException as error:
                if error.status == 403:
                    return _write_forbidden(name, self.namespace, version is None)
                if error.status not in (404, 409, 422) or (attempt and error.status == 422):
                    raise
        message = f"Secret {name} changed while kvcert wrote it; writing it again later"
        return CallError(412, "SecretChanged", message)

    async def _write_csr(self, action: actions.WriteCsrConfigMap) -> object:
        config_map = client.V1ConfigMap(
            metadata=client.V1ObjectMeta(
                name=action.name,
                namespace=self.namespace,
                labels={MANAGED_BY: "kvcert", CERTIFICATE_LABEL: self.owner.name},
                owner_references=[self.owner.reference()],
            ),
            data={"csr.pem": action.csr_pem, "certificateName": action.certificate_name},
        )
        await self.kube.put_config_map(self.namespace, config_map, exists=action.exists)
        return None


def _write_forbidden(name: str, namespace: str, create: bool) -> CallError:
    """The API server refused the output Secret's write (RBAC): OutputRefused, retried with
    backoff (reconcile/outcomes.py), naming the Secret and the verb (issue #18 §3)."""
    verb = "create" if create else "update"
    message = (
        f"the API server refused to {verb} Secret {name} in {namespace} (403): grant the"
        " operator's service account create and update on secrets in this namespace"
    )
    return CallError(403, OUTPUT_REFUSED, message)
