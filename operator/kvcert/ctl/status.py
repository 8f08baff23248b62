"""What `kvcert status` shows: the facts of one Certificate gathered into one dict (pure), and
that dict as one screen of text.

The dict (what `--output json|yaml` prints) has: name, namespace, spec (vault, certificateName,
source, refreshInterval, adopt, issuer, subject, dnsNames, emails, upns, secretName, mergeFrom,
importFrom, cancel), conditions
(type, status, reason, message, lastTransitionTime), failedAttempts and lastFailureTime (when
set), operation (requestId, status, issuer, statusDetails, error, csrRef, merge, cancelRefused;
null when none), certificate (version, serialNumber, x5t, notBefore, notAfter; null before the
first delivery), renewalTime, secret (name, exists, and x509facts.secret_facts when it exists)
and events (the last EVENTS_SHOWN: type, reason, message, count, time). Times are RFC 3339 UTC;
the text adds ages (`42s`, `5m`, `3h`, `2d`) computed against `now`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from kvcert.api.lifecycle import EXISTING_REFRESH, parse_duration

EVENTS_SHOWN = 10


def age(moment: str | datetime | None, now: datetime) -> str:
    """kubectl's short age: `42s`, `5m`, `3h`, `2d` (floored); "" for None or an unreadable
    time; a time ahead of `now` reads `in 5m`."""
    if moment is None:
        return ""
    if isinstance(moment, str):
        try:
            moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
        except ValueError:
            return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    seconds = int((now - moment).total_seconds())
    ahead = seconds < 0
    seconds = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size * (2 if unit != "m" else 1):
            text = f"{seconds // size}{unit}"
            break
    else:
        text = f"{seconds}s"
    return f"in {text}" if ahead else text


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def spec_facts(spec: Mapping[str, Any]) -> dict[str, Any]:
    policy = spec.get("policy") or {}
    vault_ref = spec.get("vaultRef") or {}
    return {
        "vault": f"{vault_ref.get('kind', 'KeyVault')}/{vault_ref.get('name', '')}",
        "certificateName": spec.get("certificateName"),
        "source": spec.get("source") or "Managed",
        "refreshInterval": spec.get("refreshInterval"),
        "adopt": bool(spec.get("adopt", False)),
        "issuer": (policy.get("issuer") or {}).get("name"),
        "subject": policy.get("subject"),
        "dnsNames": policy.get("dnsNames") or [],
        "emails": policy.get("emails") or [],
        "upns": policy.get("upns") or [],
        "secretName": spec.get("secretName"),
        "mergeFrom": (spec.get("mergeFrom") or {}).get("secretName"),
        "importFrom": (spec.get("importFrom") or {}).get("secretName"),
        "cancel": bool(spec.get("cancel", False)),
    }


def status_facts(
    body: Mapping[str, Any],
    secret: Mapping[str, Any] | None,
    events: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The Certificate `body` as the API returns it; `secret`: the output Secret's facts
    (x509facts.secret_facts) or None when it does not exist; `events` oldest first, each with
    type, reason, message, count and time (a datetime or None)."""
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    spec = spec_facts(body.get("spec") or {})
    op = status.get("operation") or None
    operation = None
    if op:
        operation = {
            key: op.get(key)
            for key in ("requestId", "status", "issuer", "statusDetails", "error", "csrRef")
        }
        operation["merge"] = (
            {k: v for k, v in op["merge"].items() if k != "fingerprint"}
            if op.get("merge")
            else None
        )
        operation["cancelRefused"] = op.get("cancelRefused")
    cert = status.get("certificate") or None
    delivered = None
    if cert:
        delivered = {
            key: cert.get(key)
            for key in ("version", "serialNumber", "x5t", "notBefore", "notAfter")
        }
    facts: dict[str, Any] = {
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "spec": spec,
        "conditions": [
            {
                key: item.get(key)
                for key in ("type", "status", "reason", "message", "lastTransitionTime")
            }
            for item in status.get("conditions") or []
        ],
        "operation": operation,
        "certificate": delivered,
        "renewalTime": status.get("renewalTime"),
        "secret": {"name": spec["secretName"], "exists": secret is not None, **(secret or {})},
        "events": [
            {
                "type": item.get("type"),
                "reason": item.get("reason"),
                "message": item.get("message"),
                "count": item.get("count"),
                "time": _iso(item.get("time")),
            }
            for item in list(events)[-EVENTS_SHOWN:]
        ],
    }
    if status.get("failedAttempts"):
        facts["failedAttempts"] = status["failedAttempts"]
        facts["lastFailureTime"] = status.get("lastFailureTime")
    return facts


