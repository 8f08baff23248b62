"""A real local Kubernetes control plane (etcd + kube-apiserver) for tests and the demo.

These machines have no container engine, so kind is not an option; the binaries are built
from pinned Go modules by hack/control-plane.sh and started here on loopback ports.
"""
