#!/usr/bin/env python3
"""`make demo`: a small sample platform on the local servers, verified by the operator.

    make demo                          # or: .venv/bin/python dev/demo.py
    .venv/bin/python dev/demo.py stop  # stop the operator, remove the demo's objects
    make env-down                      # stop the local servers

It starts the servers and the control plane (dev/env.py, idempotent), seeds a
platform (tables, collections, buckets, a stream with a lagging consumer, a
Redis, backup CronJobs with Jobs), applies examples/platform-claim.yaml (which
documents that platform with a few deliberate mistakes), starts `datarch
operator` in the background, and shows what it found: `kubectl get dac`, the
findings, the Events and an excerpt of the metrics.

The operator keeps running after this script exits, so you can change the
platform or the claim and watch it react (`kubectl get dac -n datarch-demo -w`).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import env  # dev/env.py, beside this script

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
NAMESPACE = "datarch-demo"
CLAIM = "platform"
PG_DATABASE = "demo_app"
MONGO_DATABASE = "demo_runtime"
STREAM = "DEMO_EVENTS"
BUCKETS = ("demo-uploads", "demo-backups")
METRICS_PORT = int(os.environ.get("DATARCH_DEMO_METRICS_PORT", "18080"))
HEALTH_PORT = int(os.environ.get("DATARCH_DEMO_HEALTH_PORT", "18081"))
POD = {"restartPolicy": "Never", "containers": [{"name": "backup", "image": "busybox"}]}


def say(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def run(argv: list[str], stdin: str | None = None, check: bool = True) -> str:
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, cwd=REPO, check=False)
    if check and done.returncode != 0:
        sys.exit(f"demo: `{shlex.join(argv)}` failed:\n{done.stderr.strip()}")
    return done.stdout


# --------------------------------------------------------------------------- environment


def load_environment() -> None:
    """The servers' addresses: exported by `make`, else those `dev/env.py vars` prints."""
    if "KUBECONFIG" in os.environ and "DATARCH_PG_DSN" in os.environ:
        return
    os.environ.update(env.environment(env.Layout.from_environ()))


def start_servers() -> None:
    say("Starting the local servers and the control plane (dev/env.py up; idempotent)")
    done = subprocess.run(["python3", "dev/env.py", "up"], cwd=REPO, check=False)
    if done.returncode != 0:
        sys.exit("demo: the local servers did not start; see the messages above")
    load_environment()
    say("The control plane's namespaces (kubectl get namespaces) and datarch itself")
    print(kubectl("get", "namespaces"), end="")
    print(run([str(REPO / ".venv" / "bin" / "datarch"), "--version"]), end="", flush=True)


def kubectl(*args: str, stdin: str | None = None, check: bool = True) -> str:
    return run(["kubectl", *args], stdin=stdin, check=check)


def pid_file() -> Path:
    return env.Layout.from_environ().env_dir / "demo-operator.pid"


def log_file() -> Path:
    return env.Layout.from_environ().log("demo-operator")


# --------------------------------------------------------------------------- the platform


def seed_postgres() -> None:
    import psycopg  # noqa: PLC0415  (the venv's drivers; imported where used)
    from psycopg import sql  # noqa: PLC0415

    admin = os.environ["DATARCH_PG_DSN"]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(PG_DATABASE))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(PG_DATABASE)))
    with psycopg.connect(_with_database(admin, PG_DATABASE), autocommit=True) as conn:
        conn.execute("""
            CREATE TABLE orgs (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), name text NOT NULL);
            CREATE TABLE users (
                id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
                org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
                email varchar(255) NOT NULL UNIQUE,
                created_at timestamptz NOT NULL DEFAULT now()
            );
            CREATE INDEX users_org_idx ON users (org_id);
            WITH acme AS (INSERT INTO orgs (name) VALUES ('acme') RETURNING id)
            INSERT INTO users (org_id, email) SELECT id, 'ada@acme.test' FROM acme;
        """)


def _with_database(dsn: str, database: str) -> str:
    return f"{dsn.rsplit('/', 1)[0]}/{database}"


def seed_mongo() -> None:
    from pymongo import MongoClient  # noqa: PLC0415

    client: MongoClient[dict[str, Any]] = MongoClient(
        os.environ["DATARCH_MONGO_URI"], serverSelectionTimeoutMS=5000
    )
    try:
        client.drop_database(MONGO_DATABASE)
        database = client[MONGO_DATABASE]
        database["bots"].create_index([("user_id", 1)])
        database["bots"].insert_many([{"user_id": n, "name": f"bot-{n}"} for n in range(3)])
        database["sessions"].create_index([("token", 1)])
        database["sessions"].insert_one(
            {"token": "t-ada", "user_id": 1, "created_at": datetime.now(UTC)}
        )
    finally:
        client.close()


