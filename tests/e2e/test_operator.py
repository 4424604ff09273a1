"""The operator end to end: the real `datarch operator` process, the local kube-apiserver,
and the real dev stores.

Each test gets its own namespace, its own database, collection, stream, bucket and
Redis database (tests/conftest.py), and its own operator watching only that
namespace, so tests run in any order and beside other suites. Intervals are 2s;
every wait has a deadline and says what it was waiting for when it runs out.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import pwd
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import pytest_asyncio
from kubernetes import client as kube
from kubernetes.client.exceptions import ApiException
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig
from prometheus_client.parser import text_string_to_metric_families
from psycopg import sql

from conftest import free_port, install_crd
from datarch.claims import API_GROUP, API_VERSION, PLURAL

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

REPO = Path(__file__).resolve().parents[2]
DATARCH = Path(sys.executable).parent / "datarch"
INTERVAL = "2s"


# --------------------------------------------------------------------------- waiting


async def eventually(check: Callable[[], Any], what: str, timeout: float = 45.0) -> Any:
    """Poll `check` until it returns something truthy; fail saying `what` did not happen."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await asyncio.to_thread(check)
        if last:
            return last
        await asyncio.sleep(0.3)
    pytest.fail(f"within {timeout:g}s: {what} (last seen: {last!r})")


# --------------------------------------------------------------------------- the operator


