#!/usr/bin/env bash
# Builds the images the end-to-end test needs, without Docker and without pulling any image:
#   localhost/kvcert-base:<key>  Debian bookworm from Debian packages (mmdebstrap), in buildah storage
#   localhost/kvcert:<key>       the operator image (Dockerfile, BASE = the image above)
#   localhost/pause:3.10         the pod sandbox image, pause.c from the k8s.io/kubernetes module
# The last two are exported as oci-archive files under $KVCERT_CACHE_DIR/images/<name>/<key>.tar.
# Each key is a short sha256 of what goes into the image, so a warm run builds nothing.
#
# usage: hack/images.sh    prints one JSON object on stdout; logs go to stderr
set -euo pipefail
shopt -s inherit_errexit # a failure inside $(...) stops the script too

K8S_VERSION="${KVCERT_K8S_VERSION:-v1.34.4}"
CACHE="${KVCERT_CACHE_DIR:-$HOME/.cache/kvcert}/images"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SUITE=bookworm
BASE_ARGS=(--variant=essential --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
  '--include=python3,python3-venv,ca-certificates' --dpkgopt='path-exclude=/usr/share/doc/*'
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*')
PAUSE_IMAGE=localhost/pause:3.10
PAUSE_CFLAGS=(-Os -static -s -DVERSION=v3.10)

exec 3>&1 1>&2 # stdout is for the JSON only
log() { echo "images: $*"; }
die() { log "$*"; exit 1; }
sha() { sha256sum | cut -c1-12; }
has_image() { buildah inspect --type image "$1" >/dev/null 2>&1; }

WORK=""
trap '[ -z "$WORK" ] || rm -rf "$WORK"' EXIT
mkdir -p "$CACHE"
CACHE="$(cd "$CACHE" && pwd)"
WORK="$(mktemp -d "$CACHE/tmp.XXXXXX")"
exec 9>"$CACHE/.lock"
flock 9 # one build at a time per cache

# Tools: Debian packages, installed when missing and running as root (CI).
export PATH="$PATH:/usr/sbin:/sbin"
missing=()
for tool in buildah mmdebstrap runc gcc; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || die "missing ${missing[*]}: apt-get install -y ${missing[*]}"
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

# export IMAGE NAME KEY: IMAGE as $CACHE/NAME/KEY.tar (written whole, then renamed); drops the
# archives of older keys.
export_archive() {
  local dir="$CACHE/$2"
  mkdir -p "$dir"
  buildah push -q "$1" "oci-archive:$WORK/$2.tar:$1"
  mv "$WORK/$2.tar" "$dir/$3.tar"
  find "$dir" -maxdepth 1 -name '*.tar' ! -name "$3.tar" -delete
}

# 1. base image
BASE_KEY="$(printf '%s\n' mmdebstrap "${BASE_ARGS[@]}" "$SUITE" | sha)"
BASE_IMAGE="localhost/kvcert-base:$BASE_KEY"

build_base() {
  has_image "$BASE_IMAGE" && return
  local t=$SECONDS ctr
  mmdebstrap --quiet "${BASE_ARGS[@]}" "$SUITE" "$WORK/rootfs.tar" >"$WORK/mmdebstrap.log" 2>&1 ||
    { cat "$WORK/mmdebstrap.log"; die "mmdebstrap failed"; }
  ctr="$(buildah from scratch)"
  buildah add -q "$ctr" "$WORK/rootfs.tar" / >/dev/null
  buildah commit -q "$ctr" "$BASE_IMAGE" >/dev/null
  buildah rm "$ctr" >/dev/null
  rm -f "$WORK/rootfs.tar"
  log "built $BASE_IMAGE in $((SECONDS - t)) s"
}

# 2. operator image: keyed by the build context's files (tracked or new, under operator/) and
# the base key.
cd "$REPO_ROOT"
KEY="$({
  echo "base $BASE_KEY"
  sha256sum Dockerfile .dockerignore pyproject.toml README.md
  git ls-files -z --cached --others --exclude-standard operator/ | sort -zu |
    while IFS= read -r -d '' f; do [ ! -f "$f" ] || sha256sum "$f"; done
} | sha)"
IMAGE="localhost/kvcert:$KEY"
ARCHIVE="$CACHE/kvcert/$KEY.tar"

if [ -f "$ARCHIVE" ]; then
  log "$IMAGE: cached"
else
  build_base
  t=$SECONDS
  buildah build -q --layers --network=host \
    -v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro \
    --build-arg BASE="$BASE_IMAGE" -t "$IMAGE" . >/dev/null
  export_archive "$IMAGE" kvcert "$KEY"
  log "built and exported $IMAGE in $((SECONDS - t)) s"
  # untag older operator images (the dependency layers stay in the build cache)
  buildah images --noheading --format '{{.Name}}:{{.Tag}}' |
    { grep -x 'localhost/kvcert:[0-9a-f]*' | grep -vxF "$IMAGE" || true; } | xargs -r buildah rmi >/dev/null
fi

# 3. pause image: a static pause.c, as the kubelet's sandbox image
GOMODCACHE="${GOMODCACHE:-}"
if [ -z "$GOMODCACHE" ]; then
  for go in go "$REPO_ROOT/.venv/bin/go" /usr/local/go/bin/go; do
    if command -v "$go" >/dev/null; then GOMODCACHE="$("$go" env GOMODCACHE)"; break; fi
  done
fi
PAUSE_C="${GOMODCACHE:-$HOME/go/pkg/mod}/k8s.io/kubernetes@$K8S_VERSION/build/pause/linux/pause.c"
[ -f "$PAUSE_C" ] ||
  die "$PAUSE_C is missing: run hack/control-plane.sh first (it downloads k8s.io/kubernetes@$K8S_VERSION)"
PAUSE_KEY="$({ echo "gcc ${PAUSE_CFLAGS[*]}; USER 65535:65535"; cat "$PAUSE_C"; } | sha)"
PAUSE_ARCHIVE="$CACHE/pause/$PAUSE_KEY.tar"

if [ -f "$PAUSE_ARCHIVE" ]; then
  log "$PAUSE_IMAGE: cached"
else
  t=$SECONDS
  gcc "${PAUSE_CFLAGS[@]}" -o "$WORK/pause" "$PAUSE_C"
  ctr="$(buildah from scratch)"
  buildah copy -q "$ctr" "$WORK/pause" /pause >/dev/null
  buildah config --user 65535:65535 --entrypoint '["/pause"]' "$ctr"
  buildah commit -q "$ctr" "$PAUSE_IMAGE" >/dev/null
  buildah rm "$ctr" >/dev/null
  export_archive "$PAUSE_IMAGE" pause "$PAUSE_KEY"
  log "built and exported $PAUSE_IMAGE in $((SECONDS - t)) s"
fi

printf '{"image": "%s", "archive": "%s", "pause_image": "%s", "pause_archive": "%s", "base_image": "%s"}\n' \
  "$IMAGE" "$ARCHIVE" "$PAUSE_IMAGE" "$PAUSE_ARCHIVE" "$BASE_IMAGE" >&3