async def seed_nats() -> None:
    import nats  # noqa: PLC0415
    from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig  # noqa: PLC0415
    from nats.js.errors import NotFoundError  # noqa: PLC0415

    connection = await nats.connect(os.environ["DATARCH_NATS_URL"], connect_timeout=5)
    try:
        stream = connection.jetstream()
        with contextlib.suppress(NotFoundError):
            await stream.delete_stream(STREAM)
        await stream.add_stream(
            StreamConfig(name=STREAM, subjects=["demo.events.>"], max_age=168 * 3600)
        )
        await stream.add_consumer(
            STREAM, ConsumerConfig(durable_name="worker", ack_policy=AckPolicy.EXPLICIT)
        )
        for n in range(1500):
            await stream.publish(f"demo.events.signup.{n % 7}", json.dumps({"n": n}).encode())
        # The worker has taken 200 messages and acknowledged none yet: it lags.
        worker = await stream.pull_subscribe("demo.events.>", durable="worker", stream=STREAM)
        await worker.fetch(200, timeout=5)
    finally:
        await connection.close()


def seed_s3() -> None:
    from minio import Minio  # noqa: PLC0415

    client = Minio(
        os.environ["DATARCH_S3_ENDPOINT"],
        access_key=os.environ["DATARCH_S3_ACCESS_KEY"],
        secret_key=os.environ["DATARCH_S3_SECRET_KEY"],
        secure=False,
    )
    for bucket in BUCKETS:
        if client.bucket_exists(bucket):
            for item in client.list_objects(bucket, recursive=True):
                if item.object_name:
                    client.remove_object(bucket, item.object_name)
        else:
            client.make_bucket(bucket)
    client.put_object("demo-uploads", "avatars/ada.png", io.BytesIO(b"\x89PNG demo"), 9)
    dump = b"-- PostgreSQL database dump\n" + b"x" * 8192
    name = f"postgres/{datetime.now(UTC):%Y-%m-%dT%H%M}.dump"
    client.put_object("demo-backups", name, io.BytesIO(dump), len(dump))


def seed_redis() -> None:
    import redis  # noqa: PLC0415

    client = redis.Redis.from_url(os.environ["DATARCH_REDIS_URL"], socket_timeout=5)
    try:
        client.set("demo:session:ada", "1", ex=3600)
    finally:
        client.close()


def seed_backups(api: Any) -> None:
    """Two backup CronJobs and their Jobs, written as the CronJob controller would (no
    controller-manager runs locally): one that succeeded last night, one that only failed."""
    from kubernetes import client as kube  # noqa: PLC0415

    batch: Any = kube.BatchV1Api(api)  # Any: dict bodies, though annotated as models
    now = datetime.now(UTC).replace(microsecond=0)
    for name, schedule, runs in (
        ("pg-backup", "0 2 * * *", [(34, True), (10, True)]),
        ("mongo-backup", "30 2 * * *", [(33, False), (9, False)]),
    ):
        remove_jobs(batch, f"demo-backup={name}")
        _delete(
            lambda n=name: batch.delete_namespaced_cron_job(
                n, NAMESPACE, propagation_policy="Background"
            )
        )
        owner = batch.create_namespaced_cron_job(
            NAMESPACE,
            {
                "metadata": {"name": name},
                "spec": {
                    "schedule": schedule,
                    "jobTemplate": {"spec": {"template": {"spec": POD}}},
                },
            },
        )
        for hours_ago, succeeded in runs:
            end = now - timedelta(hours=hours_ago)
            job = f"{name}-{int(end.timestamp()) // 60}"
            batch.create_namespaced_job(
                NAMESPACE,
                {
                    "metadata": {
                        "name": job,
                        "labels": {"demo-backup": name},
                        "ownerReferences": [
                            {
                                "apiVersion": "batch/v1",
                                "kind": "CronJob",
                                "name": name,
                                "uid": owner.metadata.uid,
                                "controller": True,
                            }
                        ],
                    },
                    "spec": {"template": {"spec": POD}},
                },
            )
            batch.patch_namespaced_job_status(
                job, NAMESPACE, {"status": _job_status(end, succeeded)}
            )


def remove_jobs(batch: Any, selector: str) -> None:
    """Delete Jobs at once. Without a garbage collector, the default "orphan" deletion would
    leave them Terminating for good, and a stuck one from an older run is released here."""
    for job in batch.list_namespaced_job(NAMESPACE, label_selector=selector).items:
        if job.metadata.finalizers:
            batch.patch_namespaced_job(
                job.metadata.name, NAMESPACE, {"metadata": {"finalizers": None}}
            )
        _delete(
            lambda n=job.metadata.name: batch.delete_namespaced_job(
                n, NAMESPACE, propagation_policy="Background"
            )
        )


