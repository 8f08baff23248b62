"""What the end-to-end cluster's components read: PKI, kubeconfigs, configs, command lines.

The PKI is like `kvcert.devcluster.pki`, plus what a kubelet needs: the API server's serving
certificate also names the `kubernetes` Service (10.96.0.1) and the node's IP, the API server has
a client certificate for the kubelet, and there are two tokens: an admin in system:masters and
the kubelet's system:node:node0 in system:nodes. The settings are the pod-e2e prototype's; each
one this machine kind needs says why.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from kvcert.devcluster import pki
from tests.e2e.host import CNI_DIR

NODE_NAME = "node0"
SERVICE_RANGE = "10.96.0.0/24"
POD_SUBNET = "10.244.0.0/24"
_VALIDITY = datetime.timedelta(days=2)
SERVICE_IP = "10.96.0.1"
_SERVICE_NAMES = (
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)


@dataclass(frozen=True)
class NodePki:
    ca_cert: Path
    apiserver_cert: Path
    apiserver_key: Path
    kubelet_client_cert: Path
    kubelet_client_key: Path
    service_account_key: Path
    tokens: Path
    admin_token: str
    kubelet_token: str


def generate(directory: Path, node_ip: str) -> NodePki:
    """Write the CA, serving and kubelet-client certificates, SA key and tokens.csv."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = pki.LocalCA.make("kvcert e2e CA", _VALIDITY)
    (directory / "ca.crt").write_bytes(ca.pem)

    def issue(
        stem: str, subject: x509.Name, usage: x509.ObjectIdentifier, sans: list[x509.GeneralName]
    ) -> None:
        key, chain = ca.issue(subject, usage, sans)
        (directory / f"{stem}.crt").write_bytes(chain)
        pki.write_private(directory / f"{stem}.key", pki.pem_key(key))

    ips = [SERVICE_IP, node_ip, "127.0.0.1"]
    issue(
        "apiserver",
        pki.name("kube-apiserver"),
        ExtendedKeyUsageOID.SERVER_AUTH,
        [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
        + [x509.DNSName(name) for name in _SERVICE_NAMES],
    )
    issue(
        "apiserver-kubelet-client",
        pki.name("apiserver-kubelet-client", "system:masters"),
        ExtendedKeyUsageOID.CLIENT_AUTH,
        [],
    )
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pki.write_private(directory / "sa.key", pki.pem_key(sa_key))
    admin, kubelet = secrets.token_hex(16), secrets.token_hex(16)
    tokens = directory / "tokens.csv"
    tokens.write_text(
        f'{admin},admin,admin,"system:masters"\n{kubelet},system:node:node0,node0,"system:nodes"\n'
    )
    tokens.chmod(0o600)
    return NodePki(
        ca_cert=directory / "ca.crt",
        apiserver_cert=directory / "apiserver.crt",
        apiserver_key=directory / "apiserver.key",
        kubelet_client_cert=directory / "apiserver-kubelet-client.crt",
        kubelet_client_key=directory / "apiserver-kubelet-client.key",
        service_account_key=directory / "sa.key",
        tokens=tokens,
        admin_token=admin,
        kubelet_token=kubelet,
    )


def write_kubeconfig(path: Path, server: str, ca_cert: Path, token: str) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "e2e", "cluster": {"server": server, "certificate-authority": str(ca_cert)}}
        ],
        "users": [{"name": "user", "user": {"token": token}}],
        "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": "user"}}],
        "current-context": "e2e",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


# --- components --------------------------------------------------------------------------


def containerd_config(workdir: Path, socket: Path, pause_image: str) -> Path:
    """containerd with all state under workdir and a bridge CNI network of its own."""
    cni = workdir / "cni"
    cni.mkdir(parents=True, exist_ok=True)
    bridge = {
        "type": "bridge",
        "bridge": "cni0",
        "isGateway": True,
        "ipam": {
            "type": "host-local",
            "dataDir": str(workdir / "ipam"),
            "ranges": [[{"subnet": POD_SUBNET}]],
            "routes": [{"dst": "0.0.0.0/0"}],
        },
    }
    portmap = {"type": "portmap", "capabilities": {"portMappings": True}}
    conflist = {"cniVersion": "0.4.0", "name": "podnet", "plugins": [bridge, portmap]}
    (cni / "10-bridge.conflist").write_text(json.dumps(conflist))
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    path = workdir / "containerd.toml"
    path.write_text(
        f"""version = 2
root = "{workdir}/containerd/root"
state = "{workdir}/containerd/state"
[grpc]
  address = "{socket}"
[{cri}]
  sandbox_image = "{pause_image}"
  # sandbox network namespaces under the state dir, not /var/run/netns
  netns_mounts_under_state_dir = true
  # this machine kind withholds CAP_SYS_RESOURCE
  restrict_oom_score_adj = true
[{cri}.cni]
  bin_dir = "{CNI_DIR}"
  conf_dir = "{cni}"
"""
    )
    return path


