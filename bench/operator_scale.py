"""The operator at scale: 200 claims of 5 stores each, verified by the real `datarch operator`.

    make bench            # or, with `make -s env-vars` exported: .venv/bin/python bench/operator_scale.py

Prints the time of a full round (cold, then steady), the store clients opened
(against the distinct endpoints the claims name), the operator's peak RSS, and
the status patches and Events of a round in which nothing changed. Everything is
measured from outside the process: claims and Events through the API server,
passes through /metrics, clients through /healthz, memory through /proc.
Environment: DATARCH_BENCH_CLAIMS (200), DATARCH_BENCH_INTERVAL (10s).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nats
import psycopg
from kubernetes import client as kube
from kubernetes import config as kube_config
from kubernetes.client.exceptions import ApiException
from minio import Minio
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from psycopg import sql
from pymongo import MongoClient

from datarch.claims import API_GROUP, API_VERSION, PLURAL
from datarch.crd import crd

CLAIMS = int(os.environ.get("DATARCH_BENCH_CLAIMS", "200"))
INTERVAL = os.environ.get("DATARCH_BENCH_INTERVAL", "10s")
STORES = 5
RSS_TARGET_MIB = 200
REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "bench" / ".work"


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        sys.exit(
            f"bench: {name} is not set; run `make bench` (it starts and exports the dev servers)"
        )
    return value


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait(check: Callable[[], Any], what: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.5)
    sys.exit(f"bench: within {timeout:g}s: {what}")


class Bench:
    """Names of its own on every server, so it runs beside the test suites."""

    def __init__(self) -> None:
        token = uuid.uuid4().hex[:10]
        self.namespace = f"bench-{token}"
        self.database = f"bench_{token}"
        self.stream = f"BENCH_{token}"
        self.bucket = f"bench-{token}"
        self.api = kube_config.new_client_from_config(config_file=env("KUBECONFIG"))  # type: ignore[no-untyped-call]
        # Any: the client takes plain dicts as bodies, though its annotations name models.
        self.core: Any = kube.CoreV1Api(self.api)
        self.custom: Any = kube.CustomObjectsApi(self.api)
        self.s3 = Minio(
            env("DATARCH_S3_ENDPOINT"),
            access_key=env("DATARCH_S3_ACCESS_KEY"),
            secret_key=env("DATARCH_S3_SECRET_KEY"),
            secure=False,
        )

    # --- the platform ---------------------------------------------------------------

    def seed(self) -> None:
        with psycopg.connect(env("DATARCH_PG_DSN"), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))
        with psycopg.connect(self.pg_dsn(env("DATARCH_PG_DSN")), autocommit=True) as conn:
            conn.execute("CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL)")
        mongo: MongoClient[dict[str, Any]] = MongoClient(env("DATARCH_MONGO_URI"))
        mongo[self.database]["items"].create_index([("name", 1)])
        mongo.close()
        asyncio.run(self._seed_stream())
        self.s3.make_bucket(self.bucket)

    async def _seed_stream(self) -> None:
        connection = await nats.connect(env("DATARCH_NATS_URL"))
        await connection.jetstream().add_stream(
            name=self.stream, subjects=[f"{self.stream.lower()}.>"]
        )
        await connection.close()

    def pg_dsn(self, dsn: str) -> str:
        return f"{dsn.rsplit('/', 1)[0]}/{self.database}"

    def pg_sessions(self) -> int:
        """Sessions ever established to the bench database (pg_stat_database, PostgreSQL 14+)."""
        with psycopg.connect(env("DATARCH_PG_DSN"), autocommit=True) as conn:
            row = conn.execute(
                "SELECT sessions FROM pg_stat_database WHERE datname = %s", [self.database]
            ).fetchone()
        return int(row[0]) if row else 0

    def cleanup(self) -> None:
        with psycopg.connect(env("DATARCH_PG_DSN"), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(self.database)
                )
            )
        mongo: MongoClient[dict[str, Any]] = MongoClient(env("DATARCH_MONGO_URI"))
        mongo.drop_database(self.database)
        mongo.close()
        asyncio.run(self._drop_stream())
        if self.s3.bucket_exists(self.bucket):
            self.s3.remove_bucket(self.bucket)
        self._delete_namespace()
        self.api.close()

    async def _drop_stream(self) -> None:
        connection = await nats.connect(env("DATARCH_NATS_URL"))
        await connection.jetstream().delete_stream(self.stream)
        await connection.close()

    def _delete_namespace(self) -> None:
        """Empty it and release its finalizer: no namespace controller runs locally."""
        self.custom.delete_collection_namespaced_custom_object(
            API_GROUP, API_VERSION, self.namespace, PLURAL
        )
        self.core.delete_collection_namespaced_secret(self.namespace)
        self.core.delete_collection_namespaced_event(self.namespace)
        self.core.delete_namespace(self.namespace)
        try:
            namespace = self.core.read_namespace(self.namespace)
        except ApiException:
            return
        namespace.spec.finalizers = []
        self.core.replace_namespace_finalize(self.namespace, namespace)

    # --- the claims -------------------------------------------------------------------

    def install_crd(self) -> None:
        extensions: Any = kube.ApiextensionsV1Api(self.api)
        body = crd()
        try:
            extensions.create_custom_resource_definition(body)
        except ApiException as error:
            if error.status != 409:
                raise
            current = extensions.read_custom_resource_definition(body["metadata"]["name"])
            body["metadata"]["resourceVersion"] = current.metadata.resource_version
            extensions.replace_custom_resource_definition(body["metadata"]["name"], body)

    def create_claims(self) -> None:
        self.core.create_namespace({"metadata": {"name": self.namespace}})
        secrets = {
            "pg-readonly": {"dsn": self.pg_dsn(env("DATARCH_PG_RO_DSN"))},
            "mongo-readonly": {"uri": env("DATARCH_MONGO_URI")},
            "nats-readonly": {"url": env("DATARCH_NATS_RO_URL")},
            "s3-readonly": {
                "accessKey": env("DATARCH_S3_RO_ACCESS_KEY"),
                "secretKey": env("DATARCH_S3_RO_SECRET_KEY"),
            },
            "redis": {"url": env("DATARCH_REDIS_URL")},
        }
        for name, data in secrets.items():
            self.core.create_namespaced_secret(
                self.namespace, {"metadata": {"name": name}, "stringData": data}
            )
        spec = {
            "interval": INTERVAL,
            "timeout": "20s",
            "stores": [
                {
                    "name": "main",
                    "kind": "postgres",
                    "connection": {"secretRef": {"name": "pg-readonly"}},
                    "postgres": {
                        "database": self.database,
                        "schemas": [
                            {
                                "name": "public",
                                "tables": [
                                    {
                                        "name": "items",
                                        "columns": [
                                            {"name": "id", "type": "bigint", "nullable": False},
                                            {"name": "name", "type": "text"},
                                        ],
                                        "primaryKey": ["id"],
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
                                "name": self.database,
                                "collections": [
                                    {"name": "items", "indexes": [{"keys": [{"field": "name"}]}]}
                                ],
                            }
                        ]
                    },
                },
                {
                    "name": "events",
                    "kind": "nats",
                    "connection": {"secretRef": {"name": "nats-readonly"}},
                    "nats": {"streams": [{"name": self.stream, "storage": "file"}]},
                },
                {
                    "name": "objects",
                    "kind": "s3",
                    "connection": {
                        "endpoint": env("DATARCH_S3_ENDPOINT"),
                        "secure": False,
                        "secretRef": {"name": "s3-readonly"},
                    },
                    "s3": {"buckets": [{"name": self.bucket}]},
                },
                {
                    "name": "cache",
                    "kind": "redis",
                    "connection": {"secretRef": {"name": "redis"}},
                    "version": ">=7",
                },
            ],
        }
        assert len(spec["stores"]) == STORES
        for n in range(CLAIMS):
            body = {
                "apiVersion": f"{API_GROUP}/{API_VERSION}",
                "kind": "DataArchitectureClaim",
                "metadata": {"name": f"claim-{n:03}"},
                "spec": spec,
            }
            self.custom.create_namespaced_custom_object(
                API_GROUP, API_VERSION, self.namespace, PLURAL, body
            )

    def claims(self) -> list[dict[str, Any]]:
        listed = self.custom.list_namespaced_custom_object(
            API_GROUP, API_VERSION, self.namespace, PLURAL
        )
        items: list[dict[str, Any]] = listed["items"]
        return items

    def events(self) -> int:
        return len(self.core.list_namespaced_event(self.namespace).items)


class Operator:
    def __init__(self, namespace: str) -> None:
        self.metrics_port, self.health_port = free_port(), free_port()
        WORK.mkdir(parents=True, exist_ok=True)
        self.log = WORK / "operator_scale.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "datarch"),
                    "operator",
                    "--namespace",
                    namespace,
                    "--metrics-port",
                    str(self.metrics_port),
                    "--health-port",
                    str(self.health_port),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={
                    **os.environ,
                    "DATARCH_METRICS_HOST": "127.0.0.1",
                    "DATARCH_HEALTH_HOST": "127.0.0.1",
                },
            )

    def samples(self, family_name: str) -> list[Sample]:
        """One scrape of /metrics: the samples of one metric family."""
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=30
        ) as r:
            text = r.read().decode()
        return [
            sample
            for family in text_string_to_metric_families(text)
            if family.name == family_name
            for sample in family.samples
        ]

    def passes(self) -> dict[str, float]:
        """Per claim, the passes finished so far (the duration histogram's count)."""
        return {
            sample.labels["claim"]: sample.value
            for sample in self.samples("datarch_verification_duration_seconds")
            if sample.name.endswith("_count")
        }

    def first_round_spread(self) -> float:
        """From the first pass's end to the last's, while each claim has had one pass."""
        ends = [s.value for s in self.samples("datarch_last_verification_timestamp_seconds")]
        return max(ends) - min(ends) if ends else float("nan")

    def mean_pass_seconds(self) -> float:
        total = count = 0.0
        for sample in self.samples("datarch_verification_duration_seconds"):
            if sample.name.endswith("_sum"):
                total += sample.value
            elif sample.name.endswith("_count"):
                count += sample.value
        return total / count if count else 0.0

    def health(self) -> dict[str, int]:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.health_port}/healthz", timeout=10
        ) as r:
            counts: dict[str, int] = json.load(r)["datarch"]
        return counts

    def peak_rss_mib(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def alive(self) -> bool:
        if self.process.poll() is not None:
            sys.exit(f"bench: the operator exited; see {self.log}")
        return True

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def main() -> None:
    bench = Bench()
    operator: Operator | None = None
    try:
        bench.install_crd()
        bench.seed()
        bench.create_claims()
        sessions_before = bench.pg_sessions()  # the seeding's own sessions are not the operator's
        started = time.monotonic()
        operator = Operator(bench.namespace)
        op = operator

        def all_verified_once() -> bool:
            op.alive()
            try:
                return len(op.passes()) == CLAIMS
            except OSError:
                return False

        wait(all_verified_once, f"all {CLAIMS} claims verified once", 600)
        cold = time.monotonic() - started
        wait(
            lambda: all("status" in c for c in bench.claims()), "every claim's status written", 120
        )
        sessions_after_cold = bench.pg_sessions() - sessions_before
        spread = operator.first_round_spread()

        # A steady round in which nothing changes: every claim verified again, from here.
        before = operator.passes()
        versions = {c["metadata"]["name"]: c["metadata"]["resourceVersion"] for c in bench.claims()}
        events_before = bench.events()
        round_started = time.monotonic()

        def all_verified_again() -> bool:
            op.alive()
            now = op.passes()  # one scrape per check
            return all(now.get(name, 0) > count for name, count in before.items())

        wait(all_verified_again, "every claim verified a second time", 600)
        steady = time.monotonic() - round_started
        after = bench.claims()
        patched = [
            c for c in after if c["metadata"]["resourceVersion"] != versions[c["metadata"]["name"]]
        ]
        not_ready = [
            c["metadata"]["name"]
            for c in after
            if not any(
                x["type"] == "Ready" and x["status"] == "True"
                for x in c.get("status", {}).get("conditions", [])
            )
        ]
        events = bench.events() - events_before
        time.sleep(11)  # /healthz caches probe results for 10s
        counts = operator.health()
        rss = operator.peak_rss_mib()
        sessions = bench.pg_sessions() - sessions_before
        mean = operator.mean_pass_seconds()
    finally:
        if operator is not None:
            operator.stop()
        bench.cleanup()

    print(
        f"datarch operator scale: {CLAIMS} claims x {STORES} stores, interval {INTERVAL}, "
        f"default concurrency (DATARCH_MAX_CONCURRENT_CLAIMS)"
    )
    print(
        f"  first round (cold start, every claim verified once): {cold:6.1f} s "
        f"(process start included; the passes themselves spanned {spread:.1f} s)"
    )
    print(
        f"  steady round (every claim verified again):           {steady:6.1f} s "
        f"(interval {INTERVAL}; mean pass {mean * 1000:.0f} ms)"
    )
    print(
        f"  store clients opened: {counts['clientsOpened']} for {STORES} distinct endpoints+credentials "
        f"({counts['clientsOpen']} open); postgres sessions on the bench database: "
        f"{sessions} (after round one: {sessions_after_cold})"
    )
    print(f"  operator peak RSS: {rss:.0f} MiB (target <= {RSS_TARGET_MIB} MiB)")
    print(
        f"  quiet round: {len(patched)} status patches, {events} Events "
        f"(target: 0 Events, no patch but lastVerifiedAt); claims not Ready: {len(not_ready)}"
    )
    print(
        f"  operator totals: {counts['passes']} passes, {counts['statusPatches']} status patches, "
        f"{counts['events']} Events"
    )


if __name__ == "__main__":
    main()