def _job_status(end: datetime, succeeded: bool) -> dict[str, Any]:
    at = end.strftime("%Y-%m-%dT%H:%M:%SZ")
    start = (end - timedelta(minutes=4)).strftime("%Y-%m-%dT%H:%M:%SZ")
    if succeeded:
        return {
            "startTime": start,
            "completionTime": at,
            "succeeded": 1,
            "conditions": [
                {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": at},
                {"type": "Complete", "status": "True", "lastTransitionTime": at},
            ],
        }
    why = {"reason": "BackoffLimitExceeded", "message": "mongodump: connection refused"}
    return {
        "startTime": start,
        "failed": 1,
        "conditions": [
            {"type": "FailureTarget", "status": "True", "lastTransitionTime": at, **why},
            {"type": "Failed", "status": "True", "lastTransitionTime": at, **why},
        ],
    }


def _delete(call: Any) -> None:
    from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

    try:
        call()
    except ApiException as error:
        if error.status != 404:
            raise


def kube_api() -> Any:
    from kubernetes import config as kube_config  # noqa: PLC0415

    return kube_config.new_client_from_config(config_file=os.environ["KUBECONFIG"])  # type: ignore[no-untyped-call]


def seed_platform(api: Any) -> None:
    say(
        "Seeding the sample platform: tables, collections, a lagging stream, buckets, Redis, backups"
    )
    seed_postgres()
    print(f"  postgres  database {PG_DATABASE}: orgs, users (+ users_org_idx)")
    seed_mongo()
    print(f"  mongodb   database {MONGO_DATABASE}: bots, sessions (+ token index)")
    asyncio.run(seed_nats())
    print(f"  nats      stream {STREAM}: 1500 messages, consumer worker 200 behind on acks")
    seed_s3()
    print(f"  s3        buckets {', '.join(BUCKETS)} (a fresh postgres/ dump in demo-backups)")
    seed_redis()
    print("  redis     one session key")
    seed_backups(api)
    print("  backups   CronJob pg-backup (succeeded 10h ago), mongo-backup (only failures)")


# --------------------------------------------------------------------------- the claim


def apply_claim() -> None:
    say(
        f"Applying the CRD, examples/platform-secrets.yaml and examples/platform-claim.yaml in {NAMESPACE}"
    )
    kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        "-",
        stdin=run([str(VENV_BIN / "datarch"), "crd"]),
    )
    kubectl(
        "wait",
        "--for=condition=Established",
        "crd/dataarchitectureclaims.datarch.io",
        "--timeout=30s",
    )
    # A fresh claim, so the status and Events below are this run's.
    kubectl("delete", "dac", CLAIM, "-n", NAMESPACE, "--ignore-not-found")
    kubectl("delete", "events", "--all", "-n", NAMESPACE)  # no controller collects old ones
    values = {
        **os.environ,
        "DATARCH_PG_RO_DSN_DEMO": _with_database(os.environ["DATARCH_PG_RO_DSN"], PG_DATABASE),
    }
    for example in ("platform-secrets.yaml", "platform-claim.yaml"):
        text = fill((REPO / "examples" / example).read_text(), values)
        kubectl("apply", "-n", NAMESPACE, "-f", "-", stdin=text)
    print(kubectl("get", "dac", "-n", NAMESPACE).rstrip())


def fill(text: str, values: dict[str, str]) -> str:
    """envsubst: `${NAME}` becomes the value of NAME; a missing one stops the demo."""

    def value(match: re.Match[str]) -> str:
        if match.group(1) not in values:
            sys.exit(f"demo: ${{{match.group(1)}}} is not set (is `make -s env-vars` exported?)")
        return values[match.group(1)]

    return re.sub(r"\$\{([A-Z][A-Z0-9_]*)\}", value, text)


# --------------------------------------------------------------------------- the operator


def stop_operator() -> bool:
    try:
        pid = int(pid_file().read_text())
    except (OSError, ValueError):
        return False
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        command = ""
    pid_file().unlink(missing_ok=True)
    if "datarch operator" not in command:
        return False  # not ours any more
    os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        if not Path(f"/proc/{pid}").exists():
            break
        time.sleep(0.1)
    return True