@dataclass
class Operator:
    """One `datarch operator` process watching one namespace."""

    namespace: str
    log_path: Path
    metrics_port: int = field(default_factory=free_port)
    health_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def start(self, as_uid: int | None = None) -> None:
        """Start it; `as_uid`: as that uid and gid (in a user namespace of its own, mapped to
        this process's user, so files stay readable) with nothing naming a user in its
        environment, as the image runs it (USER 65532:65532, no passwd entry)."""
        log = self.log_path.open("ab")
        environment = {
            **os.environ,
            "DATARCH_METRICS_HOST": "127.0.0.1",
            "DATARCH_HEALTH_HOST": "127.0.0.1",
        }
        prefix: list[str] = []
        if as_uid is not None:
            for name in ("USER", "LOGNAME", "LNAME", "USERNAME"):  # getpass.getuser() reads these
                environment.pop(name, None)
            prefix = ["unshare", "--user", f"--map-user={as_uid}", f"--map-group={as_uid}", "--"]
        self.process = subprocess.Popen(
            [
                *prefix,
                str(DATARCH),
                "operator",
                "--namespace",
                self.namespace,
                "--metrics-port",
                str(self.metrics_port),
                "--health-port",
                str(self.health_port),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=environment,
            cwd=REPO,
        )
        log.close()

    async def ready(self) -> None:
        await eventually(self.healthy, "the operator to answer /healthz", timeout=60)

    def healthy(self) -> dict[str, Any] | None:
        assert self.process is not None
        if self.process.poll() is not None:
            pytest.fail(f"the operator exited with {self.process.returncode}:\n{self.log()}")
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.health_port}/healthz", timeout=2
            ) as r:
                result: dict[str, Any] = json.load(r)
                return result
        except OSError:
            return None

    def metrics(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5
        ) as r:
            text = r.read().decode()
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def kill(self) -> None:
        """SIGKILL: no cleanup handler runs, as when a node dies."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]


@pytest.fixture(scope="session")
def crd_installed(kube_api: kube.ApiClient) -> None:
    """The CRD exactly as `datarch crd` prints it, created or replaced, and established."""
    install_crd(kube_api)


@pytest.fixture
def operator(kube_namespace: str, crd_installed: None, tmp_path: Path) -> Iterator[Operator]:
    process = Operator(kube_namespace, tmp_path / "operator.log")
    try:
        yield process
    finally:
        process.stop()
        if process.log_path.exists():
            print(f"--- operator log (tail) ---\n{process.log()}")  # shown when the test fails


# --------------------------------------------------------------------------- claims


class Claims:
    """The claims, Secrets and Events of one namespace, through the real API server."""

    def __init__(self, api: kube.ApiClient, namespace: str) -> None:
        # Any: the client takes plain dicts as bodies, though its annotations name models.
        self.custom: Any = kube.CustomObjectsApi(api)
        self.core: Any = kube.CoreV1Api(api)
        self.namespace = namespace

    def apply(self, name: str, spec: dict[str, Any]) -> None:
        body = {
            "apiVersion": f"{API_GROUP}/{API_VERSION}",
            "kind": "DataArchitectureClaim",
            "metadata": {"name": name},
            "spec": spec,
        }
        try:
            self.custom.create_namespaced_custom_object(
                API_GROUP, API_VERSION, self.namespace, PLURAL, body
            )
        except ApiException as error:
            if error.status != 409:
                raise
            self.custom.patch_namespaced_custom_object(
                API_GROUP, API_VERSION, self.namespace, PLURAL, name, {"spec": spec}
            )

    def patch_spec(self, name: str, spec: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(
            API_GROUP, API_VERSION, self.namespace, PLURAL, name, {"spec": spec}
        )

    def get(self, name: str) -> dict[str, Any]:
        claim: dict[str, Any] = self.custom.get_namespaced_custom_object(
            API_GROUP, API_VERSION, self.namespace, PLURAL, name
        )
        return claim

    def exists(self, name: str) -> bool:
        try:
            self.get(name)
        except ApiException as error:
            if error.status == 404:
                return False
            raise
        return True

    def delete(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object(
            API_GROUP, API_VERSION, self.namespace, PLURAL, name
        )

    def condition(self, name: str, kind: str) -> dict[str, Any]:
        for item in (self.get(name).get("status") or {}).get("conditions") or ():
            if item["type"] == kind:
                result: dict[str, Any] = item
                return result
        return {}

    async def wait(
        self, name: str, kind: str, status: str, timeout: float = 45.0
    ) -> dict[str, Any]:
        """Wait for condition `kind` of claim `name` to have `status`; fail showing all of them."""
        deadline = time.monotonic() + timeout
        conditions: Any = None
        while time.monotonic() < deadline:
            claim = await asyncio.to_thread(self.get, name)
            conditions = (claim.get("status") or {}).get("conditions") or []
            for condition in conditions:
                if condition["type"] == kind and condition["status"] == status:
                    result: dict[str, Any] = condition
                    return result
            await asyncio.sleep(0.3)
        pytest.fail(
            f"within {timeout:g}s: {name} {kind}={status} never came; conditions: {conditions!r}"
        )

    def events(self, name: str) -> list[Any]:
        return list(
            self.core.list_namespaced_event(
                self.namespace, field_selector=f"involvedObject.name={name}"
            ).items
        )

    def secret(self, name: str, data: dict[str, str]) -> None:
        encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
        body = {"metadata": {"name": name}, "data": encoded}
        try:
            self.core.create_namespaced_secret(self.namespace, body)
        except ApiException as error:
            if error.status != 409:
                raise
            self.core.replace_namespaced_secret(name, self.namespace, body)


@pytest.fixture
def claims(kube_api: kube.ApiClient, kube_namespace: str, crd_installed: None) -> Claims:
    return Claims(kube_api, kube_namespace)


# --------------------------------------------------------------------------- S3 behind a switch


class TcpForwarder:
    """127.0.0.1:port -> the dev S3 server. Stopping it is stopping the S3 server, as far as
    the operator can tell, without disturbing the shared server other suites use."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.port = free_port()
        self._server: socketserver.ThreadingTCPServer | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        forwarder = self

        class Pipe(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                try:
                    upstream = socket.create_connection(forwarder.upstream, timeout=5)
                except OSError:
                    return
                with forwarder._lock:
                    forwarder._sockets.update((self.request, upstream))
                pump = threading.Thread(
                    target=forwarder.pump, args=(upstream, self.request), daemon=True
                )
                pump.start()
                forwarder.pump(self.request, upstream)
                pump.join()

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", self.port), Pipe)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def pump(self, source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                target.sendall(data)
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                    sock.close()
            self._sockets.clear()

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"


# --------------------------------------------------------------------------- the platform


@dataclass
class Platform:
    """One small real platform: a table with an index, a collection with an index, a stream
    with a consumer, a bucket (reached through a forwarder) and a Redis database."""

    pg: Any
    mongo: Any
    nats: Any
    s3: Any
    redis: Any
    s3_forwarder: TcpForwarder

    @property
    def stream(self) -> str:
        return f"{self.nats.prefix}EVENTS"

    def spec(self, **overrides: Any) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "interval": INTERVAL,
            "timeout": "3s",
            "stores": [
                {
                    "name": "main",
                    "kind": "postgres",
                    "connection": {"secretRef": {"name": "pg-readonly"}},
                    "postgres": {
                        "database": self.pg.name,
                        "schemas": [
                            {
                                "name": "public",
                                "tables": [
                                    {
                                        "name": "users",
                                        "columns": [
                                            {"name": "id", "type": "uuid", "nullable": False},
                                            {"name": "org_id", "type": "integer"},
                                        ],
                                        "primaryKey": ["id"],
                                        "indexes": [
                                            {"name": "users_org_idx", "columns": ["org_id"]}
                                        ],
                                    }
                                ],
                            }
                        ],
                    },
                },
                {
                    "name": "runtime",
                    "kind": "mongodb",
                    "connection": {"secretRef": {"name": "mongo-readonly"}},
                    "mongodb": {
                        "databases": [
                            {
                                "name": self.mongo.name,
                                "collections": [
                                    {
                                        "name": "bots",
                                        "indexes": [{"keys": [{"field": "user_id", "order": 1}]}],
                                    }
                                ],
                            }
                        ]
                    },
                },
                {
                    "name": "events",
                    "kind": "nats",
                    "connection": {"secretRef": {"name": "nats-readonly"}},
                    "nats": {
                        "streams": [
                            {
                                "name": self.stream,
                                "subjects": [f"{self.nats.subject_prefix}.>"],
                                "maxAge": "1h",
                                "consumers": [{"name": "worker", "ackPolicy": "explicit"}],
                            }
                        ]
                    },
                },
                {
                    "name": "objects",
                    "kind": "s3",
                    "connection": {
                        "endpoint": self.s3_forwarder.endpoint,
                        "secure": False,
                        "secretRef": {"name": "s3-readonly"},
                    },
                    "s3": {"buckets": [{"name": self.s3.name}]},
                },
                {"name": "cache", "kind": "redis", "connection": {"secretRef": {"name": "redis"}}},
            ],
        }
        spec.update(overrides)
        return spec


