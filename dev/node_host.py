"""The local node's host-wide changes, and how `down` undoes each (used by dev/node.py).

Adding: the node's address on lo, saved sysctls, a record of which hard-coded host
paths existed before. The kubelet, kube-proxy, containerd and the CNI plugins add
the rest (iptables chains, the bridge, cgroups, network namespaces, mounts), and
`restore_host` removes those by name.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import env  # dev/env.py, beside this script
from env import EnvError, Layout, run, write_file
from node_config import BRIDGE, NODE_IP

HOST_LOCK = Path("/run/datarch-node.lock")
# Set while the node runs (the kubelet, the bridge plugin): saved by `up`, restored by `down`.
SYSCTLS = (
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "kernel.panic",
    "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
    "net.ipv4.ip_forward",
)
# Outside the node's directory, hard-coded by the kubelet (device-plugins, container log
# links), containerd's shims, libcni's result cache and buildah. `down` removes those
# that did not exist before the first `up`.
HOST_PATHS = (
    "/var/lib/kubelet/device-plugins",
    "/var/lib/kubelet",
    "/var/log/containers",
    "/var/log/pods",
    "/run/containerd/s",
    "/run/containerd/fifo",
    "/run/containerd/runc",
    "/run/containerd",
    "/var/lib/cni/results",
    "/var/lib/cni",
    "/etc/cni/net.d/cni.lock",
    "/etc/cni/net.d",
    "/etc/cni",
    "/var/lib/containers/cache",
    "/var/lib/containers",
    "/run/netns",
)


# --------------------------------------------------------------------------- the host


def preflight() -> None:
    """Refuse, in one line, a machine where containers cannot run."""
    if os.geteuid() != 0:
        raise EnvError(
            "the node needs root: containers, cgroups, iptables and an address on lo are host-wide"
        )
    if not Path("/sys/fs/cgroup").is_dir() or not any(Path("/sys/fs/cgroup").iterdir()):
        raise EnvError("the node needs cgroups: nothing is mounted on /sys/fs/cgroup")
    controllers = Path("/sys/fs/cgroup/cgroup.controllers")
    if not (Path("/sys/fs/cgroup/memory").is_dir() or "memory" in _read(controllers)):
        raise EnvError("the node needs the cgroup memory controller; this kernel has none")
    if "overlay" not in _read(Path("/proc/filesystems")):
        raise EnvError("the node needs the overlay filesystem for containerd; this kernel lacks it")


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


@contextmanager
def host_lock(layout: Layout) -> Iterator[None]:
    """One `up` or `down` at a time on this host, and one node: the lock file names the
    node directory whose `up` ran last, until its `down`."""
    HOST_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(HOST_LOCK, "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def claim_host(layout: Layout, running: Callable[[Layout], bool]) -> None:
    owner = _read(HOST_LOCK).strip()
    mine = str(layout.env_dir)
    if owner and owner != mine and Path(owner).is_dir():
        other = Layout(layout.cache, Path(owner))
        if running(other):
            raise EnvError(
                f"another datarch node runs on this host ({owner}); one at a time:"
                f" DATARCH_NODE_DIR={owner} python3 dev/node.py down"
            )
    HOST_LOCK.write_text(mine + "\n")


def release_host(layout: Layout) -> None:
    if _read(HOST_LOCK).strip() == str(layout.env_dir):
        HOST_LOCK.write_text("")


def change_host(layout: Layout) -> None:
    """Record what `down` restores, then add the node's address to lo."""
    run_dir = layout.env_dir / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    saved = run_dir / "sysctl.json"
    if not saved.exists():
        values = {}
        for key in SYSCTLS:
            path = Path("/proc/sys") / key.replace(".", "/")
            if path.exists():
                values[key] = path.read_text().strip()
        write_file(saved, json.dumps(values))
    existed = run_dir / "host-paths.json"
    if not existed.exists():
        write_file(existed, json.dumps([p for p in HOST_PATHS if os.path.lexists(p)]))
    if f" {NODE_IP}/32 " not in run(["ip", "-o", "addr", "show", "dev", "lo"]):
        run(["ip", "addr", "add", f"{NODE_IP}/32", "dev", "lo"])


