#!/usr/bin/env bash
# Installs the Debian packages the end-to-end tests (tests/e2e/) need, when some are missing:
# images (buildah, mmdebstrap, gcc), the node (containerd, runc, CNI plugins, iptables) and the
# harness itself (ip and nsenter/umount from iproute2 and util-linux).
# Prints nothing when all are present; runs `apt-get update` once, only when something is missing.
#
# usage: hack/e2e-deps.sh
set -euo pipefail

PACKAGES=(buildah containerd runc containernetworking-plugins iptables mmdebstrap gcc iproute2
  util-linux)

missing=()
for package in "${PACKAGES[@]}"; do
  status="$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)"
  [ "$status" = "install ok installed" ] || missing+=("$package")
done
[ ${#missing[@]} -gt 0 ] || exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "e2e-deps: missing ${missing[*]}; as root: apt-get install -y ${missing[*]}" >&2
  exit 1
fi
command -v apt-get >/dev/null || {
  echo "e2e-deps: missing ${missing[*]} and no apt-get (a Debian or Ubuntu machine is needed)" >&2
  exit 1
}
echo "e2e-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