@pytest_asyncio.fixture
async def platform(
    *,
    pg_database: Any,
    mongo_database: Any,
    nats_js: Any,
    s3_bucket: Any,
    redis_db: Any,
    claims: Claims,
) -> AsyncIterator[Platform]:
    with psycopg.connect(pg_database.dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE users (id uuid PRIMARY KEY, org_id integer)")
        conn.execute("CREATE INDEX users_org_idx ON users (org_id)")
    mongo_database["bots"].create_index([("user_id", 1)])
    await nats_js.js.add_stream(
        StreamConfig(
            name=f"{nats_js.prefix}EVENTS",
            subjects=[f"{nats_js.subject_prefix}.>"],
            max_age=3600,
        )
    )
    await nats_js.js.add_consumer(
        f"{nats_js.prefix}EVENTS",
        ConsumerConfig(durable_name="worker", ack_policy=AckPolicy.EXPLICIT),
    )
    for i in range(5):  # a consumer with something pending, for the lag metrics
        await nats_js.js.publish(f"{nats_js.subject_prefix}.created", f"event {i}".encode())
    forwarder = TcpForwarder(os.environ["DATARCH_S3_ENDPOINT"])
    forwarder.start()
    claims.secret("pg-readonly", {"dsn": pg_database.ro_dsn})
    claims.secret("mongo-readonly", {"uri": os.environ["DATARCH_MONGO_URI"]})
    claims.secret("nats-readonly", {"url": nats_js.ro_url})
    claims.secret(
        "s3-readonly",
        {
            "accessKey": os.environ["DATARCH_S3_RO_ACCESS_KEY"],
            "secretKey": os.environ["DATARCH_S3_RO_SECRET_KEY"],
        },
    )
    claims.secret("redis", {"url": redis_db.url})
    try:
        yield Platform(pg_database, mongo_database, nats_js, s3_bucket, redis_db, forwarder)
    finally:
        forwarder.stop()


def labels(namespace: str, claim: str, **more: str) -> frozenset[tuple[str, str]]:
    return frozenset({"claim_namespace": namespace, "claim": claim, **more}.items())


def event_messages(claims: Claims, name: str) -> list[tuple[str, str, str]]:
    return [(e.type, e.reason, e.message) for e in claims.events(name)]


# --------------------------------------------------------------------------- the scenarios


async def test_a_claim_matching_the_real_stores_becomes_ready_with_metrics_and_one_event(
    platform: Platform, claims: Claims, operator: Operator
) -> None:
    claims.apply("platform", platform.spec())
    operator.start()
    await operator.ready()
    ready = await claims.wait("platform", "Ready", "True")
    assert ready["reason"] == "Verified"
    status = claims.get("platform")["status"]
    assert status["summary"]["stores"] == "5/5"
    assert status["summary"]["findings"] == 0
    assert status["observedGeneration"] == claims.get("platform")["metadata"]["generation"]
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "Ready": "True",
        "StoresReachable": "True",
        "Conforming": "True",
        "BackupsFresh": "True",
    }
    samples = operator.metrics()
    ns = operator.namespace
    assert samples[("datarch_claim_conforming", labels(ns, "platform"))] == 1
    for store, kind in (
        ("main", "postgres"),
        ("runtime", "mongodb"),
        ("events", "nats"),
        ("objects", "s3"),
        ("cache", "redis"),
    ):
        assert samples[("datarch_store_up", labels(ns, "platform", store=store, kind=kind))] == 1
    consumer = labels(ns, "platform", store="events", stream=platform.stream, consumer="worker")
    assert samples[("datarch_nats_consumer_num_pending", consumer)] == 5
    assert samples[("datarch_verifications_total", labels(ns, "platform", result="ok"))] >= 1
    events = await eventually(lambda: event_messages(claims, "platform"), "the Ready Event")
    assert [(kind, reason) for kind, reason, _ in events] == [("Normal", "Verified")]
    claim = claims.get("platform")
    assert claim["metadata"].get("finalizers") is None  # deletable while the operator is down
    assert not any(k.startswith("kopf") for k in claim["metadata"].get("annotations") or {})


