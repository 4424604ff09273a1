#!/usr/bin/env python3
"""datarch's real single-node Kubernetes cluster: `up`, `status`, `down` and `vars`.

Beside the bare control plane of dev/env.py (no pods ever run there), this runs a
whole cluster on this machine, so that the Helm chart and the image are tested as a
user runs them: containerd and runc (Debian), etcd and kube-apiserver (dev/env.py's
builds) on ports of their own, kube-controller-manager, kube-scheduler, kubelet and
kube-proxy (dev/node_build.py), the Debian bridge CNI plugin, and the project's image
built from the Dockerfile and imported into containerd.

The node's address is 10.199.0.1, added to `lo`: the API server cannot advertise a
loopback address, and pods reach the host through the bridge, not on 127.0.0.1. The
dev stores listen on 127.0.0.1 only; `socat` forwarders give each an address on the
node, and the `dev-stores` namespace holds a Service per store whose EndpointSlice
points there, so pods reach them as they reach any external database.

Host-wide changes (all undone by `down`): the `lo` address, the `datarch0` bridge,
iptables KUBE-* and CNI-* chains, sysctls the kubelet and the bridge plugin set,
`kubepods` cgroups, a few directories the tools hard-code. Their names are per host:
a host lock (/run/datarch-node.lock) lets one node run at a time.

Needs root. Standard library only, like dev/env.py, whose machinery (builds, pid
files, logs, health checks) it reuses.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import ssl
import subprocess
import sys
import time
from pathlib import Path

import env  # dev/env.py, beside this script
import node_build as build
import node_config as config
import node_host as host
from env import EnvError, Layout, Server, http_get, line, run, spawn, write_file
from node_config import NODE_IP, NODE_NAME, PORTS, STORES


def node_layout() -> Layout:
    """dev/env.py's cache (binaries, images), and a state directory of the node's own."""
    shared = Layout.from_environ()
    directory = os.environ.get("DATARCH_NODE_DIR") or "/var/tmp/datarch-node"
    return Layout(shared.cache, Path(directory).absolute())


# --------------------------------------------------------------------------- the servers


class NodeServer(Server):
    """A server of the node; its address is 127.0.0.1 or the node's, on PORTS."""

    node_address = False

    @property
    def address(self) -> str:
        return f"{NODE_IP if self.node_address else '127.0.0.1'}:{PORTS[self.name]}"

    @property
    def pki(self) -> Path:
        return self.layout.env_dir / "pki"

    def up(self) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return super().up()

    def kubeconfig(self, who: str) -> Path:
        return self.layout.env_dir / f"{who}.kubeconfig"

    def version(self) -> str:
        return build.kubernetes_version()

    def https_ok(self, url: str) -> bool:
        # The controllers' serving certificates are self-signed; /healthz is public.
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        response = http_get(url, context)
        return response is not None and response[0] == 200


class Containerd(NodeServer):
    name = "containerd"
    command = "containerd"

    @property
    def address(self) -> str:
        return f"unix://{self.socket}"

    @property
    def socket(self) -> Path:
        return self.data_dir / "containerd.sock"

    def start(self) -> subprocess.Popen[bytes]:
        write_file(self.data_dir / "config.toml", config.containerd_config(self.layout))
        write_file(
            self.layout.env_dir / "cni" / "10-datarch.conflist", config.cni_config(self.layout)
        )
        return spawn(
            self.layout,
            self.name,
            ["containerd", "--config", str(self.data_dir / "config.toml")],
            self.data_dir,
        )

    def healthy(self) -> bool:
        try:
            self.ctr("version")
        except EnvError:
            return False
        return True

    def version(self) -> str:
        return self.ctr("version").split("Version:")[-1].split()[0]

    def ctr(self, *argv: str) -> str:
        return run(["ctr", "--address", str(self.socket), "--namespace", "k8s.io", *argv])

    def import_images(self, images: dict[str, tuple[str, Path]]) -> None:
        """Each archive once per content: a rebuilt image replaces the one of that name."""
        for name, (content, archive) in images.items():
            marker = self.data_dir / "imported" / name.replace("/", "_")
            if marker.exists() and marker.read_text() == content:
                continue
            # containerd 1.6's import keeps an existing name where it points: drop it first
            # (running containers keep their snapshots).
            if name in self.ctr("images", "ls", "--quiet").split():
                self.ctr("images", "rm", name)
            self.ctr("images", "import", "--base-name", name.rsplit(":", 1)[0], str(archive))
            write_file(marker, content)


