"""What a lifecycle scenario costs: the operator's Key Vault requests (the vault's counters) and
its Kubernetes writes (the lab's audit log), printed as a table and appended to
.bench/lifecycle-costs.jsonl."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.integration.operator.harness import never

if TYPE_CHECKING:
    from tests.integration.operator.timetravel import Tenant

REPO = Path(__file__).resolve().parents[3]
COSTS_FILE = REPO / ".bench" / "lifecycle-costs.jsonl"
QUIET = 5.0
"""Seconds in which an idle or stalled Certificate must make no request and no write."""
SETTLE = 1.5
"""Seconds without a new request after which a scenario is over."""


@dataclass(frozen=True)
class Costs:
    """What one scenario cost: Key Vault requests by route, Kubernetes writes by verb/resource,
    and what the vault did by itself (lifetime actions)."""

    scenario: str
    key_vault: dict[str, int]
    kubernetes: dict[str, int]
    lifetime_actions: dict[str, int]

    def kv(self, route: str) -> int:
        return self.key_vault.get(route, 0)

    def k8s(self, what: str) -> int:
        return self.kubernetes.get(what, 0)

    def table(self) -> str:
        rows = [f"scenario: {self.scenario}"]
        rows += [f"  KV   {n:3d}  {route}" for route, n in sorted(self.key_vault.items())]
        rows += [f"  K8s  {n:3d}  {what}" for what, n in sorted(self.kubernetes.items())]
        rows += [f"  vault itself {n:3d}  {a}" for a, n in self.lifetime_actions.items() if n]
        if not self.key_vault and not self.kubernetes:
            rows.append("  (no request, no write)")
        return "\n".join(rows)


@dataclass
class Meter:
    """Counts what happens between `start` (construction) and `stop`."""

    tenant: Tenant
    kv_before: dict[str, int] = field(init=False)
    actions_before: dict[str, int] = field(init=False)
    audit_offset: int = field(init=False)

    def __post_init__(self) -> None:
        stats = self.tenant.ops.ok("GET", "/_kvcert/stats")
        self.kv_before = dict(stats["requests"])
        self.actions_before = dict(stats["lifetimeActions"])
        self.audit_offset = file_size(self.tenant.lab.audit_log)

    def peek(self) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
        stats = self.tenant.ops.ok("GET", "/_kvcert/stats")
        kv = _diff(stats["requests"], self.kv_before)
        actions = _diff(stats["lifetimeActions"], self.actions_before)
        writes = dict(self.tenant.lab.operator_writes(self.tenant.namespace, self.audit_offset))
        return kv, writes, actions

    def settle(self, timeout: float = 30.0) -> None:
        """Wait until neither Key Vault nor the API server sees a new request for SETTLE s."""
        deadline = time.monotonic() + timeout
        last, since = self.peek(), time.monotonic()
        while time.monotonic() - since < SETTLE:
            if time.monotonic() > deadline:
                pytest.fail(f"the operator kept making requests for {timeout} s: {last}")
            time.sleep(0.2)
            if (now := self.peek()) != last:
                last, since = now, time.monotonic()

    def stop(self, scenario: str, settle: bool = True) -> Costs:
        """The costs so far; printed as a table and appended to COSTS_FILE."""
        if settle:
            self.settle()
        kv, writes, actions = self.peek()
        costs = Costs(scenario, kv, writes, actions)
        print(costs.table())
        test = os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0]
        at = datetime.now(UTC).isoformat(timespec="seconds")
        record = {"test": test, "scenario": scenario, "keyVault": kv, "kubernetes": writes}
        record |= {"lifetimeActions": actions, "at": at}
        COSTS_FILE.parent.mkdir(exist_ok=True)
        with COSTS_FILE.open("a") as handle:
            handle.write(json.dumps(record, sort_keys=True) + "\n")
        return costs

    def quiet(self, window: float = QUIET, what: str = "a request or write") -> None:
        """Fail if the operator makes a Key Vault request or a Kubernetes write in `window`."""
        start = self.peek()[:2]
        never(lambda: self.peek()[:2] != start, window, f"{what} ({start} changed)")


def file_size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _diff(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in sorted(after.items()) if v != before.get(k, 0)}
