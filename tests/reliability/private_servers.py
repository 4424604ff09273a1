"""Servers of the reliability suite's own, which it may kill: each on a free loopback
port with its data in a temporary directory, started and stopped by PID.

PostgreSQL runs as the `postgres` user when the suite runs as root (it refuses root),
as the dev tooling does; Popen's `user=` keeps the PID the postmaster's own. The
shared dev servers (`make env`) are never touched here.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from conftest import free_port

CACHE_BIN = Path.home() / ".cache" / "datarch" / "bin"
READY_WITHIN = 30.0


def _binary(name: str, *fallbacks: Path) -> str:
    for candidate in (CACHE_BIN / name, *fallbacks):
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is not installed: run `make env` once")
    return found


@dataclass
class PrivateServer:
    """One server process: `start()` and `kill()` (SIGKILL, by PID) as often as a test likes."""

    name: str
    argv: list[str]
    port: int
    directory: Path
    user: str | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.directory / f"{self.name}.log"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.directory,
                user=self.user,
                group=self.user,
                extra_groups=[] if self.user else None,
            )
        self.wait_ready()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_WITHIN
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log.read_text(errors='replace')}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5),
            ):
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not listen on {self.port} within {READY_WITHIN}s")

    def kill(self) -> None:
        """SIGKILL the process we started, by its PID, and reap it."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def _directory(name: str, owner: str | None = None) -> Path:
    # /var/tmp, not pytest's 0700 tree: the postgres user must reach its data directory.
    directory = Path(tempfile.mkdtemp(prefix=f"datarch-reliability-{name}-", dir="/var/tmp"))
    if owner:
        shutil.chown(directory, owner, owner)
    return directory


def redis_server(password: str) -> PrivateServer:
    port = free_port()
    directory = _directory("redis")
    argv = [
        _binary("redis-server"),
        "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
        "--dir", str(directory), "--requirepass", password,
    ]  # fmt: skip
    return PrivateServer("redis", argv, port, directory)


def nats_server(user: str, password: str) -> PrivateServer:
    port = free_port()
    directory = _directory("nats")
    argv = [
        _binary("nats-server"),
        "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(directory / "js"),
        "--user", user, "--pass", password,
    ]  # fmt: skip
    return PrivateServer("nats", argv, port, directory)


def ferretdb_server() -> PrivateServer:
    port = free_port()
    directory = _directory("mongodb")
    (directory / "sqlite").mkdir()
    argv = [
        _binary("ferretdb"),
        "--handler=sqlite", f"--sqlite-url=file:{directory / 'sqlite'}/",
        f"--listen-addr=127.0.0.1:{port}", f"--debug-addr=127.0.0.1:{free_port()}",
        f"--state-dir={directory}", "--telemetry=disable", "--log-level=debug",
    ]  # fmt: skip
    return PrivateServer("mongodb", argv, port, directory)


def postgres_server(password: str) -> PrivateServer:
    """A fresh cluster with a superuser `postgres` whose password is `password`,
    logging every statement (log_statement=all) to its log."""
    user = "postgres" if os.geteuid() == 0 else None
    if user is not None:
        pwd.getpwnam(user)  # KeyError: the dev tooling creates it with PostgreSQL
    directory = _directory("postgres", user)
    data = directory / "data"
    pwfile = directory / "pw"
    pwfile.write_text(password)
    if user:
        shutil.chown(pwfile, user, user)
    subprocess.run(
        [
            _binary("initdb"), "-D", str(data), "-U", "postgres", "--pwfile", str(pwfile),
            "-A", "scram-sha-256", "--no-sync", "--no-instructions",
        ],
        check=True, capture_output=True, user=user, group=user,
        extra_groups=[] if user else None, cwd=directory, timeout=120,
    )  # fmt: skip
    pwfile.unlink()
    port = free_port()
    argv = [
        _binary("postgres"), "-D", str(data), "-p", str(port),
        "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={directory}",
        "-c", "log_statement=all", "-c", "fsync=off", "-c", "shared_buffers=16MB",
        "-c", "max_connections=30",
    ]  # fmt: skip
    return PrivateServer("postgres", argv, port, directory, user=user)


def remove(server: PrivateServer) -> None:
    server.stop()
    shutil.rmtree(server.directory, ignore_errors=True)