class Etcd(NodeServer):
    name = "etcd"
    command = "etcd"

    def prepare(self) -> bool:
        return env.ETCD.ensure(self.layout)

    def start(self) -> subprocess.Popen[bytes]:
        client = f"http://127.0.0.1:{PORTS['etcd']}"
        peer = f"http://127.0.0.1:{PORTS['etcd-peer']}"
        argv = [
            str(env.ETCD.path(self.layout)),
            "--name=datarch-node",
            f"--data-dir={self.data_dir / 'data'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=datarch-node={peer}",
            "--unsafe-no-fsync",  # throwaway data
        ]
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return spawn(self.layout, self.name, argv, self.data_dir)

    def healthy(self) -> bool:
        response = http_get(f"http://127.0.0.1:{PORTS['etcd']}/health")
        return response is not None and response[0] == 200

    def version(self) -> str:
        response = http_get(f"http://127.0.0.1:{PORTS['etcd']}/version")
        return json.loads(response[1])["etcdserver"] if response and response[0] == 200 else "?"


class KubeAPIServer(NodeServer):
    name = "kube-apiserver"
    command = "kube-apiserver"
    node_address = True
    start_timeout = 120

    def prepare(self) -> bool:
        return env.KUBE_APISERVER.ensure(self.layout)

    def start(self) -> subprocess.Popen[bytes]:
        pki = self.pki
        argv = [
            str(env.KUBE_APISERVER.path(self.layout)),
            f"--etcd-servers=http://127.0.0.1:{PORTS['etcd']}",
            f"--tls-cert-file={pki / 'serving.crt'}",
            f"--tls-private-key-file={pki / 'serving.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--secure-port={PORTS['kube-apiserver']}",
            f"--bind-address={NODE_IP}",
            f"--advertise-address={NODE_IP}",
            f"--service-cluster-ip-range={config.SERVICE_CIDR}",
            "--service-node-port-range=30000-30100",
            "--allow-privileged=true",
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            f"--kubelet-client-certificate={pki / 'apiserver-kubelet.crt'}",
            f"--kubelet-client-key={pki / 'apiserver-kubelet.key'}",
            # The node's name resolves nowhere: reach the kubelet at its InternalIP.
            "--kubelet-preferred-address-types=InternalIP",
        ]
        return spawn(self.layout, self.name, argv, self.data_dir)

    def healthy(self) -> bool:
        try:
            context = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
            context.load_cert_chain(str(self.pki / "admin.crt"), str(self.pki / "admin.key"))
        except (OSError, ssl.SSLError):
            return False
        response = http_get(f"https://{self.address}/readyz", context)
        return response is not None and response[0] == 200


class Controllers(NodeServer):
    """kube-controller-manager and kube-scheduler: their own identity, no leader election."""

    who = ""

    def prepare(self) -> bool:
        return build.KUBE[self.name].ensure(self.layout)

    def flags(self) -> list[str]:
        return []

    def start(self) -> subprocess.Popen[bytes]:
        kubeconfig = self.kubeconfig(self.who)
        argv = [
            str(build.KUBE[self.name].path(self.layout)),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={PORTS[self.name]}",
            "--leader-elect=false",
            *self.flags(),
        ]
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return spawn(self.layout, self.name, argv, self.data_dir)

    def healthy(self) -> bool:
        return self.https_ok(f"https://{self.address}/healthz")


class ControllerManager(Controllers):
    name = "kube-controller-manager"
    command = "kube-controller-manager"
    who = "controller-manager"

    def flags(self) -> list[str]:
        pki = self.pki
        return [
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            "--use-service-account-credentials=true",
            f"--cluster-signing-cert-file={pki / 'ca.crt'}",
            f"--cluster-signing-key-file={pki / 'ca.key'}",
            "--allocate-node-cidrs=false",
        ]


class Scheduler(Controllers):
    name = "kube-scheduler"
    command = "kube-scheduler"
    who = "scheduler"


class Kubelet(NodeServer):
    name = "kubelet"
    command = "kubelet"
    node_address = True
    start_timeout = 90

    def prepare(self) -> bool:
        return build.KUBE[self.name].ensure(self.layout)

    def start(self) -> subprocess.Popen[bytes]:
        write_file(self.data_dir / "config.yaml", config.kubelet_config(self.layout))
        argv = [
            str(build.KUBE[self.name].path(self.layout)),
            f"--config={self.data_dir / 'config.yaml'}",
            f"--kubeconfig={self.kubeconfig('node')}",
            f"--root-dir={self.data_dir / 'root'}",
            f"--cert-dir={self.data_dir / 'pki'}",
            f"--hostname-override={NODE_NAME}",
            f"--node-ip={NODE_IP}",
        ]
        return spawn(self.layout, self.name, argv, self.data_dir)

    def healthy(self) -> bool:
        response = http_get(f"http://127.0.0.1:{PORTS['kubelet-healthz']}/healthz")
        return response is not None and response[0] == 200


