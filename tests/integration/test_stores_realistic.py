"""Stores configured the way platform teams configure them, against claims written from their docs.

Each test sets a store up with its own tools' usual shapes (a managed Redis
without CONFIG, redis.conf save lines in another order than the docs, an S3
lifecycle rule in its original `<Prefix>` form, an organization-only bucket
policy) and checks that datarch reports exactly the real differences: none.
Where the server itself can say what is true (an anonymous GET), the test asks
it too, so the expected answer is the server's, not ours.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from pydantic import SecretStr

from conftest import S3Bucket, env
from datarch.claims import Store
from datarch.comparison.redis import compare_redis
from datarch.comparison.s3 import compare_s3
from datarch.findings import Unchecked
from datarch.observations import S3LifecycleRuleObs
from datarch.probes import redis as redis_probe
from datarch.probes import s3 as s3_probe
from datarch.probes.base import Target

pytestmark = pytest.mark.integration

TIMEOUT = 10.0


# --------------------------------------------------------------------------- Redis


class RedisServer:
    """A redis-server of the test's own, on a Unix socket, so no port is shared or raced for."""

    def __init__(self, directory: Path, *arguments: str) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed; `make env` installs it", pytrace=False)
        self.socket = directory / "redis.sock"
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                "0",
                "--unixsocket",
                str(self.socket),
                "--dir",
                str(directory),
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                *arguments,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not self.socket.exists():
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                pytest.fail("the test's redis-server did not start", pytrace=False)
            time.sleep(0.02)
        self.url = f"unix://{self.socket}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def redis_server(*arguments: str) -> Iterator[RedisServer]:
    with tempfile.TemporaryDirectory(prefix="datarch-redis-") as directory:
        server = RedisServer(Path(directory), *arguments)
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def managed_redis() -> Iterator[RedisServer]:
    """Like ElastiCache, Memorystore or Azure Cache: CONFIG does not exist for clients."""
    yield from redis_server("--save", "", "--maxmemory", "64mb", "--rename-command", "CONFIG", "")


@pytest.fixture
def snapshotting_redis() -> Iterator[RedisServer]:
    """redis.conf's save lines, written shortest interval first."""
    yield from redis_server("--save", "60 10000 300 100 3600 1", "--maxmemory", "0")


def redis_target(url: str, block: dict[str, Any]) -> Target:
    store = Store.model_validate({"name": "cache", "kind": "redis", "redis": block})
    return Target(store=store, timeout=TIMEOUT, secret=SecretStr(url), secret_key="url")


async def test_a_managed_redis_without_config_is_read_through_info(
    managed_redis: RedisServer,
) -> None:
    """Managed services disable CONFIG: what INFO shows is still checked, not "unreachable"."""
    client = redis.Redis.from_url(managed_redis.url)
    try:
        with pytest.raises(redis.exceptions.ResponseError, match="unknown command"):
            client.config_get("maxmemory")
    finally:
        client.close()
    target = redis_target(
        managed_redis.url,
        {
            "role": "master",
            "maxmemory": "64MB",
            "maxmemoryPolicy": "noeviction",
            "persistence": {"aof": False, "save": ""},
        },
    )

    observed = await redis_probe.observe(target)

    assert (observed.maxmemory, observed.maxmemory_policy, observed.save) == (
        64 * 1024**2,
        "noeviction",
        None,
    )
    outcomes = compare_redis(target.store, observed)
    # Only what CONFIG alone shows is left unchecked, and says so: no grant would help.
    assert outcomes == [
        Unchecked("persistence.save", "the server does not offer CONFIG GET (disabled or renamed)")
    ]


async def test_save_rules_documented_in_another_order_are_the_same_rules(
    snapshotting_redis: RedisServer,
) -> None:
    target = redis_target(
        snapshotting_redis.url,
        {"maxmemory": "0b", "persistence": {"rdb": True, "save": "3600 1 300 100 60 10000"}},
    )

    observed = await redis_probe.observe(target)

    assert observed.save == "60 10000 300 100 3600 1"
    assert compare_redis(target.store, observed) == []


# --------------------------------------------------------------------------- S3


def s3_target(bucket: S3Bucket, block: dict[str, Any]) -> Target:
    store = Store.model_validate(
        {
            "name": "objects",
            "kind": "s3",
            "connection": {"endpoint": env("DATARCH_S3_ENDPOINT"), "secure": False},
            "s3": {"buckets": [{"name": bucket.name, **block}]},
        }
    )
    return Target(
        store=store,
        timeout=TIMEOUT,
        access_key=SecretStr(env("DATARCH_S3_RO_ACCESS_KEY")),
        secret_access_key=SecretStr(env("DATARCH_S3_RO_SECRET_KEY")),
    )


