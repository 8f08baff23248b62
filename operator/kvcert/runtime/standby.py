"""A standby's probes: HTTP 200 on liveness and readiness (and `kvcert_leader 0` on the metrics
endpoint) while the process waits for the Lease (kvcert.runtime.leader, issue #16)."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from kvcert.runtime.readiness import parse_endpoint


class Candidate(Protocol):
    """What the probes say of the election (kvcert.runtime.leader.Elector)."""

    @property
    def identity(self) -> str: ...

    def holder(self) -> str | None: ...


class StandbyProbes:
    """HTTP 200 on the liveness and readiness endpoints while standing by (a thread per port).

    The body says `"role": "standby"`, this identity and the current holder. Closed (ports
    released) before kopf and the readiness check bind the same endpoints as the leader."""

    def __init__(
        self, endpoints: Sequence[str], elector: Candidate, metrics: str | None = None
    ) -> None:
        self.elector = elector
        by_port: dict[tuple[str, int], set[str]] = {}
        for endpoint in endpoints:
            host, port, path = parse_endpoint(endpoint)
            by_port.setdefault((host, port), set()).add(path)
        self.metrics_path: tuple[tuple[str, int], str] | None = None
        if metrics is not None:
            # A standby is a scrape target too: `kvcert_leader 0`, so that the ServiceMonitor
            # sees no down target and the no-leader alert counts the replicas (#16).
            host, port, path = parse_endpoint(metrics)
            by_port.setdefault((host, port), set())
            self.metrics_path = ((host, port), path)
        self.by_port = by_port
        self.servers: list[ThreadingHTTPServer] = []

    def body(self) -> dict[str, Any]:
        return {
            "live": True,
            "ready": True,
            "role": "standby",
            "identity": self.elector.identity,
            "leader": self.elector.holder(),
        }

    def start(self) -> None:
        """Bind every endpoint's port; raises OSError when one cannot be bound."""
        for (host, port), paths in self.by_port.items():
            metrics = None
            if self.metrics_path is not None and self.metrics_path[0] == (host, port):
                metrics = self.metrics_path[1]
            handler = _handler(self, frozenset(paths), metrics)
            server = ThreadingHTTPServer((host, port), handler)
            server.daemon_threads = True
            self.servers.append(server)
            threading.Thread(
                target=server.serve_forever, name=f"kvcert standby probes :{port}", daemon=True
            ).start()

    def close(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()
        self.servers.clear()


STANDBY_METRICS = (
    b"# HELP kvcert_leader 1 when this process holds the Lease and reconciles, else 0.\n"
    b"# TYPE kvcert_leader gauge\nkvcert_leader 0.0\n"
)


def _handler(
    probes: StandbyProbes, paths: frozenset[str], metrics: str | None = None
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if metrics is not None and path == metrics:
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(STANDBY_METRICS)))
                self.end_headers()
                self.wfile.write(STANDBY_METRICS)
                return
            known = path in paths
            data = json.dumps(probes.body() if known else {"error": "not found"}).encode()
            self.send_response(200 if known else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            """Probes every few seconds: no access log."""

    return Handler
