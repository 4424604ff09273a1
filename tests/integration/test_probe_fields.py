"""Every field a probe reads, set to a value other than the server's default, is read back.

A probe that always answered the default (a Redis policy of `noeviction`,
versioning read as enabled when it is suspended) passes every test that
expects the default; these tests set something else on the real server first.

Gaps, tested on the comparison side with observed facts instead: a Redis
replica (a private replica of the shared dev Redis would make it fork a
snapshot), NATS replicas above 1 (one dev server), and the MongoDB fields
FerretDB 1.24 refuses or does not report (see test_probe_mongodb's
test_ferretdb_refuses_what_the_comparer_is_tested_for_with_observed_facts).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from minio.commonconfig import DISABLED, ENABLED, GOVERNANCE, Filter
from minio.lifecycleconfig import Expiration, LifecycleConfig, Rule
from minio.objectlockconfig import YEARS, ObjectLockConfig
from minio.versioningconfig import SUSPENDED, VersioningConfig
from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy, StreamConfig
from pydantic import SecretStr

from conftest import NatsStreams, RedisDb, S3Bucket, env
from datarch.claims import Store
from datarch.observations import S3LifecycleRuleObs, S3ObjectLockObs
from datarch.probes import nats as nats_probe
from datarch.probes import redis as redis_probe
from datarch.probes import s3 as s3_probe
from datarch.probes.base import Target

pytestmark = pytest.mark.integration

TIMEOUT = 10.0


# --------------------------------------------------------------------------- Redis


@pytest.fixture
def tuned_redis() -> Iterator[str]:
    """A private redis-server (its own socket and directory) with no setting at its default."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed; `make env` installs it", pytrace=False)
    with tempfile.TemporaryDirectory(prefix="datarch-redis-") as directory:
        socket = Path(directory) / "redis.sock"
        process = subprocess.Popen(
            [
                binary,
                "--port",
                "0",
                "--unixsocket",
                str(socket),
                "--dir",
                directory,
                "--daemonize",
                "no",
                "--maxmemory",
                "100mb",
                "--maxmemory-policy",
                "allkeys-lfu",
                "--appendonly",
                "yes",
                "--save",
                "900 1 60 500",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while not socket.exists():
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail("the test's redis-server did not start", pytrace=False)
                time.sleep(0.02)
            yield f"unix://{socket}"
        finally:
            process.terminate()
            process.wait(timeout=10)


def _redis_target(url: str, block: dict[str, Any]) -> Target:
    store = Store.model_validate({"name": "cache", "kind": "redis", "redis": block})
    return Target(store=store, timeout=TIMEOUT, secret=SecretStr(url), secret_key="url")


async def test_redis_memory_policy_persistence_and_save_rules_are_read_as_set(
    tuned_redis: str,
) -> None:
    observed = await redis_probe.observe(_redis_target(tuned_redis, {}))

    assert (observed.maxmemory, observed.maxmemory_policy) == (100 * 1024**2, "allkeys-lfu")
    assert (observed.aof, observed.save) == (True, "900 1 60 500")
    assert observed.unreadable == {}


async def test_redis_keys_in_a_database_other_than_0_are_counted_there(redis_db: RedisDb) -> None:
    redis_db.client.mset({"a": "1", "b": "2", "c": "3"})
    observed = await redis_probe.observe(_redis_target(redis_db.url, {}))
    assert redis_db.db != 0
    assert observed.keyspace[redis_db.db] == 3


# --------------------------------------------------------------------------- S3


def _s3_target(bucket: str) -> Target:
    store = Store.model_validate(
        {
            "name": "objects",
            "kind": "s3",
            "connection": {"endpoint": env("DATARCH_S3_ENDPOINT"), "secure": False},
            "s3": {"buckets": [{"name": bucket}]},
        }
    )
    return Target(
        store=store,
        timeout=TIMEOUT,
        access_key=SecretStr(env("DATARCH_S3_RO_ACCESS_KEY")),
        secret_access_key=SecretStr(env("DATARCH_S3_RO_SECRET_KEY")),
    )


async def test_s3_suspended_versioning_is_read_as_suspended(s3_bucket: S3Bucket) -> None:
    s3_bucket.client.set_bucket_versioning(s3_bucket.name, VersioningConfig(ENABLED))
    s3_bucket.client.set_bucket_versioning(s3_bucket.name, VersioningConfig(SUSPENDED))

    (bucket,) = (await s3_probe.observe(_s3_target(s3_bucket.name))).buckets

    assert bucket.versioning == "suspended"


async def test_s3_retention_in_years_and_a_disabled_lifecycle_rule_are_read_as_set(
    s3_bucket: S3Bucket,
) -> None:
    admin, name = s3_bucket.client, s3_bucket.name
    admin.set_bucket_versioning(name, VersioningConfig(ENABLED))  # object lock needs it
    admin.set_object_lock_config(name, ObjectLockConfig(GOVERNANCE, 2, YEARS))
    admin.set_bucket_lifecycle(
        name,
        LifecycleConfig(
            [
                Rule(
                    DISABLED,
                    rule_filter=Filter(prefix="logs/"),
                    rule_id="logs",
                    expiration=Expiration(days=3),
                )
            ]
        ),
    )

    (bucket,) = (await s3_probe.observe(_s3_target(name))).buckets

    assert bucket.object_lock == S3ObjectLockObs(
        enabled=True, mode="governance", days=None, years=2
    )
    assert bucket.lifecycle == (S3LifecycleRuleObs("logs", "logs/", False, 3, None),)


@pytest.mark.parametrize(
    ("actions", "access"),
    [
        (["s3:PutObject"], "write"),
        (["s3:GetObject", "s3:PutObject"], "readwrite"),
    ],
)
async def test_s3_anonymous_write_policies_are_read_as_written(
    s3_bucket: S3Bucket, actions: list[str], access: str
) -> None:
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": ["*"]},
                "Action": actions,
                "Resource": [f"arn:aws:s3:::{s3_bucket.name}/*"],
            }
        ],
    }
    s3_bucket.client.set_bucket_policy(s3_bucket.name, json.dumps(policy))

    (bucket,) = (await s3_probe.observe(_s3_target(s3_bucket.name))).buckets

    assert bucket.anonymous_access == access