def etcd_args(etcd: Path, workdir: Path) -> list[str]:
    client, peer = "http://127.0.0.1:2379", "http://127.0.0.1:2380"
    return [
        str(etcd),
        "--name=default",
        f"--data-dir={workdir / 'etcd'}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=default={peer}",
        "--unsafe-no-fsync",
        "--log-level=warn",
    ]


def apiserver_args(
    apiserver: Path, workdir: Path, pki: NodePki, node_ip: str, audit_log: Path
) -> list[str]:
    """ServiceAccount admission on, Node+RBAC, NodeRestriction, and an audit log (Metadata)."""
    policy = workdir / "audit-policy.yaml"
    policy.write_text(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\n"
        "omitStages: [RequestReceived]\nrules:\n  - level: Metadata\n"
    )
    return [
        str(apiserver),
        "--etcd-servers=http://127.0.0.1:2379",
        "--secure-port=6443",
        f"--advertise-address={node_ip}",
        f"--tls-cert-file={pki.apiserver_cert}",
        f"--tls-private-key-file={pki.apiserver_key}",
        f"--client-ca-file={pki.ca_cert}",
        f"--token-auth-file={pki.tokens}",
        f"--service-account-key-file={pki.service_account_key}",
        f"--service-account-signing-key-file={pki.service_account_key}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        "--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NodeRestriction",
        "--allow-privileged=true",
        f"--service-cluster-ip-range={SERVICE_RANGE}",
        f"--kubelet-client-certificate={pki.kubelet_client_cert}",
        f"--kubelet-client-key={pki.kubelet_client_key}",
        "--kubelet-preferred-address-types=InternalIP",
        f"--audit-policy-file={policy}",
        f"--audit-log-path={audit_log}",
        "--audit-log-format=json",
        f"--cert-dir={workdir / 'apiserver-certs'}",
    ]


def controller_manager_args(binary: Path, kubeconfig: Path, pki: NodePki) -> list[str]:
    """The service account token controller needs the SA key and the root CA."""
    return [
        str(binary),
        *_client_args(kubeconfig),
        f"--root-ca-file={pki.ca_cert}",
        f"--service-account-private-key-file={pki.service_account_key}",
        "--controllers=*,-nodeipam",
    ]


def scheduler_args(binary: Path, kubeconfig: Path) -> list[str]:
    return [str(binary), *_client_args(kubeconfig)]


def proxy_args(binary: Path, kubeconfig: Path) -> list[str]:
    return [
        str(binary),
        f"--kubeconfig={kubeconfig}",
        f"--hostname-override={NODE_NAME}",
        "--proxy-mode=iptables",
        "--conntrack-max-per-core=0",  # leave the host's conntrack table size alone
    ]


def _client_args(kubeconfig: Path) -> list[str]:
    return [
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        "--leader-elect=false",
    ]


def kubelet_args(
    binary: Path,
    workdir: Path,
    socket: Path,
    pki: NodePki,
    kubeconfig: Path,
    node_ip: str,
    cgroup_root: str,
) -> list[str]:
    config = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": node_ip,
        "readOnlyPort": 0,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(pki.ca_cert)},
        },
        "authorization": {"mode": "Webhook"},
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": cgroup_root,  # the cluster's own (see tests/e2e/host.py)
        "failCgroupV1": False,  # cgroup v1 (hybrid) on this machine kind
        "failSwapOn": False,
        "maxOpenFiles": 20000,  # the hard limit here; raising it needs CAP_SYS_RESOURCE
        "containerRuntimeEndpoint": f"unix://{socket}",
        "podLogsDirectory": str(workdir / "pod-logs"),
        "volumePluginDir": str(workdir / "volume-plugins"),
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
        },
        "imageGCHighThresholdPercent": 100,  # never collect the imported images
        "imageGCLowThresholdPercent": 99,
    }
    path = workdir / "kubelet.json"
    path.write_text(json.dumps(config, indent=2))
    return [
        str(binary),
        f"--config={path}",
        f"--kubeconfig={kubeconfig}",
        f"--root-dir={workdir / 'kubelet'}",
        f"--hostname-override={NODE_NAME}",
        f"--node-ip={node_ip}",
    ]