class KubeProxy(NodeServer):
    name = "kube-proxy"
    command = "kube-proxy"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{PORTS['kube-proxy-healthz']}"

    def prepare(self) -> bool:
        return build.KUBE[self.name].ensure(self.layout)

    def start(self) -> subprocess.Popen[bytes]:
        write_file(self.data_dir / "config.yaml", config.kube_proxy_config(self.layout))
        argv = [
            str(build.KUBE[self.name].path(self.layout)),
            f"--config={self.data_dir / 'config.yaml'}",
        ]
        return spawn(self.layout, self.name, argv, self.data_dir)

    def healthy(self) -> bool:
        response = http_get(f"http://127.0.0.1:{PORTS['kube-proxy-healthz']}/healthz")
        return response is not None and response[0] == 200


class Forwarder(NodeServer):
    """socat: one dev store's port on the node's address, forwarded to 127.0.0.1."""

    command = "socat"

    def __init__(self, layout: Layout, store: str):
        super().__init__(layout)
        self.store = store
        self.name = f"forward-{store}"
        self.port = env.port(store)

    @property
    def address(self) -> str:
        return f"{NODE_IP}:{self.port}"

    def start(self) -> subprocess.Popen[bytes]:
        argv = [
            "socat",
            f"TCP-LISTEN:{self.port},bind={NODE_IP},fork,reuseaddr",
            f"TCP:127.0.0.1:{self.port}",
        ]
        return spawn(self.layout, self.name, argv, self.layout.env_dir)

    def healthy(self) -> bool:
        pid = self.pid()
        return pid is not None and env.process_running(pid, "socat") and listening(self.port)

    def version(self) -> str:
        return "socat"


def listening(port: int) -> bool:
    """A socket listens on NODE_IP:port (from /proc: a connect() would prove nothing)."""
    wanted = f"{''.join(f'{int(b):02X}' for b in reversed(NODE_IP.split('.')))}:{port:04X}"
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return any(r.split()[1] == wanted and r.split()[3] == "0A" for r in rows)


def running(layout: Layout) -> bool:
    """Whether the node of that directory runs (containerd, etcd or its API server)."""
    return any(s.pid() is not None and s.healthy() for s in servers(layout)[:3])


def servers(layout: Layout) -> list[NodeServer]:
    return [
        Containerd(layout),
        Etcd(layout),
        KubeAPIServer(layout),
        ControllerManager(layout),
        Scheduler(layout),
        Kubelet(layout),
        KubeProxy(layout),
        *(Forwarder(layout, store) for store in STORES),
    ]


# --------------------------------------------------------------------------- the cluster