def uid_without_passwd_entry() -> int:
    """The image's uid, or the next one below it that this host has no passwd entry for."""
    for uid in range(65532, 60000, -1):
        try:
            pwd.getpwuid(uid)
        except KeyError:
            return uid
    raise AssertionError("every uid from 60001 to 65532 has a passwd entry")


async def test_the_operator_verifies_as_a_uid_without_a_passwd_entry(
    platform: Platform, claims: Claims, operator: Operator
) -> None:
    """The image runs as 65532:65532, a uid that neither it nor python:3.11-slim has in
    /etc/passwd; kopf's default identity (getpass.getuser()) crashed the pod at start-up
    on every cluster. Here the installed operator runs as such a uid (a user namespace
    maps it); the node tier (tests/node) runs the image itself under the chart's
    securityContext, on a read-only root filesystem."""
    claims.apply("platform", platform.spec())
    operator.start(as_uid=uid_without_passwd_entry())
    await operator.ready()
    ready = await claims.wait("platform", "Ready", "True")
    assert ready["reason"] == "Verified"
    assert claims.get("platform")["status"]["summary"]["stores"] == "5/5"


async def test_dropping_an_index_is_a_finding_and_an_event_until_the_index_is_back(
    platform: Platform, claims: Claims, operator: Operator
) -> None:
    claims.apply("platform", platform.spec())
    operator.start()
    await claims.wait("platform", "Ready", "True")
    with psycopg.connect(platform.pg.dsn, autocommit=True) as conn:
        conn.execute("DROP INDEX users_org_idx")

    conforming = await claims.wait("platform", "Conforming", "False")
    assert conforming["reason"] == "FindingsPresent"
    assert conforming["message"].startswith("1 finding in main: main/public.users.indexes")
    assert claims.condition("platform", "Ready")["status"] == "False"
    assert claims.condition("platform", "StoresReachable")["status"] == "True"
    findings = claims.get("platform")["status"]["findings"]
    assert [(f["path"], f["kind"]) for f in findings] == [
        ("main/public.users.indexes.users_org_idx", "missing")
    ]
    warnings = await eventually(
        lambda: [e for e in event_messages(claims, "platform") if e[0] == "Warning"],
        "a Warning Event",
    )
    assert warnings == [
        ("Warning", "FindingsPresent", "Conforming True->False: " + conforming["message"])
    ]
    samples = operator.metrics()
    assert samples[("datarch_claim_conforming", labels(operator.namespace, "platform"))] == 0
    assert (
        samples[
            (
                "datarch_findings",
                labels(
                    operator.namespace, "platform", store="main", severity=findings[0]["severity"]
                ),
            )
        ]
        == 1
    )

    with psycopg.connect(platform.pg.dsn, autocommit=True) as conn:
        conn.execute("CREATE INDEX users_org_idx ON users (org_id)")
    await claims.wait("platform", "Ready", "True")
    assert claims.get("platform")["status"]["findings"] == []
    await eventually(
        lambda: (
            ("Normal", "NoFindings") in {(t, r) for t, r, _ in event_messages(claims, "platform")}
        ),
        "the Conforming False->True Event",
    )


