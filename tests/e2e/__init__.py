"""End-to-end tests on a real kubelet + containerd (NodeCluster, tests/e2e/cluster.py)."""
