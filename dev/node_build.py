"""What the local node runs, built or installed once and cached (used by dev/node.py).

- Debian packages: containerd, runc, the CNI plugins, iptables and friends,
  mmdebstrap and buildah for images, Prometheus for the node tier's scrape.
- Go binaries, pinned like kube-apiserver: kubelet, kube-proxy, kube-scheduler and
  kube-controller-manager from the dev/go/kube-node wrapper module (its go.mod is
  dev/go/kube-apiserver's, so every k8s.io module is the same release), and crictl.
- pause, the pod sandbox's process, compiled from the same k8s.io/kubernetes source.
- Images, without a registry or Docker: the pause image; a Debian bookworm root
  filesystem with Python 3.11 (mmdebstrap) standing in for python:3.11-slim; and the
  project's image, built by buildah from the repository's Dockerfile as it is. Each
  is an OCI archive under <cache>/images, rebuilt only when its inputs change.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import env  # dev/env.py, beside this script
from env import EnvError, GoBinary, Layout, run

REPO = env.REPO
NODE_PACKAGES = [
    "containerd",
    "runc",
    "containernetworking-plugins",
    "iptables",
    "conntrack",
    "socat",
    "ethtool",
    "mmdebstrap",
    "buildah",
    "uidmap",
    "fuse-overlayfs",
    "gcc",
    "libc6-dev",
    "prometheus",
]
RUNC = "/usr/bin/runc"
CNI_BIN = Path("/usr/lib/cni")
PROMETHEUS = Path("/usr/bin/prometheus")

# The controllers and the node, from k8s.io/kubernetes at kube-apiserver's release.
KUBE_NODE_BINARIES = ("kubelet", "kube-controller-manager", "kube-scheduler", "kube-proxy")
KUBE = {
    name: GoBinary(
        name, wrapper="kube-node", package=f"./{name}", ldflags=env.KUBE_APISERVER.ldflags
    )
    for name in KUBE_NODE_BINARIES
}
CRICTL_VERSION = "v1.37.0"
CRICTL = GoBinary(
    "crictl",
    module=f"sigs.k8s.io/cri-tools@{CRICTL_VERSION}",
    package="./cmd/crictl",
    ldflags=(f"-X sigs.k8s.io/cri-tools/pkg/version.Version={CRICTL_VERSION}",),
)

PAUSE_IMAGE = "localhost/pause:3.10"
# The Dockerfile's base, by the name a local image must carry for `FROM python:3.11-slim`.
BASE_IMAGE = "docker.io/library/python:3.11-slim"
# Bookworm's python3 is 3.11, the Dockerfile's Python.
BASE_SUITE = "bookworm"
BASE_MIRROR = "http://deb.debian.org/debian"
BASE_PACKAGES = "python3,python3-pip,python-is-python3,ca-certificates"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def kubernetes_version() -> str:
    gomod = (env.GO_WRAPPERS / "kube-node" / "go.mod").read_text()
    match = re.search(r"^\s*k8s\.io/kubernetes (v\S+)", gomod, re.MULTILINE)
    if match is None:
        raise EnvError("dev/go/kube-node/go.mod pins no k8s.io/kubernetes")
    return match.group(1)


def chart_image() -> str:
    """The image the chart's defaults name: repository `datarch`, tag the appVersion."""
    chart = (REPO / "helm" / "datarch" / "Chart.yaml").read_text()
    match = re.search(r'^appVersion:\s*"?([^"\s]+)"?', chart, re.MULTILINE)
    if match is None:
        raise EnvError("helm/datarch/Chart.yaml has no appVersion")
    return f"docker.io/library/datarch:{match.group(1)}"


def digest(*parts: bytes | str) -> str:
    hashed = hashlib.sha256()
    for part in parts:
        hashed.update(part.encode() if isinstance(part, str) else part)
        hashed.update(b"\0")
    return hashed.hexdigest()