# --------------------------------------------------------------------------- NATS


async def test_nats_sealed_workqueue_stream_and_ephemeral_consumer_are_read_as_set(
    nats_js: NatsStreams,
) -> None:
    stream, subject = f"{nats_js.prefix}FIELDS", f"{nats_js.subject_prefix}.fields"
    await nats_js.js.add_stream(
        StreamConfig(name=stream, subjects=[f"{subject}.>"], retention=RetentionPolicy.WORK_QUEUE)
    )
    await nats_js.js.add_consumer(
        stream, ConsumerConfig(name="batch", ack_policy=AckPolicy.EXPLICIT, inactive_threshold=300)
    )
    await nats_js.js.publish(f"{subject}.job", b"x")
    info = await nats_js.js.stream_info(stream)
    info.config.sealed = True
    await nats_js.js.update_stream(info.config)
    store = Store.model_validate(
        {
            "name": "events",
            "kind": "nats",
            "nats": {"streams": [{"name": stream, "consumers": [{"name": "batch"}]}]},
        }
    )

    observed = await nats_probe.observe(
        Target(store=store, timeout=TIMEOUT, secret=SecretStr(nats_js.ro_url), secret_key="url")
    )

    (found,) = [s for s in observed.streams if s.name == stream]
    assert (found.retention, found.sealed, found.messages) == ("workqueue", True, 1)
    (consumer,) = found.consumers
    assert (consumer.name, consumer.durable, consumer.ack_policy) == ("batch", False, "explicit")
    assert consumer.num_pending == 1


async def test_nats_ack_all_and_no_ack_consumers_are_read_as_set(nats_js: NatsStreams) -> None:
    stream, subject = f"{nats_js.prefix}ACKS", f"{nats_js.subject_prefix}.acks"
    await nats_js.js.add_stream(StreamConfig(name=stream, subjects=[f"{subject}.>"]))
    for name, policy in (("all", AckPolicy.ALL), ("none", AckPolicy.NONE)):
        await nats_js.js.add_consumer(stream, ConsumerConfig(durable_name=name, ack_policy=policy))
    store = Store.model_validate(
        {"name": "events", "kind": "nats", "nats": {"streams": [{"name": stream, "consumers": []}]}}
    )

    observed = await nats_probe.observe(
        Target(store=store, timeout=TIMEOUT, secret=SecretStr(nats_js.ro_url), secret_key="url")
    )

    (found,) = [s for s in observed.streams if s.name == stream]
    assert {c.name: c.ack_policy for c in found.consumers} == {"all": "all", "none": "none"}