def start_operator() -> int:
    stop_operator()
    say(f"Starting `datarch operator --namespace {NAMESPACE}` in the background")
    log_file().parent.mkdir(parents=True, exist_ok=True)
    with log_file().open("ab") as log:
        process = subprocess.Popen(
            [
                str(VENV_BIN / "datarch"),
                "operator",
                "--namespace",
                NAMESPACE,
                "--metrics-port",
                str(METRICS_PORT),
                "--health-port",
                str(HEALTH_PORT),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=REPO,
            start_new_session=True,  # outlives this script
        )
    pid_file().write_text(str(process.pid))
    print(f"  pid {process.pid}, log {log_file()}")
    print(
        f"  metrics http://127.0.0.1:{METRICS_PORT}/metrics, health http://127.0.0.1:{HEALTH_PORT}/healthz"
    )
    return process.pid


def healthy() -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{HEALTH_PORT}/healthz", timeout=2):
            return True
    except OSError:
        return False


def wait_for_verdict(pid: int, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists():
            sys.exit(f"demo: the operator exited; see {log_file()}")
        if not healthy():
            time.sleep(0.5)
            continue
        claim: dict[str, Any] = json.loads(
            kubectl("get", "dac", CLAIM, "-n", NAMESPACE, "-o", "json")
        )
        status = claim.get("status") or {}
        if status.get("observedGeneration") == claim["metadata"]["generation"]:
            return claim
        time.sleep(1)
    sys.exit(f"demo: no verdict within {timeout:g}s; see {log_file()}")


# --------------------------------------------------------------------------- showing it


METRIC_EXCERPT = (
    "datarch_claim_conforming",
    "datarch_findings{",
    "datarch_store_up",
    "datarch_nats_consumer_num_pending",
    "datarch_nats_consumer_num_ack_pending",
    "datarch_backup_fresh",
    "datarch_backup_age_seconds",
    "datarch_verifications_total",
)


def show(claim: dict[str, Any]) -> None:
    status = claim["status"]
    say(f"kubectl get dac -n {NAMESPACE}")
    print(kubectl("get", "dac", "-n", NAMESPACE).rstrip())

    say("Conditions")
    for condition in status["conditions"]:
        print(
            f"  {condition['type']:<16} {condition['status']:<8} {condition['reason']}: {condition['message']}"
        )

    say(
        f"Findings ({status['summary']['findings']}; `kubectl get dac {CLAIM} -n {NAMESPACE} -o yaml` has them all)"
    )
    for finding in status["findings"]:
        print(f"  {finding['severity']:<8} {finding['kind']:<10} {finding['message']}")

    say("Backups")
    for backup in status["backups"]:
        print(
            f"  {backup['name']:<16} {'fresh' if backup['fresh'] else 'NOT FRESH':<10} {backup.get('message', '')}"
        )

    say(f"Events (kubectl get events -n {NAMESPACE})")
    print(
        kubectl(
            "get",
            "events",
            "-n",
            NAMESPACE,
            "--field-selector",
            "involvedObject.kind=DataArchitectureClaim",
            "--sort-by=.lastTimestamp",
        ).rstrip()
    )

    say(f"Metrics excerpt (curl -s http://127.0.0.1:{METRICS_PORT}/metrics)")
    with urllib.request.urlopen(f"http://127.0.0.1:{METRICS_PORT}/metrics", timeout=5) as response:
        lines = response.read().decode().splitlines()
    for line in lines:
        if line.startswith(METRIC_EXCERPT) and not line.startswith("#"):
            print(f"  {line}")


def how_to_stop() -> None:
    say("The operator keeps running in the background and re-verifies every 30s. Try:")
    print(f"  kubectl get dac -n {NAMESPACE} -w")
    print(f"  kubectl describe dac {CLAIM} -n {NAMESPACE}")
    print(
        f"  psql \"${{DATARCH_PG_DSN%/*}}/{PG_DATABASE}\" -c 'CREATE INDEX users_created_idx ON users (created_at)'"
    )
    say("To stop everything:")
    print(
        "  .venv/bin/python dev/demo.py stop   # stops the operator, removes the demo's Kubernetes objects"
    )
    print("  make env-down                       # stops the local servers and the control plane")


def stop() -> None:
    load_environment()
    stopped = stop_operator()
    print("demo: operator stopped" if stopped else "demo: no demo operator was running")
    for kind in ("dac", "cronjobs", "jobs", "secrets"):
        kubectl("delete", kind, "--all", "-n", NAMESPACE, "--ignore-not-found", check=False)
    print(f"demo: removed the claim, Secrets, CronJobs and Jobs in {NAMESPACE}")
    print("demo: the local servers are still up; `make env-down` stops them")


def main(argv: list[str]) -> None:
    if argv[1:] == ["stop"]:
        stop()
        return
    if argv[1:]:
        sys.exit("usage: dev/demo.py [stop]")
    start_servers()
    if stop_operator():  # a previous demo's operator would verify the new claim first
        print("  stopped the previous demo's operator")
    api = kube_api()
    try:
        if kubectl("get", "namespace", NAMESPACE, check=False).strip() == "":
            kubectl("create", "namespace", NAMESPACE)
        seed_platform(api)
    finally:
        api.close()
    apply_claim()
    pid = start_operator()
    show(wait_for_verdict(pid))
    how_to_stop()


if __name__ == "__main__":
    main(sys.argv)
