"""The local node's fixed names, addresses and ports, the configuration files of its
servers, and its PKI (used by dev/node.py)."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import env  # dev/env.py, beside this script
import node_build as build
from env import Layout, run, write_file

NODE_IP = "10.199.0.1"
NODE_NAME = "datarch-node"
POD_CIDR = "10.244.0.0/24"
SERVICE_CIDR = "10.96.0.0/24"
KUBERNETES_SERVICE_IP = "10.96.0.1"
BRIDGE = "datarch0"
STORES_NAMESPACE = "dev-stores"
HOST_LOCK = Path("/run/datarch-node.lock")
# Away from dev/env.py's control plane (52379, 56443) and from each product's usual port.
PORTS = {
    "etcd": 40379,
    "etcd-peer": 40380,
    "kube-apiserver": 40443,
    "kubelet": 40250,
    "kubelet-healthz": 40248,
    "kube-scheduler": 40259,
    "kube-controller-manager": 40257,
    "kube-proxy-metrics": 40249,
    "kube-proxy-healthz": 40256,
}
# The dev stores a pod may reach, by the dev/env.py port names.
STORES = ("postgres", "mongo", "nats", "s3", "redis")
# Set while the node runs (the kubelet, the bridge plugin): saved by `up`, restored by `down`.
# --------------------------------------------------------------------------- configuration


def containerd_config(layout: Layout) -> str:
    state = layout.env_dir / "containerd"
    return f"""\
# Written by dev/node.py.
version = 2
root = "{state / "root"}"
state = "{state / "state"}"
[grpc]
  address = "{state / "containerd.sock"}"
