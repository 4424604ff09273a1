"""Faults on private servers while passes run as the operator runs them: kill -9, a black
hole (accepts, never answers) and a frozen connection, for every store kind.

Each store of one claim reaches its server through a FaultProxy; PostgreSQL (initdb in a
temporary directory), FerretDB, NATS and Redis are the suite's own, so it may kill them
(by PID) and restart them. S3 goes through a proxy to the shared SeaweedFS, which is
never stopped: its "kill" is the proxy closing its port (connections refused), a gap
named here because a private SeaweedFS costs more start-up than the whole matrix.

Passes run in a loop like the controller's (one pass, then the interval), with one
ClientPool kept across passes. Every verdict is also turned into status, Events and
metrics exactly as the operator does, so the canary secrets can be looked for in all
of them. Asserted for every fault: the store goes not-checked within timeout +
interval, no pass started during the fault reads it as fine, it is checked again
within one interval (+ a pass) of recovery, and the claim's other stores are checked
in every pass meanwhile. Afterwards: no canary anywhere, no write reached PostgreSQL
(log_statement=all) or Redis (command statistics).

Gaps: the operator process itself (SIGKILL, API-server restarts) is exercised by
tests/e2e, not here; MongoDB, NATS and S3 writes are not audited here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio
import redis
from fault_proxy import FaultProxy
from private_servers import (
    PrivateServer,
    ferretdb_server,
    nats_server,
    postgres_server,
    redis_server,
    remove,
)
from reliability_figures import FIGURES

from conftest import env
from datarch.claims import ClaimSpec
from datarch.probes.base import ClientPool
from datarch.reporting.events import ClaimRef, event_body, transitions
from datarch.reporting.metrics import VerdictCollector, exposition, registry_with
from datarch.reporting.output import render_json, render_junit, render_text
from datarch.reporting.status import build_status
from datarch.secrets import LocalSecrets
from datarch.verification import Verdict, verify

pytestmark = pytest.mark.reliability

TIMEOUT = 1.0
INTERVAL = 0.5
SLACK = 1.0  # two shared, loaded cores
CANARY = {  # right passwords, a wrong one and one in a malformed URL: none may surface
    "postgres": "canary-pg-7d1c9e",
    "redis": "canary-redis-4b2a1f",
    "nats": "canary-nats-9e3d5a",
    "wrong": "canary-wrong-2c8e0b",
    "malformed": "canary-malformed-6a4f3d",
}
# Stores that are never checked, by design: a wrong password and a malformed URL.
BROKEN = {"wrong": "AccessDenied", "malformed": "InvalidConnection"}
KINDS = ("postgres", "mongodb", "nats", "redis", "s3")
FAULTS = ("kill", "black hole", "frozen connection")


@dataclass
class Pass:
    started: float
    ended: float
    verdict: Verdict


@dataclass
class Bench:
    """The private servers, the proxy in front of each store, and the passes so far."""

    servers: dict[str, PrivateServer]
    proxies: dict[str, FaultProxy]
    spec: ClaimSpec
    passes: list[Pass] = field(default_factory=list)
    surfaces: list[str] = field(default_factory=list)  # status, Events, metrics, outputs

    def checked(self, store: str, run: Pass) -> bool:
        return next(s for s in run.verdict.stores if s.name == store).checked

    async def wait_for(self, after: float, store: str, checked: bool, within: float) -> Pass | None:
        """The first pass started after `after` whose `store` is (not) checked."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            for run in self.passes:
                if run.started > after and self.checked(store, run) is checked:
                    return run
            await asyncio.sleep(0.05)
        return None


def _claim(ports: dict[str, int]) -> ClaimSpec:
    stores: list[dict[str, Any]] = [
        {
            "name": "postgres",
            "kind": "postgres",
            "connection": {"secretRef": {"name": "pg"}},
            "strict": True,
            "postgres": {"schemas": [{"name": "public", "tables": []}]},
        },
        {"name": "mongodb", "kind": "mongodb", "connection": {"secretRef": {"name": "mongo"}}},
        {"name": "nats", "kind": "nats", "connection": {"secretRef": {"name": "nats"}}},
        {"name": "redis", "kind": "redis", "connection": {"secretRef": {"name": "redis"}}},
        {
            "name": "s3",
            "kind": "s3",
            "connection": {
                "endpoint": f"127.0.0.1:{ports['s3']}",
                "secure": False,
                "secretRef": {"name": "s3"},
            },
        },
        {"name": "wrong", "kind": "redis", "connection": {"secretRef": {"name": "wrong"}}},
        {"name": "malformed", "kind": "nats", "connection": {"secretRef": {"name": "bad"}}},
    ]
    return ClaimSpec.model_validate({"interval": "1s", "timeout": "1s", "stores": stores})


