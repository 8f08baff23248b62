"""Leader election: with `--leader-elect`, exactly one replica reconciles at a time.

The election is the kubernetes client's own (kubernetes/leaderelection: `LeaderElection`,
`electionconfig.Config`, `resourcelock.leaselock.LeaseLock`, the Python port of client-go's
leaderelection), on a coordination.k8s.io/v1 Lease; this module only wires it:

- Until it holds the Lease, the process is a **standby**: kopf is not even imported, so there is
  no watch, no timer, no Key Vault request and no Kubernetes write but the Lease's. A small
  HTTP server (`StandbyProbes`, a thread) answers the pod's liveness and readiness endpoints with
  200 and a body saying "standby", so a standby pod is live and Ready.
- On acquiring the Lease the standby server is closed and `kvcert operator run` goes on exactly
  as without leader election (kopf binds the same endpoints): the leader behaves as today.
- The elector keeps renewing from its own thread. When leadership is lost the process exits at
  once (`os._exit(1)`, one log line): the kubelet restarts it as a standby. Two things report a
  loss: the elector itself (its renew loop gave up), and a watchdog that exits when no renewal
  has succeeded for `renew_deadline` seconds since the *start* of the last successful Lease write.
  The watchdog is needed because the elector gives up only `retry_period + renew_deadline` after
  its last success (it sleeps a retry period before each round), while a standby may take over
  `lease_duration` after it *observed* that write (client-go's rule, which the Python elector
  follows): a renew deadline shorter than the lease duration then guarantees the leader stops
  before anyone else may start, whatever the retry period.

- A clean exit releases the Lease (client-go's `ReleaseOnCancel`): on SIGTERM kopf stops its
  watches and handlers and `kvcert operator run` returns; then, at interpreter exit (`atexit`,
  after every write of the reconciles has ended), `Elector.release` stops the renewals and
  writes the Lease with an empty holderIdentity, a 1 s duration and renewTime now, as client-go
  does. A standby, which takes a Lease without a holder at once, then leads within one retry
  period instead of a lease duration after the last renewal it saw. Without the release a
  deleted leader pod went on renewing until it died (through the kubelet's grace period, at
  least 2 s after a forced deletion), and the standby waited `lease_duration` from the moment
  it *observed* the last renewal (its reads are a retry period apart) and then up to a retry
  period more for its next attempt: up to 2 + 2 + 15 + 2 s after the deletion with the
  defaults, over the 20 s the end-to-end failover test allowed (it timed out once in CI). A
  crash (SIGKILL, os._exit) releases nothing: the standby waits the lease duration, as before.
- A standby ends at SIGTERM (SystemExit from the signal handler): as PID 1 in a container,
  Python would otherwise ignore the signal until the kubelet's SIGKILL at the end of the grace
  period. kopf installs its own handler once it runs.

Identity (the Lease's holderIdentity, in the log lines): `<pod name or hostname>_<pid>`.
`LEADERSHIP_HOOKS` are called with True on acquiring and False on losing leadership (metrics:
the `kvcert_leader` gauge).
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from types import FrameType
from typing import Any

from kubernetes import client
from kubernetes.leaderelection import electionconfig, leaderelection
from kubernetes.leaderelection.resourcelock.leaselock import LeaseLock

from kvcert.runtime.settings import LeaderElectionSettings
from kvcert.runtime.standby import StandbyProbes

log = logging.getLogger("kvcert.leader")
LOST_EXIT_CODE = 1
"""The process's exit code when it loses the Lease (non-zero: the kubelet restarts it)."""
WATCHDOG_PERIOD = 0.1
"""Seconds between the watchdog's checks of the last successful Lease write."""
RELEASED_LEASE_DURATION = 1
"""leaseDurationSeconds written with a released Lease (client-go's `release()`)."""
RELEASE_ATTEMPTS = 3
"""Reads and writes the release tries when the Lease changed in between (409 Conflict)."""