[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "{state / "opt"}"
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "{build.PAUSE_IMAGE}"
    stream_server_address = "127.0.0.1"
    disable_apparmor = true
    # The kubelet asks for a negative oom_score_adj for sandboxes; without
    # CAP_SYS_RESOURCE (a microVM's bounding set may lack it) runc then fails with
    # "can't get final child's PID from pipe: EOF". Never below containerd's own.
    restrict_oom_score_adj = true
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "{build.CNI_BIN}"
      conf_dir = "{layout.env_dir / "cni"}"
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          BinaryName = "{build.RUNC}"
          SystemdCgroup = false
"""


def cni_config(layout: Layout) -> str:
    bridge = {
        "type": "bridge",
        "bridge": BRIDGE,
        "isGateway": True,
        "ipMasq": True,
        "hairpinMode": True,
        "ipam": {
            "type": "host-local",
            "dataDir": str(layout.env_dir / "cni-ipam"),
            "ranges": [[{"subnet": POD_CIDR}]],
            "routes": [{"dst": "0.0.0.0/0"}],
        },
    }
    plugins = [bridge, {"type": "portmap", "capabilities": {"portMappings": True}}]
    return json.dumps({"cniVersion": "1.0.0", "name": "datarch", "plugins": plugins}, indent=2)


def kubelet_config(layout: Layout) -> str:
    pki = layout.env_dir / "pki"
    socket = layout.env_dir / "containerd" / "containerd.sock"
    return f"""\
# Written by dev/node.py.
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: {NODE_IP}
port: {PORTS["kubelet"]}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: {PORTS["kubelet-healthz"]}
authentication:
  anonymous: {{enabled: false}}
  webhook: {{enabled: true}}
  x509: {{clientCAFile: {pki / "ca.crt"}}}
authorization: {{mode: Webhook}}
containerRuntimeEndpoint: unix://{socket}
# No systemd here; and hosts still on cgroup v1 (a hybrid hierarchy) need
# failCgroupV1 off, which the kubelet refuses by default since 1.35.
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
podLogsDir: {layout.env_dir / "pod-logs"}
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
evictionHard: {{memory.available: 100Mi, nodefs.available: 5%, imagefs.available: 5%}}
imageGCHighThresholdPercent: 95
imageGCLowThresholdPercent: 90
"""


def kube_proxy_config(layout: Layout) -> str:
    return f"""\
# Written by dev/node.py. conntrack settings left as the host has them.
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {{kubeconfig: {layout.env_dir / "proxy.kubeconfig"}}}
mode: iptables
clusterCIDR: {POD_CIDR}
hostnameOverride: {NODE_NAME}
metricsBindAddress: 127.0.0.1:{PORTS["kube-proxy-metrics"]}
healthzBindAddress: 127.0.0.1:{PORTS["kube-proxy-healthz"]}
nodePortAddresses: ["{NODE_IP}/32"]
conntrack: {{maxPerCore: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}}
"""


# Client certificates: file name, subject (its RBAC identity).
IDENTITIES = {
    "admin": "/O=system:masters/CN=datarch-node-admin",
    "controller-manager": "/CN=system:kube-controller-manager",
    "scheduler": "/CN=system:kube-scheduler",
    "proxy": "/CN=system:kube-proxy",
    "node": f"/O=system:nodes/CN=system:node:{NODE_NAME}",
    "apiserver-kubelet": "/O=system:masters/CN=kube-apiserver-kubelet-client",
}


def ensure_pki(layout: Layout) -> None:
    """One CA; the API server's serving certificate; a client certificate per component
    with its RBAC identity; the ServiceAccount key pair; a kubeconfig per client."""
    pki = layout.env_dir / "pki"
    files = ["ca.crt", "ca.key", "serving.crt", "sa.key", "sa.pub"]
    files += [f"{who}.crt" for who in IDENTITIES]
    if not all((pki / f).exists() for f in files):
        make_pki(layout, pki)
    ca = base64.b64encode((pki / "ca.crt").read_bytes()).decode()
    for who in ("admin", "controller-manager", "scheduler", "proxy", "node"):
        cert = base64.b64encode((pki / f"{who}.crt").read_bytes()).decode()
        key = base64.b64encode((pki / f"{who}.key").read_bytes()).decode()
        write_file(
            layout.env_dir / f"{who}.kubeconfig",
            f"""\
# Written by dev/node.py: {IDENTITIES[who]} on the local node's API server.
apiVersion: v1
kind: Config
clusters:
- name: datarch-node
  cluster: {{server: "https://{NODE_IP}:{PORTS["kube-apiserver"]}", certificate-authority-data: {ca}}}
users:
- name: {who}
  user: {{client-certificate-data: {cert}, client-key-data: {key}}}
contexts:
- name: datarch-node
  context: {{cluster: datarch-node, user: {who}}}
current-context: datarch-node
""",
            0o600,
        )


def make_pki(layout: Layout, pki: Path) -> None:
    # All or nothing: a partial set (an interrupted run) cannot be trusted to match.
    shutil.rmtree(pki, ignore_errors=True)
    pki.mkdir(parents=True)
    log = layout.log("node-pki")

    def openssl(*arguments: str) -> None:
        run(["openssl", *arguments], cwd=pki, log=log, what="openssl")

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
            "-subj", "/CN=datarch-node-ca", "-keyout", "ca.key", "-out", "ca.crt")  # fmt: skip
    service_ip = KUBERNETES_SERVICE_IP
    names = (
        "kubernetes,kubernetes.default,kubernetes.default.svc,kubernetes.default.svc.cluster.local"
    )
    san = f"IP:127.0.0.1,IP:{NODE_IP},IP:{service_ip},DNS:localhost," + ",".join(
        f"DNS:{n}" for n in names.split(",")
    )
    leaves = {"serving": ("/CN=kube-apiserver", "serverAuth", f"subjectAltName={san}\n")}
    leaves.update({who: (subject, "clientAuth", "") for who, subject in IDENTITIES.items()})
    for name, (subject, usage, extra) in leaves.items():
        write_file(
            pki / f"{name}.ext",
            "basicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\n"
            f"extendedKeyUsage={usage}\n{extra}",
        )
        openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", subject,
                "-keyout", f"{name}.key", "-out", f"{name}.csr")  # fmt: skip
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "3650", "-extfile", f"{name}.ext",
                "-out", f"{name}.crt")  # fmt: skip
    openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "sa.key")
    openssl("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub")
    for key in pki.glob("*.key"):
        key.chmod(0o600)


def stores_manifest() -> str:
    """A Service per dev store, its EndpointSlice on the node's address (the forwarders)."""
    documents = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": STORES_NAMESPACE}}]
    for store in STORES:
        port = env.port(store)
        ports = [{"name": store, "port": port, "protocol": "TCP"}]
        documents.append({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": store, "namespace": STORES_NAMESPACE},
            "spec": {"ports": ports},
        })  # fmt: skip
        documents.append({
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": store,
                "namespace": STORES_NAMESPACE,
                "labels": {
                    "kubernetes.io/service-name": store,
                    "endpointslice.kubernetes.io/managed-by": "dev-node.datarch.dev",
                },
            },
            "addressType": "IPv4",
            "ports": ports,
            "endpoints": [{"addresses": [NODE_IP], "conditions": {"ready": True}}],
        })  # fmt: skip
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": documents})