async def test_changing_a_streams_max_age_is_a_finding_on_the_nats_store(
    platform: Platform, claims: Claims, operator: Operator
) -> None:
    claims.apply("platform", platform.spec())
    operator.start()
    await claims.wait("platform", "Ready", "True")
    config = StreamConfig(
        name=platform.stream, subjects=[f"{platform.nats.subject_prefix}.>"], max_age=7200
    )
    await platform.nats.js.update_stream(config)

    conforming = await claims.wait("platform", "Conforming", "False")
    assert conforming["message"].startswith(f"1 finding in events: events/{platform.stream}.")
    [finding] = claims.get("platform")["status"]["findings"]
    assert finding["path"] == f"events/{platform.stream}.maxAge"
    assert (finding["expected"], finding["observed"]) == ("1h", "2h")

    await platform.nats.js.update_stream(
        StreamConfig(
            name=platform.stream, subjects=[f"{platform.nats.subject_prefix}.>"], max_age=3600
        )
    )
    await claims.wait("platform", "Ready", "True")


async def test_stopping_the_s3_server_makes_stores_unreachable_and_conforming_unknown(
    platform: Platform, claims: Claims, operator: Operator
) -> None:
    claims.apply("platform", platform.spec())
    operator.start()
    await claims.wait("platform", "Ready", "True")
    platform.s3_forwarder.stop()

    reachable = await claims.wait("platform", "StoresReachable", "False")
    assert reachable["reason"] in ("StoreUnreachable", "StoreTimeout")
    assert reachable["message"].startswith("1 of 5 stores not checked: objects: ")
    conforming = claims.condition("platform", "Conforming")
    assert (conforming["status"], conforming["reason"]) == ("Unknown", "StoresNotChecked")
    assert claims.get("platform")["status"]["summary"]["stores"] == "4/5"
    samples = operator.metrics()
    ns = operator.namespace
    assert samples[("datarch_store_up", labels(ns, "platform", store="objects", kind="s3"))] == 0
    assert ("datarch_claim_conforming", labels(ns, "platform")) not in samples  # unknown: absent
    warnings = await eventually(
        lambda: {(t, r) for t, r, _ in event_messages(claims, "platform") if t == "Warning"},
        "Warning Events",
    )
    assert (("Warning", reachable["reason"])) in warnings

    platform.s3_forwarder.start()
    await claims.wait("platform", "Ready", "True")


async def test_deleting_a_claim_removes_every_one_of_its_metric_series(
    platform: Platform, claims: Claims, operator: Operator
) -> None:
    claims.apply("platform", platform.spec())
    claims.apply("other", platform.spec(stores=platform.spec()["stores"][:1]))
    operator.start()
    await claims.wait("platform", "Ready", "True")
    await claims.wait("other", "Ready", "True")

    def claim_series(name: str) -> list[str]:
        return [metric for metric, found in operator.metrics() if dict(found).get("claim") == name]

    assert len(claim_series("platform")) > 20
    claims.delete("platform")
    assert not claims.exists("platform")  # no finalizer held it
    await eventually(
        lambda: not claim_series("platform"), "the deleted claim's series to disappear"
    )
    assert claim_series("other")


async def test_a_suspended_claim_is_not_verified_until_it_is_resumed(
    platform: Platform, claims: Claims, operator: Operator
) -> None:
    claims.apply("platform", platform.spec(suspend=True))
    operator.start()
    await operator.ready()
    await asyncio.sleep(5)  # more than two intervals
    assert "status" not in claims.get("platform")
    assert not [k for k in operator.metrics() if dict(k[1]).get("claim") == "platform"]

    claims.patch_spec("platform", {"suspend": False})
    await claims.wait("platform", "Ready", "True")

    def passes() -> float:
        return operator.metrics().get(
            ("datarch_verification_duration_seconds_count", labels(operator.namespace, "platform")),
            0,
        )

    claims.patch_spec("platform", {"suspend": True})
    await asyncio.sleep(1)  # a pass already running may finish
    before = passes()
    assert before >= 1  # the series is there to count passes with, not a default 0
    await asyncio.sleep(5)
    assert passes() == before