def restore_host(layout: Layout) -> list[str]:
    """Undo every host-wide change; the lines say what was undone."""
    done = []
    for netns in Path("/run/netns").glob("cni-*"):
        subprocess.run(["umount", str(netns)], capture_output=True, check=False)
        netns.unlink(missing_ok=True)
        done.append(f"network namespace {netns.name}")
    done += remove_iptables_chains()
    if Path(f"/sys/class/net/{BRIDGE}").exists():
        run(["ip", "link", "del", BRIDGE])
        done.append(f"bridge {BRIDGE}")
    if f" {NODE_IP}/32 " in run(["ip", "-o", "addr", "show", "dev", "lo"]):
        run(["ip", "addr", "del", f"{NODE_IP}/32", "dev", "lo"])
        done.append(f"address {NODE_IP} on lo")
    saved = layout.env_dir / "run" / "sysctl.json"
    if saved.exists():
        for key, value in json.loads(saved.read_text()).items():
            path = Path("/proc/sys") / key.replace(".", "/")
            if path.read_text().strip() != value:
                path.write_text(value)
                done.append(f"sysctl {key}={value}")
        saved.unlink()
    for cgroup in (
        sorted(Path("/sys/fs/cgroup").glob("*/kubepods"))
        + sorted(Path("/sys/fs/cgroup").glob("*/k8s.io"))
        + [Path("/sys/fs/cgroup/kubepods")]
    ):
        if cgroup.is_dir():
            for directory in [*sorted(cgroup.rglob("*/"), key=lambda p: -len(p.parts)), cgroup]:
                if directory.is_dir():
                    directory.rmdir()
            done.append(f"cgroup {cgroup}")
    existed_file = layout.env_dir / "run" / "host-paths.json"
    existed = (
        set(json.loads(existed_file.read_text())) if existed_file.exists() else set(HOST_PATHS)
    )
    for path in HOST_PATHS:  # deepest first, as listed
        if path not in existed and os.path.lexists(path):
            if Path(path).is_dir() and not Path(path).is_symlink():
                shutil.rmtree(path)
            else:
                Path(path).unlink()
            done.append(f"{path}")
    existed_file.unlink(missing_ok=True)
    return done


def remove_iptables_chains() -> list[str]:
    """The KUBE-* (kubelet, kube-proxy) and CNI-* (bridge, portmap) chains and the jumps to them."""
    removed = []
    for tool in ("iptables", "ip6tables"):
        for table in ("filter", "nat", "mangle"):
            try:
                rules = run([f"{tool}-save", "-t", table]).splitlines()
            except EnvError:
                continue
            ours = [r for r in rules if r.startswith(":KUBE-") or r.startswith(":CNI-")]
            chains = [r[1:].split()[0] for r in ours]
            for rule in rules:
                words = rule.split()
                if words[:1] == ["-A"] and words[1] not in chains and _jumps_to(words, chains):
                    run([tool, "-t", table, "-D", *words[1:]])
            for flag in ("-F", "-X"):
                for chain in chains:
                    run([tool, "-t", table, flag, chain])
            removed += [f"{tool} {table} chain {c}" for c in chains]
    return removed


def _jumps_to(words: list[str], chains: list[str]) -> bool:
    return any(w in ("-j", "-g") and i + 1 < len(words) and words[i + 1] in chains
               for i, w in enumerate(words))  # fmt: skip


def unmount_under(*roots: Path) -> list[str]:
    mounts = []
    for row in Path("/proc/self/mountinfo").read_text().splitlines():
        point = row.split()[4].replace("\\040", " ")
        if any(point == str(r) or point.startswith(f"{r}/") for r in roots):
            mounts.append(point)
    for point in sorted(mounts, key=len, reverse=True):
        if subprocess.run(["umount", point], capture_output=True, check=False).returncode != 0:
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    return [f"mount {m}" for m in mounts]


def stop_shims(socket: Path) -> None:
    """containerd-shim processes that outlived their containerd: only this node's, by pid."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[0].endswith(b"containerd-shim-runc-v2") and str(socket).encode() in argv:
            env.stop_process(int(proc.name), "containerd-shim-runc-v2", signal.SIGTERM, 5.0)