def render(facts: Mapping[str, Any], now: datetime) -> str:
    """One screen of text, sections in the order of the dict."""
    spec = facts["spec"]
    lines = [f"Certificate {facts['namespace']}/{facts['name']}"]
    lines.append(f"  Vault:       {spec['vault']}")
    if spec["certificateName"]:
        lines.append(f"  Key Vault certificate: {spec['certificateName']}")
    existing = spec.get("source") == "Existing"
    if existing:
        every = spec.get("refreshInterval") or "1h"
        lines.append(f"  Source:      Existing (kvcert only delivers; looks every {every})")
        refresh = next_refresh(facts.get("renewalTime"), spec.get("refreshInterval"), now)
        if refresh is not None:
            lines.append(f"  Next refresh: {_iso(refresh)} ({age(refresh, now)})")
    elif spec.get("adopt"):
        lines.append("  Source:      Managed (spec.adopt: true)")
    if not existing:  # Existing has no policy: the Secret's leaf below says what it is
        lines.append(f"  Issuer:      {spec['issuer'] or '-'}")
        lines.append(f"  Subject:     {spec['subject'] or '-'}")
        names = [f"DNS:{n}" for n in spec["dnsNames"]] + [f"email:{n}" for n in spec["emails"]]
        names += [f"UPN:{n}" for n in spec["upns"]]
        lines.append(f"  SANs:        {', '.join(names) or '-'}")
    lines.append(f"  Secret:      {spec['secretName']}")
    for key, label in (("mergeFrom", "Merge from"), ("importFrom", "Import from")):
        if spec[key]:
            lines.append(f"  {label + ':':<12} {spec[key]}")
    if spec["cancel"]:
        lines.append("  Cancel:      true (spec.cancel)")
    lines.append("Conditions:")
    for item in facts["conditions"] or [{}]:
        if not item:
            lines.append("  (none yet: is the operator running?)")
            continue
        when = age(item.get("lastTransitionTime"), now)
        lines.append(
            f"  {item['type']:<11} {item['status']:<7} {item.get('reason') or '':<20} {when:>4}"
        )
        if item.get("message"):
            lines.append(f"              {item['message']}")
    if "failedAttempts" in facts:
        when = age(facts.get("lastFailureTime"), now)
        lines.append(f"Failed attempts: {facts['failedAttempts']} (last {when} ago)")
    lines.extend(_operation_lines(facts["operation"]))
    renewal = None if existing else facts.get("renewalTime")
    lines.extend(_certificate_lines(facts["certificate"], renewal, now))
    lines.extend(_secret_lines(facts["secret"]))
    lines.append("Events:")
    if not facts["events"]:
        lines.append("  (none)")
    width = max((len(event["reason"] or "") for event in facts["events"]), default=0)
    for event in facts["events"]:
        count = f" (x{event['count']})" if (event.get("count") or 1) > 1 else ""
        lines.append(
            f"  {age(event['time'], now):>4}  {event['type'] or '':<7}"
            f" {event['reason'] or '':<{max(width, 18)}} {event['message'] or ''}{count}"
        )
    return "\n".join(lines) + "\n"


def next_refresh(anchor: str | None, interval: str | None, now: datetime) -> datetime | None:
    """A source Existing certificate's next look: status.renewalTime (the schedule's first look)
    plus whole refreshIntervals (default 1h), the first after `now`; None when unknown. The
    operator writes renewalTime only when the spec changes, so this is computed, not read."""
    if not anchor:
        return None
    try:
        start = datetime.fromisoformat(anchor.replace("Z", "+00:00"))
        step = parse_duration(interval) if interval else EXISTING_REFRESH
    except ValueError:
        return None
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    if step <= timedelta(0) or start > now:
        return start
    return start + step * ((now - start) // step + 1)


def _operation_lines(op: Mapping[str, Any] | None) -> list[str]:
    if not op or not (op.get("status") or op.get("requestId")):
        return ["Pending operation: none"]  # none, or only an intent (e.g. an adoption)
    lines = [
        f"Pending operation: {op.get('status') or '-'} (issuer {op.get('issuer') or '-'})",
        f"  Request id:  {op.get('requestId') or '-'}",
    ]
    if op.get("statusDetails"):
        lines.append(f"  Details:     {op['statusDetails']}")
    error = op.get("error")
    if error:
        lines.append(f"  Error:       {error.get('code', '')}: {error.get('message', '')}")
    if op.get("csrRef"):
        lines.append(f"  CSR:         ConfigMap {op['csrRef'].get('name')} (kvcert csr)")
    merge = op.get("merge")
    if merge:
        message = f": {merge['message']}" if merge.get("message") else ""
        lines.append(f"  Last merge:  {merge.get('result')}{message}")
    if op.get("cancelRefused"):
        lines.append(f"  Cancel refused: {op['cancelRefused']}")
    return lines


def _certificate_lines(
    cert: Mapping[str, Any] | None, renewal: str | None, now: datetime
) -> list[str]:
    if not cert:
        return ["Delivered version: none yet"]
    lines = [
        f"Delivered version: {cert.get('version') or '-'}",
        f"  Serial:      {cert.get('serialNumber') or '-'}",
        f"  x5t:         {cert.get('x5t') or '-'}",
        f"  Valid:       {cert.get('notBefore') or '-'} to {cert.get('notAfter') or '-'}"
        f" ({_expiry(cert.get('notAfter'), now)})",
    ]
    if renewal:
        lines.append(f"  Next look:   {renewal} ({age(renewal, now)})")
    return lines


def _secret_lines(secret: Mapping[str, Any]) -> list[str]:
    if not secret["exists"]:
        return [f"Secret {secret['name']}: does not exist"]
    lines = [f"Secret {secret['name']}: {secret['type']}, keys {', '.join(secret['keys'])}"]
    leaf = secret.get("leaf")
    if leaf:
        lines.append(f"  Leaf:        {leaf['subject']} serial {leaf['serialNumber']}")
        lines.append(f"  SANs:        {', '.join(leaf.get('sans') or []) or '-'}")
        lines.append(f"  Chain:       {secret['chainLength']} certificate(s)")
    if secret.get("error"):
        lines.append(f"  Error:       {secret['error']}")
    match = secret.get("keyMatchesLeaf")
    said = {True: "yes", False: "NO: tls.key is not the leaf's key", None: "unknown (no key)"}
    lines.append(f"  Key matches leaf: {said[match]}")
    return lines


def _expiry(not_after: str | None, now: datetime) -> str:
    left = age(not_after, now)
    if not left:
        return "expiry unknown"
    return f"expires {left}" if left.startswith("in ") else f"EXPIRED {left} ago"