def put_lifecycle_xml(bucket: S3Bucket, document: bytes) -> None:
    """What `aws s3api put-bucket-lifecycle-configuration` sends for a rule with a top-level Prefix."""
    checksum = base64.b64encode(hashlib.md5(document).digest()).decode()
    bucket.client._execute(
        "PUT",
        bucket.name,
        body=document,
        headers={"Content-MD5": checksum},
        query_params={"lifecycle": ""},
    )


def anonymous_get(bucket: str, key: str) -> int:
    """The HTTP status the server gives a GET without any credentials."""
    url = f"http://{env('DATARCH_S3_ENDPOINT')}/{bucket}/{key}"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as error:
        return error.code


async def test_a_lifecycle_rule_with_a_top_level_prefix_keeps_its_prefix(
    s3_bucket: S3Bucket,
) -> None:
    put_lifecycle_xml(
        s3_bucket,
        b'<LifecycleConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        b"<Rule><ID>tmp</ID><Prefix>tmp/</Prefix><Status>Enabled</Status>"
        b"<Expiration><Days>7</Days></Expiration></Rule>"
        b"<Rule><ID>logs</ID><Filter><And><Prefix>logs/</Prefix>"
        b"<Tag><Key>tier</Key><Value>cold</Value></Tag></And></Filter><Status>Disabled</Status>"
        b"<NoncurrentVersionExpiration><NoncurrentDays>30</NoncurrentDays>"
        b"</NoncurrentVersionExpiration></Rule>"
        b"</LifecycleConfiguration>",
    )
    target = s3_target(s3_bucket, {"lifecycle": [{"prefix": "tmp/", "expirationDays": 7}]})
    strict = Store.model_validate({**target.store.model_dump(by_alias=True), "strict": True})

    observed = await s3_probe.observe(target)

    [bucket] = observed.buckets
    assert bucket.lifecycle == (
        S3LifecycleRuleObs("tmp", "tmp/", True, 7, None),
        S3LifecycleRuleObs("logs", "logs/", False, None, 30),
    )
    # Strict mode does not take the rule for one that expires the whole bucket.
    assert compare_s3(strict, observed) == []


ORGANIZATION_ONLY = "o-a1b2c3d4e5"


@pytest.mark.parametrize(
    "statements",
    [
        pytest.param(
            lambda arn: [
                {
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "s3:GetObject",
                    "Resource": f"{arn}/*",
                    "Condition": {"StringEquals": {"aws:PrincipalOrgID": ORGANIZATION_ONLY}},
                }
            ],
            id="shared with one organization",
        ),
        pytest.param(
            lambda arn: [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": ["*"]},
                    "Action": ["s3:GetObject"],
                    "Resource": [f"{arn}/public/*"],
                },
                {
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [f"{arn}/public/*"],
                },
            ],
            id="a public prefix withdrawn by a deny on it",
        ),
    ],
)
async def test_a_policy_the_server_refuses_anonymous_callers_is_not_public(
    s3_bucket: S3Bucket, statements: Any
) -> None:
    s3_bucket.client.put_object(s3_bucket.name, "public/report.csv", io.BytesIO(b"a,b\n"), 4)
    arn = f"arn:aws:s3:::{s3_bucket.name}"
    target = s3_target(s3_bucket, {"anonymousAccess": "none"})
    # First the plain grant, which the server honours: the probe must read it as public, so
    # its "none" below comes from reading the policy, not from never reading one.
    public = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"{arn}/*"}
        ],
    }
    s3_bucket.client.set_bucket_policy(s3_bucket.name, json.dumps(public))
    try:
        assert anonymous_get(s3_bucket.name, "public/report.csv") == 200
        [granted] = (await s3_probe.observe(target)).buckets
        assert (granted.exists, granted.anonymous_access) == (True, "read")

        document = {"Version": "2012-10-17", "Statement": statements(arn)}
        s3_bucket.client.set_bucket_policy(s3_bucket.name, json.dumps(document))
        assert anonymous_get(s3_bucket.name, "public/report.csv") == 403

        observed = await s3_probe.observe(target)

        [bucket] = observed.buckets
        assert (bucket.exists, bucket.anonymous_access) == (True, "none")
        assert compare_s3(target.store, observed) == []
    finally:
        # The deny binds the admin key too: lift it so the fixture can empty the bucket.
        s3_bucket.client.delete_bucket_policy(s3_bucket.name)