def kubectl(layout: Layout, *argv: str, stdin: str | None = None) -> str:
    """kubectl on the node, never on whatever KUBECONFIG names (dev/env.py's control plane)."""
    command = [
        str(layout.bin / "kubectl"),
        "--kubeconfig",
        str(layout.env_dir / "admin.kubeconfig"),
        *argv,
    ]
    done = subprocess.run(command, input=stdin, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise EnvError(f"kubectl {' '.join(argv)} failed: {done.stderr.strip()}")
    return done.stdout


def wait_for(what: str, check: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():  # type: ignore[operator]
                return
        except EnvError:
            pass
        if time.monotonic() > deadline:
            raise EnvError(f"{what} within {timeout:g}s")
        time.sleep(0.5)


def node_ready(layout: Layout) -> bool:
    node = json.loads(kubectl(layout, "get", "node", NODE_NAME, "-o", "json"))
    return any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"]["conditions"])


# --------------------------------------------------------------------------- subcommands


def cmd_up(layout: Layout) -> int:
    host.preflight()
    with host.host_lock(layout):
        host.claim_host(layout, running)  # refused: nothing of this node written yet
        layout.env_dir.mkdir(parents=True, exist_ok=True)
        build.ensure_packages(layout)
        build.ensure_binaries(layout)
        host.change_host(layout)  # before the image build: buildah writes host paths too
        images = build.Images(layout, layout.env_dir / "buildah-run").ensure()
        config.ensure_pki(layout)
        (layout.env_dir / "pod-logs").mkdir(exist_ok=True)
        for server in servers(layout):
            outcome = server.up()
            print(
                line(server.name, "up", server.version(), server.address) + f"  ({outcome})",
                flush=True,
            )
            if isinstance(server, Containerd):
                server.import_images(images)
        wait_for("the node did not become Ready", lambda: node_ready(layout), 120)
        # The controller-manager makes the "default" ServiceAccount pods need.
        wait_for("no default ServiceAccount", lambda: kubectl(layout, "get", "sa", "default"), 60)
        kubectl(layout, "apply", "--server-side", "-f", "-", stdin=config.stores_manifest())
        print(line("node", "Ready", NODE_NAME, NODE_IP), flush=True)
    return 0


def cmd_status(layout: Layout) -> int:
    all_up = True
    for server in servers(layout):
        if server.healthy():
            print(line(server.name, "up", server.version(), server.address))
        else:
            all_up = False
            print(line(server.name, "down", "-", server.address))
    try:
        ready = node_ready(layout)
    except EnvError:
        ready = False
    print(line("node", "Ready" if ready else "NotReady", NODE_NAME, NODE_IP))
    return 0 if all_up and ready else 1


def cmd_down(layout: Layout) -> int:
    if not layout.env_dir.exists():
        print("nothing to stop: no node dir")
        return 0
    if os.geteuid() != 0:
        raise EnvError("the node's teardown needs root, as its start did")
    with host.host_lock(layout):
        by_name = {server.name: server for server in servers(layout)}
        for name in [
            *(f"forward-{s}" for s in STORES),
            "kube-controller-manager",
            "kube-scheduler",
            "kubelet",
        ]:
            print(f"{name:<24} {'stopped' if by_name[name].stop() else 'not running'}", flush=True)
        containerd = by_name["containerd"]
        crictl = build.CRICTL.path(layout)
        if containerd.healthy() and crictl.exists():
            # Every pod sandbox through the CRI: containers stopped, CNI DEL (veth, address
            # lease, the bridge plugin's NAT rules), its mounts released.
            subprocess.run(
                [str(crictl), "--runtime-endpoint", containerd.address, "rmp", "--all", "--force"],
                capture_output=True,
                check=False,
            )
        print(f"{'kube-proxy':<24} {'stopped' if by_name['kube-proxy'].stop() else 'not running'}")
        proxy = build.KUBE["kube-proxy"].path(layout)
        if proxy.exists():
            subprocess.run([str(proxy), "--cleanup"], capture_output=True, check=False)
        for name in ("kube-apiserver", "etcd", "containerd"):
            print(f"{name:<24} {'stopped' if by_name[name].stop() else 'not running'}", flush=True)
        host.stop_shims(Path(str(containerd.address).removeprefix("unix://")))
        undone = host.unmount_under(layout.env_dir, layout.cache / "buildah")
        undone += host.restore_host(layout)
        for state in (
            "containerd",
            "etcd",
            "kubelet",
            "cni-ipam",
            "pod-logs",
            "run",
            "buildah-run",
        ):
            shutil.rmtree(layout.env_dir / state, ignore_errors=True)
        host.release_host(layout)
    for change in undone:
        print(f"  undone: {change}")
    return 0


def environment(layout: Layout) -> dict[str, str]:
    """What the node tier (tests/node) needs; KUBECONFIG stays dev/env.py's."""
    return {
        "DATARCH_NODE_DIR": str(layout.env_dir),
        "DATARCH_NODE_KUBECONFIG": str(layout.env_dir / "admin.kubeconfig"),
        "DATARCH_NODE_IP": NODE_IP,
        "DATARCH_NODE_STORES_NAMESPACE": config.STORES_NAMESPACE,
        "DATARCH_NODE_IMAGE": build.chart_image(),
        "DATARCH_PROMETHEUS": str(build.PROMETHEUS),
    }


def cmd_vars(layout: Layout) -> int:
    for name, value in environment(layout).items():
        quoted = value.replace("'", "'\\''")
        print(f"export {name}='{quoted}'")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dev/node.py", description=__doc__.split("\n", 1)[0])
    parser.add_argument("command", choices=("up", "status", "down", "vars"))
    args = parser.parse_args(argv)
    commands = {"up": cmd_up, "status": cmd_status, "down": cmd_down, "vars": cmd_vars}
    try:
        return commands[args.command](node_layout())
    except EnvError as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        if exc.log is not None:
            print(f"--- last lines of {exc.log} ---\n{env.tail(exc.log)}\n---", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