async def test_a_rotated_secret_is_used_without_restarting_the_operator(
    platform: Platform, claims: Claims, operator: Operator, pg_admin: psycopg.Connection
) -> None:
    role = f"rotating_{operator.namespace.replace('-', '_')}"
    pg_admin.execute(
        sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'first-password'").format(sql.Identifier(role))
    )
    pg_admin.execute(sql.SQL("GRANT pg_read_all_data TO {}").format(sql.Identifier(role)))

    def dsn(password: str) -> str:
        parts = urlsplit(str(platform.pg.ro_dsn))
        return urlunsplit(parts._replace(netloc=f"{role}:{password}@{parts.hostname}:{parts.port}"))

    try:
        claims.secret("pg-readonly", {"dsn": dsn("first-password")})
        claims.apply("platform", platform.spec())
        operator.start()
        await claims.wait("platform", "Ready", "True")

        pg_admin.execute(
            sql.SQL("ALTER ROLE {} PASSWORD 'second-password'").format(sql.Identifier(role))
        )
        pg_admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", [role]
        )
        denied = await claims.wait("platform", "StoresReachable", "False")
        assert denied["reason"] == "AccessDenied"
        assert "first-password" not in json.dumps(claims.get("platform")["status"])

        claims.secret("pg-readonly", {"dsn": dsn("second-password")})
        await claims.wait("platform", "Ready", "True")
        assert "second-password" not in operator.log()
    finally:
        pg_admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", [role]
        )
        pg_admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