# --------------------------------------------------------------------------- binaries


def ensure_packages(layout: Layout) -> None:
    env.apt_install(NODE_PACKAGES, layout.log("apt"))


def ensure_binaries(layout: Layout) -> bool:
    """Every node binary in the cache. True when one was (re)built."""
    built = [binary.ensure(layout) for binary in (*KUBE.values(), CRICTL)]
    return ensure_pause(layout) or any(built)


def ensure_pause(layout: Layout) -> bool:
    version = kubernetes_version()
    go = env.find_go()
    goenv = dict(os.environ, GOTOOLCHAIN="local", GOFLAGS="-buildvcs=false")
    info = json.loads(
        run(
            [go, "mod", "download", "-json", f"k8s.io/kubernetes@{version}"],
            cwd=env.GO_WRAPPERS / "kube-node",
            env=goenv,
            what="go mod download k8s.io/kubernetes",
        )
    )
    source = Path(info["Dir"]) / "build" / "pause" / "linux" / "pause.c"
    argv = ["gcc", "-Os", "-static", f"-DVERSION={version}", "-o"]
    recipe = digest(source.read_bytes(), *argv)
    target, stamp = layout.bin / "pause", layout.bin / ".stamps" / "pause"
    if target.exists() and stamp.exists() and stamp.read_text() == recipe:
        return False
    run([*argv, str(target), str(source)], log=layout.log("build-pause"), what="gcc (pause)")
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(recipe)
    print("  built pause", flush=True)
    return True


# --------------------------------------------------------------------------- images


