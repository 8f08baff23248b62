#!/usr/bin/env bash
# kvcert on a kind cluster, for users with Docker (kind, docker, helm and kubectl on PATH).
# It cannot run on kvcert's build machines: they have no Docker engine and pull no images, so
# the same path is proven there by tests/e2e/ (buildah + containerd + a real kubelet).
#
# usage: hack/kind.sh [cluster-name]      (default: kvcert)
set -euo pipefail

CLUSTER="${1:-kvcert}"
IMAGE="localhost/kvcert:dev"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

for tool in kind docker helm kubectl; do
  command -v "$tool" >/dev/null || { echo "hack/kind.sh: $tool is required" >&2; exit 1; }
done

kind get clusters | grep -qx "$CLUSTER" || kind create cluster --name "$CLUSTER"
docker build -t "$IMAGE" .
kind load docker-image "$IMAGE" --name "$CLUSTER"

kubectl create namespace kvcert-system --dry-run=client -o yaml | kubectl apply -f -
kubectl label namespace kvcert-system pod-security.kubernetes.io/enforce=restricted --overwrite
helm upgrade --install kvcert helm/kvcert-operator -n kvcert-system \
  --set image.repository="${IMAGE%:*}" --set image.tag="${IMAGE##*:}" \
  --set image.pullPolicy=Never --wait --timeout 180s

# The local vault from the same image, in the cluster, and a KeyVault pointing at it.
kubectl create namespace demo --dry-run=client -o yaml | kubectl apply -f -
TOKEN="$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
kubectl -n demo create secret generic vault-token --from-literal=token="$TOKEN" \
  --dry-run=client -o yaml | kubectl apply -f -
kubectl -n demo apply -f - <<YAML
apiVersion: v1
kind: Pod
metadata: {name: vault, labels: {app: vault}}
spec:
  securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: vault
    image: $IMAGE
    imagePullPolicy: Never
    args: [vault, serve, --host, 0.0.0.0, --port, "8443", --data-dir, /tmp/vault,
           --token-file, /var/run/vault-token/token, --hostname, vault.demo.svc, --ca-delay, "20"]
    securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true,
                      capabilities: {drop: [ALL]}}
    volumeMounts: [{name: tmp, mountPath: /tmp}, {name: token, mountPath: /var/run/vault-token}]
  volumes: [{name: tmp, emptyDir: {}}, {name: token, secret: {secretName: vault-token}}]
---
apiVersion: v1
kind: Service
metadata: {name: vault}
spec: {selector: {app: vault}, ports: [{port: 8443, targetPort: 8443}]}
YAML
kubectl -n demo wait --for=condition=Ready pod/vault --timeout=120s
CA="$(kubectl -n demo exec vault -- cat /tmp/vault/tls/ca.crt | sed 's/^/    /')"
kubectl -n demo apply -f - <<YAML
apiVersion: kvcert.io/v1alpha1
kind: KeyVault
metadata: {name: local}
spec:
  url: https://vault.demo.svc:8443
  auth: {token: {secretRef: {name: vault-token, key: token}}}
  caBundle: |
$CA
YAML
kubectl -n demo apply -f examples/certificate-self.yaml
kubectl -n demo wait --for=condition=Ready certificates.kvcert.io --all --timeout=120s
kubectl -n demo get kvcerts