LEADERSHIP_HOOKS: list[Callable[[bool], None]] = []
"""Called with True when this process acquires the Lease and False when it loses it (just
before it exits), from the elector's threads. A hook must not block or raise.

HOOK FOR METRICS (`kvcert_leader`, kvcert.runtime.metrics `Metrics.set_leader`): the Metrics
object is created in kopf's start-up, which runs only once the Lease is held (or without
`--leader-elect`), so kopf's start-up sets the gauge to 1 itself; a loss ends the process. A
standby serves no metrics; a metrics server started before the election would append here."""


def identity(environ: Mapping[str, str] | None = None) -> str:
    """This process's holderIdentity: `<POD_NAME or hostname>_<pid>` (unique per process, so
    a restarted container never mistakes its predecessor's Lease for its own)."""
    env = os.environ if environ is None else environ
    return f"{env.get('POD_NAME') or socket.gethostname()}_{os.getpid()}"


class LeaseApi:
    """The three Lease calls LeaseLock makes (CoordinationV1Api), each with a timeout in
    seconds: the client sets none, and a call hung on a dead connection would keep a standby
    from ever campaigning (a hung leader is ended by the watchdog anyway)."""

    def __init__(self, api: client.ApiClient, timeout: float) -> None:
        self.api = client.CoordinationV1Api(api)
        self.timeout = timeout

    def read_namespaced_lease(self, name: str, namespace: str, **kwargs: Any) -> Any:
        return self.api.read_namespaced_lease(
            name, namespace, _request_timeout=self.timeout, **kwargs
        )

    def create_namespaced_lease(self, namespace: str, body: Any, **kwargs: Any) -> Any:
        return self.api.create_namespaced_lease(
            namespace, body, _request_timeout=self.timeout, **kwargs
        )

    def replace_namespaced_lease(self, name: str, namespace: str, body: Any, **kwargs: Any) -> Any:
        return self.api.replace_namespaced_lease(
            name, namespace, body, _request_timeout=self.timeout, **kwargs
        )