def _secrets(ports: dict[str, int]) -> LocalSecrets:
    return LocalSecrets(
        environ={
            "DATARCH_SECRET_PG_DSN": (
                f"postgresql://postgres:{CANARY['postgres']}@127.0.0.1:{ports['postgres']}/postgres"
            ),
            "DATARCH_SECRET_MONGO_URI": f"mongodb://127.0.0.1:{ports['mongodb']}/",
            "DATARCH_SECRET_NATS_URL": f"nats://reader:{CANARY['nats']}@127.0.0.1:{ports['nats']}",
            "DATARCH_SECRET_REDIS_URL": f"redis://:{CANARY['redis']}@127.0.0.1:{ports['redis']}/0",
            "DATARCH_SECRET_WRONG_URL": (
                f"redis://:{CANARY['wrong']}@127.0.0.1:{ports['redis']}/0"
            ),
            "DATARCH_SECRET_BAD_URL": f"nats://reader:{CANARY['malformed']}@[127.0.0.1:notaport",
            "DATARCH_SECRET_S3_ACCESSKEY": env("DATARCH_S3_RO_ACCESS_KEY"),
            "DATARCH_SECRET_S3_SECRETKEY": env("DATARCH_S3_RO_SECRET_KEY"),
        }
    )


class _Collect(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(self.format(record))


@contextlib.contextmanager
def _every_log_line(into: list[str]) -> Iterator[None]:
    handler = _Collect(into)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _start_all() -> dict[str, PrivateServer]:
    servers = {
        "postgres": postgres_server(CANARY["postgres"]),
        "mongodb": ferretdb_server(),
        "nats": nats_server("reader", CANARY["nats"]),
        "redis": redis_server(CANARY["redis"]),
    }
    for server in servers.values():
        server.start()
    return servers


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bench() -> AsyncIterator[Bench]:
    servers = await asyncio.to_thread(_start_all)
    s3_host, s3_port = env("DATARCH_S3_ENDPOINT").rsplit(":", 1)
    upstreams = {name: ("127.0.0.1", server.port) for name, server in servers.items()}
    upstreams["s3"] = (s3_host, int(s3_port))
    proxies = {name: FaultProxy(*address) for name, address in upstreams.items()}
    ports = {name: proxy.port for name, proxy in proxies.items()}
    bench = Bench(servers, proxies, _claim(ports))
    secrets, clients = _secrets(ports), ClientPool()
    collector = VerdictCollector()
    registry = registry_with(collector)
    ref = ClaimRef("reliability", "platform", "uid-1")

    async def passes() -> None:
        previous: dict[str, Any] | None = None
        while True:
            started = time.monotonic()
            verdict = await verify(bench.spec, secrets, clients)
            bench.passes.append(Pass(started, time.monotonic(), verdict))
            status = build_status(verdict, 1, previous)
            events = [
                str(event_body(t, ref, datetime.now(UTC), "reliability"))
                for t in transitions(previous, status)
            ]
            collector.record("reliability", "platform", bench.spec, verdict)
            bench.surfaces += [str(status), *events, exposition(registry)[0].decode()]
            previous = status
            await asyncio.sleep(INTERVAL)

    logs: list[str] = []
    with _every_log_line(logs):
        loop = asyncio.create_task(passes())
        try:
            yield bench
        finally:
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop
            await clients.close()
            for proxy in proxies.values():
                proxy.close()
            bench.surfaces += logs
            for server in servers.values():
                remove(server)
            alive = [s.name for s in servers.values() if s.process and s.process.poll() is None]
            assert not alive, f"still running after the suite: {alive}"


def _inject(bench: Bench, kind: str, fault: str) -> Callable[[], None]:
    """Start `fault` on `kind`'s store; returns what ends it."""
    proxy = bench.proxies[kind]
    if fault == "kill" and kind in bench.servers:
        server = bench.servers[kind]
        server.kill()
        return server.start
    if fault == "kill":  # s3: the shared server stays up; its port goes away instead
        proxy.close()

        def reopen() -> None:
            bench.proxies[kind] = FaultProxy(*proxy.upstream, port=proxy.port)

        return reopen
    if fault == "black hole":
        proxy.black_hole()
    else:
        proxy.freeze()
    return proxy.thaw


RESULTS: list[dict[str, Any]] = []


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("kind", KINDS)
async def test_a_fault_is_detected_never_read_as_fine_and_recovered_from(
    bench: Bench, kind: str, fault: str
) -> None:
    assert await bench.wait_for(time.monotonic(), kind, True, 10.0), "not healthy before"
    injected = time.monotonic()
    end = await asyncio.to_thread(_inject, bench, kind, fault)
    detected = await bench.wait_for(injected, kind, False, TIMEOUT + INTERVAL + 2 * SLACK)
    await asyncio.sleep(TIMEOUT + INTERVAL)  # let a further pass run against the fault
    cleared = time.monotonic()
    await asyncio.to_thread(end)
    recovered = await bench.wait_for(cleared, kind, True, 2 * (TIMEOUT + INTERVAL) + 2 * SLACK)

    during = [run for run in bench.passes if injected < run.started and run.ended < cleared]
    fine = [run for run in during if bench.checked(kind, run)]
    others = [
        store.name
        for run in during
        for store in run.verdict.stores
        if store.name != kind and store.name not in BROKEN and not store.checked
    ]
    broken = {
        store.name: store.error_reason
        for run in during
        for store in run.verdict.stores
        if store.name in BROKEN
    }
    RESULTS.append(
        {
            "survived": bool(detected and recovered and not fine and not others),
            "unread_fine": len(fine),
            "detection": detected.ended - injected if detected else None,
            "recovery": recovered.ended - cleared if recovered else None,
            "others_unchecked": len(others),
        }
    )
    assert detected is not None, f"{kind} {fault}: never reported"
    # A pass that began just before the fault may still end fine (it read before); the
    # next one starts an interval later and reports within its timeout.
    assert detected.ended - injected <= TIMEOUT + INTERVAL + SLACK + TIMEOUT, (
        f"{kind} {fault}: reported after {detected.ended - injected:.2f}s"
    )
    assert not fine, f"{kind} {fault}: {len(fine)} pass(es) read it as fine"
    assert not others, f"{kind} {fault}: other stores went unchecked: {others}"
    if kind != "redis":  # a wrong password is refused by a server that is up
        assert broken == BROKEN, broken
    assert recovered is not None, f"{kind} {fault}: never recovered"
    assert recovered.ended - cleared <= INTERVAL + TIMEOUT + SLACK + TIMEOUT


@pytest.mark.asyncio(loop_scope="module")
async def test_no_canary_reached_any_surface_and_nothing_was_written(bench: Bench) -> None:
    verdict = bench.passes[-1].verdict
    from datarch.claims import Claim  # noqa: PLC0415

    claim = Claim.model_validate({"metadata": {"name": "platform"}, "spec": bench.spec})
    outputs = [render(claim, run.verdict) for run in bench.passes for render in (render_text,)]
    outputs += [render_json(claim, verdict), render_junit(claim, verdict)]
    text = "\n".join(bench.surfaces + outputs)
    leaks = [name for name, canary in CANARY.items() if canary in text]

    statements = _pg_statements(bench.servers["postgres"])
    writes = [s for s in statements if not _read_only(s)]
    writes += _redis_writes(bench.servers["redis"])

    total = len(RESULTS)
    survived = sum(r["survived"] for r in RESULTS)
    detections = [r["detection"] for r in RESULTS if r["detection"] is not None]
    recoveries = [r["recovery"] for r in RESULTS if r["recovery"] is not None]
    FIGURES["faults"] = f"{survived}/{total} faults survived"
    FIGURES["unread"] = f"{sum(r['unread_fine'] for r in RESULTS)} unread-reported-fine"
    if detections and recoveries:
        FIGURES["detection"] = f"detection max {max(detections):.1f}s"
        FIGURES["recovery"] = f"recovery max {max(recoveries):.1f}s"
    FIGURES["others"] = f"{sum(r['others_unchecked'] for r in RESULTS)} other stores unchecked"
    FIGURES["leaks"] = f"{len(leaks)} leaks"
    FIGURES["writes"] = f"{len(writes)} writes ({len(statements)} statements logged)"

    assert total == len(KINDS) * len(FAULTS)
    # The search is not vacuous: status and metrics are in it (and every log line).
    assert "StoresReachable" in text and "datarch_store_up" in text
    assert "InvalidConnection" in text and "AccessDenied" in text  # the broken stores' reports
    assert statements, "log_statement=all logged nothing: the audit would pass vacuously"
    assert not leaks, f"canary of {leaks} found"
    assert not writes, writes[:5]


_READS = {"select", "show", "set", "begin", "start", "commit", "rollback", "reset", "discard"}


def _read_only(statement: str) -> bool:
    words = statement.split(None, 1)
    return bool(words) and words[0].lower().rstrip(";") in _READS


def _pg_statements(server: PrivateServer) -> list[str]:
    log = server.log.read_text(errors="replace")
    return [m.group(1) for m in re.finditer(r"LOG:\s+statement: (.*)", log)]


def _redis_writes(server: PrivateServer) -> list[str]:
    client = redis.Redis(port=server.port, password=CANARY["redis"], socket_timeout=5)
    try:
        writes = {c.decode() for c in client.execute_command("COMMAND LIST FILTERBY ACLCAT write")}
        stats = client.info("commandstats")
    finally:
        client.close()
    used = (name.removeprefix("cmdstat_").split("|")[0] for name in stats)
    return [f"redis {name}" for name in used if name in writes]