class Images:
    """The three OCI archives under <cache>/images, and the buildah store that makes them."""

    def __init__(self, layout: Layout, runroot: Path):
        self.layout = layout
        self.dir = layout.cache / "images"
        self.root = layout.cache / "buildah"
        self.runroot = runroot
        self.log = layout.log("images")

    def archive(self, name: str) -> Path:
        return self.dir / f"{name}.tar"

    def buildah(self, *argv: str, cwd: Path | None = None, log: Path | None = None) -> str:
        return run(
            [
                "buildah",
                "--root",
                str(self.root),
                "--runroot",
                str(self.runroot),
                "--storage-driver",
                "overlay",
                *argv,
            ],
            cwd=cwd,
            log=log,
            what=f"buildah {argv[0]}",
        )

    def ensure(self) -> dict[str, tuple[str, Path]]:
        """{image name: (content digest, archive)} for pause and datarch, built if stale."""
        self.dir.mkdir(parents=True, exist_ok=True)
        pause = self._pause()
        base = self._base()
        project = self._project(base)
        return {
            PAUSE_IMAGE: (pause, self.archive("pause")),
            chart_image(): (project, self.archive("datarch")),
        }

    def _stale(self, name: str, recipe: str) -> bool:
        stamp = self.dir / f"{name}.stamp"
        return not (self.archive(name).exists() and stamp.exists() and stamp.read_text() == recipe)

    def _done(self, name: str, recipe: str) -> str:
        (self.dir / f"{name}.stamp").write_text(recipe)
        return recipe

    def _has_image(self, name: str) -> bool:
        try:
            self.buildah("inspect", "--type", "image", name)
        except EnvError:
            return False
        return True

    def _pause(self) -> str:
        binary = self.layout.bin / "pause"
        recipe = digest("pause", binary.read_bytes(), PAUSE_IMAGE)
        if not self._stale("pause", recipe):
            return recipe
        print("  building the pause image ...", flush=True)
        container = self.buildah("from", "scratch").strip()
        try:
            self.buildah("copy", container, str(binary), "/pause")
            self.buildah("config", "--entrypoint", '["/pause"]', "--user", "65535:65535", container)
            self.buildah("commit", "-q", container, PAUSE_IMAGE)
        finally:
            self.buildah("rm", container)
        self._push(PAUSE_IMAGE, "pause")
        return self._done("pause", recipe)

    def _base(self) -> str:
        argv = [
            "mmdebstrap",
            "--variant=minbase",
            f"--include={BASE_PACKAGES}",
            # pip may install system-wide, as in the official image (PEP 668's marker gone).
            '--customize-hook=rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED',
            '--customize-hook=rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*',
            BASE_SUITE,
        ]
        recipe = digest(*argv, BASE_MIRROR)
        rootfs = self.archive("base-rootfs")
        if self._stale("base-rootfs", recipe):
            print(
                f"  building the base image's root filesystem (mmdebstrap {BASE_SUITE}) ...",
                flush=True,
            )
            partial = rootfs.with_suffix(".partial.tar")
            run([*argv, str(partial), BASE_MIRROR], log=self.log, what="mmdebstrap")
            partial.replace(rootfs)
            self._done("base-rootfs", recipe)
            self._forget(BASE_IMAGE)
        if not self._has_image(BASE_IMAGE):
            container = self.buildah("from", "scratch").strip()
            try:
                self.buildah("add", container, str(rootfs), "/")
                self.buildah(
                    "config",
                    "--env",
                    "LANG=C.UTF-8",
                    "--env",
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "--cmd",
                    '["python3"]',
                    container,
                )
                self.buildah("commit", "-q", container, BASE_IMAGE)
            finally:
                self.buildah("rm", container)
        return recipe

    def _forget(self, image: str) -> None:
        if self._has_image(image):
            self.buildah("rmi", "-f", image)

    def _project(self, base: str) -> str:
        recipe = digest(base, *context_files())
        if not self._stale("datarch", recipe):
            return recipe
        print("  building the datarch image from the Dockerfile (buildah) ...", flush=True)
        image = chart_image()
        argv = [
            "bud",
            # crun, buildah's default, refuses hosts with cgroup v1 controllers; runc copes.
            "--runtime",
            RUNC,
            "--pull-never",  # FROM python:3.11-slim is the local stand-in
            "--network",
            "host",
            # No --layers: buildah 1.28's layer cache ignores what a RUN's
            # --mount=type=bind,from=build brings in, and kept a stale runtime stage
            # after the source changed. Built only when the inputs changed anyway.
            "-t",
            image,
            "-f",
            "Dockerfile",
        ]
        if HOST_CA_BUNDLE.exists():
            # pip trusts what this host trusts (a TLS-intercepting proxy, say); a RUN mount
            # of the build only, never part of a layer.
            argv += ["-v", f"{HOST_CA_BUNDLE}:{HOST_CA_BUNDLE}:ro"]
        self.buildah(*argv, ".", cwd=REPO, log=self.log)
        self._push(image, "datarch")
        self.buildah("rmi", "--prune")  # the image it replaced, now untagged
        return self._done("datarch", recipe)

    def _push(self, image: str, name: str) -> None:
        archive = self.archive(name)
        archive.unlink(missing_ok=True)
        tag = image.rsplit(":", 1)[1]
        self.buildah("push", "-q", image, f"oci-archive:{archive}:{tag}")


def context_files() -> list[str]:
    """The Dockerfile and every file its build context lets in, with their contents:
    what decides whether the project's image must be rebuilt. .dockerignore excludes
    everything, lets paths in one by one (`!path`), and keeps caches out."""
    allowed = [
        line[1:].strip().rstrip("/")
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    ]
    parts = ["Dockerfile", digest((REPO / "Dockerfile").read_bytes())]
    for entry in allowed:
        root = REPO / entry
        for path in sorted(root.rglob("*")) if root.is_dir() else [root]:
            relative = path.relative_to(REPO)
            cache = path.suffix == ".pyc" or any(
                part == "__pycache__" or part.endswith(".egg-info") for part in relative.parts
            )
            if path.is_file() and not cache:
                parts += [str(relative), digest(path.read_bytes())]
    return parts