class TimedLeaseLock:
    """The client's LeaseLock, remembering when its last successful write (create or update)
    began, on the monotonic clock (seconds). The elector reads `name`, `namespace`, `identity`
    and calls `get`, `create`, `update`, as on the LeaseLock it wraps.

    Writes are serialised; once `close`d the lock writes nothing more (each write answers False,
    a failed acquisition or renewal), so that the release is the last write of this process."""

    def __init__(
        self,
        lock: Any,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lock = lock
        self.name: str = lock.name
        self.namespace: str = lock.namespace
        self.identity: str = lock.identity
        self.clock = clock
        self.last_write: float | None = None
        self.closed = False
        self._writes = threading.Lock()

    def close(self, timeout: float) -> bool:
        """Refuse every later write; wait up to `timeout` seconds for one in flight to end.
        Returns False when a write is still in flight (it may yet renew the Lease)."""
        ended = self._writes.acquire(timeout=timeout)
        self.closed = True
        if ended:
            self._writes.release()
        return ended

    def get(self, name: str, namespace: str) -> tuple[bool, Any]:
        found: tuple[bool, Any] = self.lock.get(name, namespace)
        return found

    def create(self, name: str, namespace: str, election_record: Any) -> bool:
        return self._timed(lambda: self.lock.create(name, namespace, election_record))

    def update(self, name: str, namespace: str, updated_record: Any) -> bool:
        return self._timed(lambda: self.lock.update(name, namespace, updated_record))

    def _timed(self, write: Callable[[], Any]) -> bool:
        with self._writes:
            if self.closed:
                return False
            began = self.clock()
            succeeded = bool(write())
            if succeeded:
                self.last_write = began
            return succeeded


class Elector:
    """One candidate: the client's elector in a daemon thread, plus the watchdog.

    `leading` is set once the Lease is held. `exit` ends the process (os._exit; a test passes
    its own), called at most once."""

    def __init__(
        self,
        settings: LeaderElectionSettings,
        api: client.ApiClient,
        name: str,
        *,
        exit: Callable[[int], object] = os._exit,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.identity = name
        lease = LeaseLock(settings.lease_name, settings.namespace, name)  # type: ignore[no-untyped-call]
        # Our API client (not the default one), each call bounded by the renew deadline.
        self.api = LeaseApi(api, settings.renew_deadline)
        lease.api_instance = self.api  # type: ignore[assignment]
        self.lock = TimedLeaseLock(lease, clock)
        self.config = electionconfig.Config(  # type: ignore[no-untyped-call]
            self.lock,
            lease_duration=settings.lease_duration,
            renew_deadline=settings.renew_deadline,
            retry_period=settings.retry_period,
            onstarted_leading=self.started,
            onstopped_leading=lambda: self.lost("the elector could not renew it"),
        )
        self.election = leaderelection.LeaderElection(self.config)  # type: ignore[no-untyped-call]
        self.leading = threading.Event()
        self._exit = exit
        self._clock = clock
        self._exiting = threading.Lock()

    @property
    def where(self) -> str:
        return f"{self.settings.namespace}/{self.settings.lease_name}"

    def holder(self) -> str | None:
        """The holder this candidate last saw on the Lease (None before the first read)."""
        record = self.election.observed_record
        return None if record is None else str(record.holder_identity)

    def start(self) -> None:
        # The client logs every attempt at INFO ("yet to finish lease_duration ..."); ours say
        # what matters once.
        chatty = logging.getLogger("leaderelection")
        chatty.setLevel(max(logging.WARNING, logging.getLogger().level))
        threading.Thread(target=self.elect, name="kvcert elector", daemon=True).start()
        threading.Thread(target=self._watch, name="kvcert lease watchdog", daemon=True).start()

    def elect(self) -> None:
        """The client's `LeaderElection.run()`, kept going when the API server cannot be
        reached: its lock catches only ApiException, so a refused connection ends `run()` with
        an exception. A standby tries again after a retry period; a leader goes on renewing
        (the watchdog still ends it after the renew deadline)."""
        phase: Callable[[], object] = self.election.run
        while True:
            try:
                phase()
            except Exception as error:
                log.warning(
                    "leader election: %s could not reach the lease %s (%s); retrying in %d s",
                    self.identity,
                    self.where,
                    type(error).__name__,
                    self.settings.retry_period,
                )
                time.sleep(self.settings.retry_period)
                phase = self._renew if self.leading.is_set() else self.election.run
                continue
            return  # run() returns only once leadership is lost, after `lost` (which exits)

    def _renew(self) -> None:
        self.election.renew_loop()  # type: ignore[no-untyped-call]
        self.lost("the elector could not renew it")

    def started(self) -> None:
        log.info(
            "leader election: %s acquired the lease %s; reconciling", self.identity, self.where
        )
        _call_hooks(True)
        self.leading.set()

    def lost(self, why: str) -> None:
        """Leadership is gone: say so once and end the process at once, before anyone else may
        acquire the Lease (no clean-up: a reconcile in flight must not write again)."""
        if not self._exiting.acquire(blocking=False):
            return
        log.critical(
            "leader election: %s lost the lease %s (%s); exiting with code %d to restart as a "
            "standby",
            self.identity,
            self.where,
            why,
            LOST_EXIT_CODE,
        )
        _call_hooks(False)
        for handler in logging.getLogger().handlers:
            handler.flush()
        self._exit(LOST_EXIT_CODE)

    def release(self) -> bool:
        """Let the Lease go at a clean exit, so that a standby leads at its next attempt
        (client-go's `ReleaseOnCancel`). Called at interpreter exit, once kopf has returned:
        nothing this process guarded with the Lease runs any more (the caller's promise, as
        client-go's). Stops the renewals (the lock refuses later writes), reads the Lease and,
        if this process still holds it, writes holderIdentity "" with leaseDurationSeconds 1
        and renewTime now; a 409 Conflict reads again (RELEASE_ATTEMPTS in all). Never raises:
        a failed release is logged, and the standby waits the lease duration as after a crash.
        Returns whether the Lease was released; False when not leading, already lost, or not
        ours any more."""
        if not self.leading.is_set() or not self._exiting.acquire(blocking=False):
            return False  # a standby holds nothing; a lost Lease is being exited on
        if not self.lock.close(self.settings.renew_deadline):
            log.warning(
                "leader election: %s did not release the lease %s (a renewal is still in "
                "flight); a standby takes over after the lease duration",
                self.identity,
                self.where,
            )
            return False
        try:
            released = self._release()
        except Exception as error:  # an exit must not fail on the API server's account
            log.warning(
                "leader election: %s could not release the lease %s (%s); a standby takes over "
                "after the lease duration",
                self.identity,
                self.where,
                type(error).__name__,
            )
            return False
        if released:
            log.info(
                "leader election: %s released the lease %s; a standby may take over at once",
                self.identity,
                self.where,
            )
        return released

    def _release(self) -> bool:
        name, namespace = self.settings.lease_name, self.settings.namespace
        for _ in range(RELEASE_ATTEMPTS):
            lease = self.api.read_namespaced_lease(name, namespace)
            spec = lease.spec
            if spec is None or spec.holder_identity != self.identity:
                log.info(
                    "leader election: %s no longer holds the lease %s; nothing to release",
                    self.identity,
                    self.where,
                )
                return False
            now = datetime.now(UTC)
            spec.holder_identity = ""
            spec.lease_duration_seconds = RELEASED_LEASE_DURATION
            spec.acquire_time = now
            spec.renew_time = now
            try:
                self.api.replace_namespaced_lease(name, namespace, lease)
            except client.ApiException as error:
                if error.status == 409:
                    continue  # written in between: read again
                raise
            return True
        return False

    def overdue(self) -> bool:
        """Whether the leader has not renewed for `renew_deadline` seconds since the start of
        its last successful Lease write."""
        last = self.lock.last_write
        deadline = self.settings.renew_deadline
        return self.leading.is_set() and last is not None and self._clock() - last > deadline

    def _watch(self) -> None:
        while True:
            if self.overdue():
                self.lost(f"not renewed for {self.settings.renew_deadline} s")
                return
            time.sleep(WATCHDOG_PERIOD)


def _call_hooks(leading: bool) -> None:
    for hook in list(LEADERSHIP_HOOKS):
        try:
            hook(leading)
        except Exception:  # a metrics hook must never stop the election
            log.exception("leader election: a leadership hook failed")


def _terminate(signum: int, frame: FrameType | None) -> None:
    """SIGTERM while standing by (or starting to lead, before kopf installs its own handler):
    a clean exit, which runs the release registered at exit."""
    raise SystemExit(0)


def await_leadership(
    settings: LeaderElectionSettings,
    api: client.ApiClient,
    endpoints: Sequence[str],
    metrics: str | None = None,
) -> Elector:
    """Stand by (answering `endpoints` with 200, "standby") until this process holds the
    Lease; return the elector, which keeps renewing (or exits the process) in its threads.

    Registers `Elector.release` to run at interpreter exit, and (from the main thread) makes
    SIGTERM a clean exit (SystemExit) until kopf installs its own handler."""
    elector = Elector(settings, api, identity())
    atexit.register(elector.release)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    probes = StandbyProbes(endpoints, elector, metrics)
    probes.start()
    log.info(
        "leader election: %s standing by for the lease %s (duration %d s, renew deadline %d s, "
        "retry period %d s)",
        elector.identity,
        elector.where,
        settings.lease_duration,
        settings.renew_deadline,
        settings.retry_period,
    )
    elector.start()
    try:
        while not elector.leading.wait(1.0):
            pass
    finally:
        probes.close()
    return elector
