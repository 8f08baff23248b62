"""The operator's settings, read once at start-up from the command line and the environment.

They travel in kopf's memo (`memo.settings`), never as module globals, so that a test can run
two operators with different settings in one process.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from kvcert.runtime import crashpoints

DEFAULT_OPERATOR_NAMESPACE = "kvcert-system"
LOG_LEVELS = ("debug", "info", "warning", "error")
DEFAULT_LEASE_NAME = "kvcert-operator"
DEFAULT_TOKEN_FILE = "/var/run/secrets/azure/tokens/azure-identity-token"  # noqa: S105 - a path


@dataclass(frozen=True)
class LeaderElectionSettings:
    """`--leader-elect`: one replica reconciles, elected with a coordination.k8s.io/v1 Lease
    (kvcert.runtime.leader). Durations are whole seconds, the Lease's own unit
    (`spec.leaseDurationSeconds`), with client-go's defaults (15, 10, 2).

    - `lease_duration`: how long a standby waits after the last renewal it saw before taking over;
    - `renew_deadline`: how long the leader keeps failing to renew before it stops (exits);
      shorter than `lease_duration`, so a leader always stops before another may take over;
    - `retry_period`: seconds between attempts to acquire or renew; the kubernetes client's
      elector requires `renew_deadline > 1.2 * retry_period` (its jitter factor).
    """

    namespace: str = DEFAULT_OPERATOR_NAMESPACE
    lease_name: str = DEFAULT_LEASE_NAME
    lease_duration: int = 15
    renew_deadline: int = 10
    retry_period: int = 2

    def __post_init__(self) -> None:
        """Raises ValueError for timings the election cannot keep safe."""
        if min(self.lease_duration, self.renew_deadline, self.retry_period) < 1:
            raise ValueError("lease duration, renew deadline and retry period must be >= 1 s")
        if self.renew_deadline >= self.lease_duration:
            raise ValueError(
                f"the renew deadline ({self.renew_deadline} s) must be shorter than the lease "
                f"duration ({self.lease_duration} s)"
            )
        if self.renew_deadline <= 1.2 * self.retry_period:
            raise ValueError(
                f"the retry period ({self.retry_period} s) must be shorter than the renew "
                f"deadline ({self.renew_deadline} s) divided by 1.2"
            )
        if not self.namespace or not self.lease_name:
            raise ValueError("the lease needs a namespace and a name")


@dataclass(frozen=True)
class OperatorSettings:
    """What the operator was told to do.

    - `namespaces`: the namespaces it watches; empty means every namespace (cluster-wide).
    - `operator_namespace`: where a ClusterKeyVault's credential Secrets live: the pod's own
      namespace (`POD_NAMESPACE` from the downward API, or `KVCERT_NAMESPACE`).
    - `creates_per_10s`: Key Vault's published limit of 20 key creates per 10 s per vault
      (Azure Key Vault service limits); `KVCERT_VAULT_CREATES_PER_10S` lifts it for benchmarks
      against the local vault.
    - `liveness` / `readiness`: `http://HOST:PORT/PATH` endpoints, or None for none.
    - `metrics`: the `http://HOST:PORT/PATH` endpoint serving Prometheus metrics
      (kvcert.runtime.metrics), or None (default) for none.
    - `log_level`: one of LOG_LEVELS.
    - `leader_election`: None (every process reconciles: run one) or the Lease to hold.
    - `clock_file`: TEST-ONLY. `KVCERT_CLOCK_FILE` names a file holding seconds added to the
      operator's clock (kvcert.runtime.clock), so that integration tests move time instead of
      sleeping. Absent (None) by default; never set it in a deployment.
    - `federated_token_file`: where workload identity's projected token is
      (`AZURE_FEDERATED_TOKEN_FILE`, set by the Azure Workload Identity webhook).
    - `crash_at`: TEST-ONLY. `KVCERT_CRASH_AT=<point>[#N]` makes the process exit at that
      point (kvcert.runtime.crashpoints, issue #18 §1). Absent (None) by default; never set it
      in a deployment.
    """

    namespaces: tuple[str, ...] = ()
    operator_namespace: str = DEFAULT_OPERATOR_NAMESPACE
    creates_per_10s: int = 20
    liveness: str | None = None
    readiness: str | None = None
    log_level: str = "info"
    clock_file: Path | None = None
    metrics: str | None = None
    leader_election: LeaderElectionSettings | None = None
    crash_at: tuple[str, int] | None = None
    federated_token_file: str = DEFAULT_TOKEN_FILE

    @property
    def clusterwide(self) -> bool:
        return not self.namespaces

    @classmethod
    def load(
        cls,
        *,
        namespaces: Sequence[str] = (),
        liveness: str | None = None,
        readiness: str | None = None,
        metrics: str | None = None,
        log_level: str = "info",
        leader_elect: bool = False,
        leader_election_namespace: str | None = None,
        lease_name: str = DEFAULT_LEASE_NAME,
        lease_duration: int = 15,
        renew_deadline: int = 10,
        retry_period: int = 2,
        environ: Mapping[str, str] | None = None,
    ) -> OperatorSettings:
        """Settings from command-line values and the environment (default: os.environ).

        Raises ValueError for a log level outside LOG_LEVELS, a creates limit that is not a
        positive whole number, a KVCERT_CRASH_AT that names no crash point, or leader election
        timings LeaderElectionSettings refuses. The Lease lives in `leader_election_namespace`,
        else the operator's own namespace.
        """
        env = os.environ if environ is None else environ
        if log_level not in LOG_LEVELS:
            raise ValueError(f"log level must be one of {', '.join(LOG_LEVELS)}: {log_level!r}")
        raw_limit = env.get("KVCERT_VAULT_CREATES_PER_10S", "20")
        if not raw_limit.isdigit() or int(raw_limit) < 1:
            raise ValueError(
                f"KVCERT_VAULT_CREATES_PER_10S must be a positive integer: {raw_limit!r}"
            )
        own = env.get("KVCERT_NAMESPACE") or env.get("POD_NAMESPACE")
        clock_file = env.get("KVCERT_CLOCK_FILE") or None
        crash_at = crashpoints.parse(env.get("KVCERT_CRASH_AT"))
        election = None
        if leader_elect:
            election = LeaderElectionSettings(
                namespace=leader_election_namespace or own or DEFAULT_OPERATOR_NAMESPACE,
                lease_name=lease_name,
                lease_duration=lease_duration,
                renew_deadline=renew_deadline,
                retry_period=retry_period,
            )
        return cls(
            namespaces=tuple(dict.fromkeys(namespaces)),
            operator_namespace=own or DEFAULT_OPERATOR_NAMESPACE,
            creates_per_10s=int(raw_limit),
            liveness=liveness,
            readiness=readiness,
            log_level=log_level,
            clock_file=Path(clock_file) if clock_file else None,
            metrics=metrics,
            leader_election=election,
            crash_at=crash_at,
            federated_token_file=env.get("AZURE_FEDERATED_TOKEN_FILE") or DEFAULT_TOKEN_FILE,
        )
