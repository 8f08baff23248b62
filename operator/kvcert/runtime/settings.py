"""The operator's settings, read once at start-up from the command line and the environment.

They travel in kopf's memo (`memo.settings`), never as module globals, so that a test can run
two operators with different settings in one process.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

DEFAULT_OPERATOR_NAMESPACE = "kvcert-system"
LOG_LEVELS = ("debug", "info", "warning", "error")


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
    - `log_level`: one of LOG_LEVELS.
    - `clock_file`: TEST-ONLY. `KVCERT_CLOCK_FILE` names a file holding seconds added to the
      operator's clock (kvcert.runtime.clock), so that integration tests move time instead of
      sleeping. Absent (None) by default; never set it in a deployment.
    """

    namespaces: tuple[str, ...] = ()
    operator_namespace: str = DEFAULT_OPERATOR_NAMESPACE
    creates_per_10s: int = 20
    liveness: str | None = None
    readiness: str | None = None
    log_level: str = "info"
    clock_file: Path | None = None

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
        log_level: str = "info",
        environ: Mapping[str, str] | None = None,
    ) -> OperatorSettings:
        """Settings from command-line values and the environment (default: os.environ).

        Raises ValueError for a log level outside LOG_LEVELS or a creates limit that is not a
        positive whole number.
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
        return cls(
            namespaces=tuple(dict.fromkeys(namespaces)),
            operator_namespace=own or DEFAULT_OPERATOR_NAMESPACE,
            creates_per_10s=int(raw_limit),
            liveness=liveness,
            readiness=readiness,
            log_level=log_level,
            clock_file=Path(clock_file) if clock_file else None,
        )