@pytest.mark.parametrize(
    ("spec", "complaint"),
    [
        ({"stores": [{"name": "main", "kind": "oracle"}]}, "spec.stores[0].kind"),
        (
            {"stores": [{"name": "a", "kind": "redis"}, {"name": "a", "kind": "redis"}]},
            "store names must be unique",
        ),
        (
            {"interval": "every day", "stores": [{"name": "a", "kind": "redis"}]},
            "must be a duration",
        ),
        (
            {"stores": [{"name": "a", "kind": "redis", "postgres": {}}]},
            "postgres is only allowed when kind is postgres",
        ),
        (
            {
                "stores": [{"name": "a", "kind": "redis"}],
                "backups": [{"name": "b", "store": "nowhere", "cronJob": {"name": "c"}}],
            },
            "every backup's store must name a store of this claim",
        ),
    ],
)
def test_the_api_server_rejects_an_invalid_claim(
    claims: Claims, spec: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(ApiException) as refused:
        claims.apply("invalid", spec)
    assert refused.value.status == 422
    assert complaint in str(refused.value.body)
    assert not claims.exists("invalid")


class Blackhole:
    """Accepts connections and never answers: a store that hangs a pass until its timeout."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.accepted = threading.Event()
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                connection, _ = self.server.accept()
                self.held.append(connection)
                self.accepted.set()

    def close(self) -> None:
        for sock in [*self.held, self.server]:
            sock.close()


async def test_an_operator_killed_mid_pass_leaves_nothing_stuck(
    platform: Platform, claims: Claims, operator: Operator
) -> None:
    blackhole = Blackhole()
    try:
        hanging = {
            "name": "hanging",
            "kind": "redis",
            "connection": {"url": f"redis://127.0.0.1:{blackhole.port}/0"},
        }
        claims.apply("platform", platform.spec())
        claims.apply("hanging", platform.spec(timeout="5s", stores=[hanging]))
        operator.start()
        await claims.wait("platform", "Ready", "True")
        await eventually(blackhole.accepted.is_set, "a pass to be waiting on the hanging store")
        operator.kill()

        for name in ("platform", "hanging"):
            metadata = claims.get(name)["metadata"]
            assert metadata.get("finalizers") is None
            assert not any(k.startswith("kopf") for k in metadata.get("annotations") or {})
        claims.delete("platform")  # the operator is down: nothing may hold the deletion
        assert not claims.exists("platform")

        operator.start()
        await operator.ready()
        reachable = await claims.wait("hanging", "StoresReachable", "False")
        assert reachable["reason"] == "StoreTimeout"
        assert claims.condition("hanging", "Conforming")["status"] == "Unknown"
        assert not [k for k in operator.metrics() if dict(k[1]).get("claim") == "platform"]
    finally:
        blackhole.close()


async def test_a_restart_posts_no_event_again_and_a_spec_change_is_verified_at_once(
    platform: Platform, claims: Claims, operator: Operator
) -> None:
    # interval 1h: any pass after the first comes from the restart or the spec change alone.
    claims.apply("platform", platform.spec(interval="1h"))
    operator.start()
    ready = await claims.wait("platform", "Ready", "True")
    await eventually(lambda: event_messages(claims, "platform"), "the Ready Event")

    operator.stop()
    operator.start()
    await eventually(
        lambda: ((operator.healthy() or {}).get("datarch") or {}).get("passes", 0) >= 1,
        "a pass after the restart",
    )
    await asyncio.sleep(1)  # Events of that pass, if any, are posted right after its patch
    assert [(t, r) for t, r, _ in event_messages(claims, "platform")] == [("Normal", "Verified")]
    assert (
        claims.condition("platform", "Ready")["lastTransitionTime"] == (ready["lastTransitionTime"])
    )

    spec = platform.spec(interval="1h")
    table = spec["stores"][0]["postgres"]["schemas"][0]["tables"][0]
    table["indexes"].append({"name": "users_missing_idx", "columns": ["id", "org_id"]})
    claims.patch_spec("platform", {"stores": spec["stores"]})
    generation = claims.get("platform")["metadata"]["generation"]
    conforming = await claims.wait("platform", "Conforming", "False", timeout=30)
    assert "users_missing_idx" in conforming["message"]
    status = claims.get("platform")["status"]
    assert status["observedGeneration"] == generation
    assert {c["observedGeneration"] for c in status["conditions"]} == {generation}


async def test_credentials_appear_in_no_status_event_metric_or_log_line(
    platform: Platform, claims: Claims, operator: Operator, tmp_path: Path
) -> None:
    password = "Zq9distinctivePW41x"
    parts = urlsplit(str(platform.pg.ro_dsn))
    wrong = urlunsplit(
        parts._replace(netloc=f"{parts.username}:{password}@{parts.hostname}:{parts.port}")
    )
    claims.secret("pg-readonly", {"dsn": wrong})
    claims.secret("mongo-readonly", {"not-uri": f"mongodb://u:{password}@127.0.0.1:1/"})
    spec = platform.spec()
    spec["stores"][3]["connection"]["secretRef"] = {"name": "no-such-secret"}
    dead = {
        "name": "dead",
        "kind": "redis",
        "connection": {"url": "redis://127.0.0.1:1/0"},
    }
    spec["stores"].append(dead)
    claims.apply("platform", spec)
    operator.log_path.write_text("")
    os.environ["DATARCH_LOG_LEVEL"] = "DEBUG"  # the chattiest the operator gets
    try:
        operator.start()
    finally:
        del os.environ["DATARCH_LOG_LEVEL"]
    reachable = await claims.wait("platform", "StoresReachable", "False")
    assert reachable["reason"] == "StoresUnreachable"
    stores = {s["name"]: s for s in claims.get("platform")["status"]["stores"]}
    assert stores["main"]["message"].startswith("AccessDenied: ")
    assert stores["runtime"]["message"].startswith("SecretUnavailable: ")
    assert "has no key 'uri'" in stores["runtime"]["message"]
    assert stores["objects"]["message"].startswith("SecretUnavailable: ")
    assert "not found" in stores["objects"]["message"]
    assert stores["dead"]["message"].startswith("StoreUnreachable: ")
    assert claims.condition("platform", "Conforming")["status"] == "Unknown"
    await eventually(lambda: event_messages(claims, "platform"), "Warning Events")
    await asyncio.sleep(3)  # another pass or two, logged too
    everything = "\n".join(
        [
            json.dumps(claims.get("platform")),
            repr(event_messages(claims, "platform")),
            repr(operator.metrics()),
            operator.log_path.read_text(errors="replace"),
        ]
    )
    assert password not in everything
