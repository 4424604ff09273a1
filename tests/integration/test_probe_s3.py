"""The S3 probe against SeaweedFS (`weed mini`), the dev server.

Each bucket configuration is set with the admin key and read back with the
read-only key pair (DATARCH_S3_RO_ACCESS_KEY / DATARCH_S3_RO_SECRET_KEY): that
the probe succeeds with a key that is refused every write is the proof that it
never writes. Reading default encryption and object lock needs `s3:Get*`
permissions, which SeaweedFS grants through an IAM policy attached to the
identity; its coarse legacy actions put those reads under `Admin`.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from minio.commonconfig import ENABLED, GOVERNANCE, Filter, Tags
from minio.error import S3Error
from minio.lifecycleconfig import Expiration, LifecycleConfig, NoncurrentVersionExpiration, Rule
from minio.objectlockconfig import DAYS, ObjectLockConfig
from minio.sseconfig import Rule as SseRule
from minio.sseconfig import SSEConfig
from minio.versioningconfig import VersioningConfig
from pydantic import SecretStr

from conftest import S3Bucket, env, free_port
from datarch.claims import Store
from datarch.comparison.s3 import compare_s3
from datarch.errors import AccessDenied, StoreTimeout, StoreUnreachable
from datarch.observations import S3BucketObs, S3LifecycleRuleObs, S3ObjectLockObs
from datarch.probes.base import ClientPool, Target
from datarch.probes.s3 import newest_object, observe

pytestmark = pytest.mark.integration


def target(
    buckets: list[dict[str, Any]],
    *,
    endpoint: str | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
    timeout: float = 10.0,
    **fields: Any,
) -> Target:
    store = Store.model_validate(
        {
            "name": "objects",
            "kind": "s3",
            "connection": {"endpoint": endpoint or env("DATARCH_S3_ENDPOINT"), "secure": False},
            "s3": {"buckets": buckets},
            **fields,
        }
    )
    return Target(
        store=store,
        timeout=timeout,
        access_key=SecretStr(access_key or env("DATARCH_S3_RO_ACCESS_KEY")),
        secret_access_key=SecretStr(secret_key or env("DATARCH_S3_RO_SECRET_KEY")),
    )


def configure_everything(bucket: S3Bucket) -> None:
    """Every bucket configuration the probe reads, set with the admin key."""
    admin, name = bucket.client, bucket.name
    admin.set_bucket_versioning(name, VersioningConfig(ENABLED))
    admin.set_object_lock_config(name, ObjectLockConfig(GOVERNANCE, 30, DAYS))
    admin.set_bucket_lifecycle(
        name,
        LifecycleConfig(
            [
                Rule(
                    ENABLED,
                    rule_filter=Filter(prefix="tmp/"),
                    rule_id="tmp",
                    expiration=Expiration(days=7),
                ),
                Rule(
                    ENABLED,
                    rule_filter=Filter(prefix="old/"),
                    rule_id="old",
                    noncurrent_version_expiration=NoncurrentVersionExpiration(noncurrent_days=30),
                ),
            ]
        ),
    )
    public_read = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": ["*"]},
                "Action": ["s3:GetObject"],
                "Resource": [f"arn:aws:s3:::{name}/public/*"],
            }
        ],
    }
    admin.set_bucket_policy(name, json.dumps(public_read))
    admin.set_bucket_encryption(name, SSEConfig(SseRule.new_sse_s3_rule()))
    tags = Tags.new_bucket_tags()
    tags.update({"team": "data", "tier": "hot"})
    admin.set_bucket_tags(name, tags)


async def test_every_bucket_configuration_round_trips_through_the_read_only_key(
    s3_bucket: S3Bucket,
) -> None:
    configure_everything(s3_bucket)

    observed = await observe(target([{"name": s3_bucket.name}]))

    assert observed.buckets == (
        S3BucketObs(
            name=s3_bucket.name,
            exists=True,
            versioning="enabled",
            object_lock=S3ObjectLockObs(enabled=True, mode="governance", days=30, years=None),
            lifecycle=(
                S3LifecycleRuleObs("tmp", "tmp/", True, 7, None),
                S3LifecycleRuleObs("old", "old/", True, None, 30),
            ),
            anonymous_access="read",
            encryption="AES256",
            tags={"team": "data", "tier": "hot"},
        ),
    )


async def test_a_claim_stating_the_configuration_as_set_has_no_finding(s3_bucket: S3Bucket) -> None:
    configure_everything(s3_bucket)
    claimed = target(
        [
            {
                "name": s3_bucket.name,
                "versioning": "enabled",
                "anonymousAccess": "read",
                "objectLock": {"mode": "governance", "days": 30},
                "lifecycle": [
                    {"prefix": "tmp/", "expirationDays": 7},
                    {"id": "old", "noncurrentExpirationDays": 30},
                ],
                "encryption": "AES256",
                "tags": {"team": "data"},
            }
        ]
    )

    observed = await observe(claimed)

    # The probe read the bucket and its configuration: no finding is then a verdict, where
    # a bucket left unread would be left unjudged and say nothing too.
    [bucket] = observed.buckets
    assert (bucket.name, bucket.exists, bucket.versioning, bucket.anonymous_access) == (
        s3_bucket.name,
        True,
        "enabled",
        "read",
    )
    assert compare_s3(claimed.store, observed) == []


def test_the_read_only_key_pair_is_refused_every_write(s3_bucket: S3Bucket) -> None:
    ro, name = s3_bucket.ro_client, s3_bucket.name
    tags = Tags.new_bucket_tags()
    tags["owner"] = "nobody"
    writes: dict[str, Callable[[], object]] = {
        "put object": lambda: ro.put_object(name, "x", io.BytesIO(b"x"), 1),
        "set tags": lambda: ro.set_bucket_tags(name, tags),
        "set versioning": lambda: ro.set_bucket_versioning(name, VersioningConfig(ENABLED)),
        "set policy": lambda: ro.set_bucket_policy(name, json.dumps({"Statement": []})),
    }
    refused = {}
    for what, write in writes.items():
        with pytest.raises(S3Error) as caught:
            write()
        refused[what] = caught.value.code
    assert refused == dict.fromkeys(writes, "AccessDenied")


async def test_a_bucket_without_configuration_reads_as_unconfigured(s3_bucket: S3Bucket) -> None:
    observed = await observe(target([{"name": s3_bucket.name}]))

    assert observed.buckets == (
        S3BucketObs(
            name=s3_bucket.name,
            exists=True,
            versioning="disabled",
            object_lock=None,
            lifecycle=(),
            anonymous_access="none",
            encryption="none",
            tags={},
        ),
    )


async def test_a_missing_bucket_is_an_observation_not_an_error(s3_bucket: S3Bucket) -> None:
    missing = f"{s3_bucket.name}-missing"

    observed = await observe(target([{"name": missing}, {"name": s3_bucket.name}]))

    assert [(b.name, b.exists) for b in observed.buckets] == [
        (missing, False),
        (s3_bucket.name, True),
    ]


async def test_strict_mode_lists_every_bucket(s3_bucket: S3Bucket) -> None:
    observed = await observe(target([], strict=True))

    assert s3_bucket.name in observed.all_buckets


async def test_outside_strict_mode_buckets_are_not_listed(s3_bucket: S3Bucket) -> None:
    observed = await observe(target([{"name": s3_bucket.name}]))

    assert [(b.name, b.exists) for b in observed.buckets] == [(s3_bucket.name, True)]
    assert observed.all_buckets == ()


async def test_newest_object_pages_through_a_prefix_of_more_than_one_listing_page(
    s3_bucket: S3Bucket,
) -> None:
    admin, name = s3_bucket.client, s3_bucket.name
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda i: admin.put_object(name, f"backups/{i:04d}.tar", io.BytesIO(b"x"), 1),
                range(1099),
            )
        )
    # LastModified has one-second resolution on some servers.
    await asyncio.sleep(1.1)
    admin.put_object(name, "backups/newest.tar", io.BytesIO(b"n" * 1234), 1234)
    admin.put_object(name, "elsewhere/later.tar", io.BytesIO(b"y" * 99), 99)

    found = await newest_object(target([]), name, "backups/")

    assert (found.objects, found.newest_key, found.newest_size, found.bucket_exists) == (
        1100,
        "backups/newest.tar",
        1234,
        True,
    )
    assert found.newest_modified is not None


async def test_newest_object_of_an_empty_prefix_is_none(s3_bucket: S3Bucket) -> None:
    found = await newest_object(target([]), s3_bucket.name, "nothing/")

    assert (found.objects, found.newest_key, found.bucket_exists) == (0, None, True)


async def test_newest_object_of_a_missing_bucket_says_the_bucket_is_missing(
    s3_bucket: S3Bucket,
) -> None:
    found = await newest_object(target([]), f"{s3_bucket.name}-missing", "backups/")

    assert (found.objects, found.bucket_exists) == (0, False)


async def test_a_pool_reuses_one_client_and_drops_it_when_the_store_fails(
    s3_bucket: S3Bucket,
) -> None:
    pool = ClientPool()
    reachable = target([{"name": s3_bucket.name}])
    try:
        await observe(reachable, pool)
        await newest_object(reachable, s3_bucket.name, "", pool)
        assert (pool.opened, len(pool)) == (1, 1)

        with pytest.raises(StoreUnreachable):
            await observe(
                target([{"name": s3_bucket.name}], endpoint=f"127.0.0.1:{free_port()}"), pool
            )
        assert (pool.opened, len(pool)) == (2, 1)
    finally:
        await pool.close()


# --- failures ------------------------------------------------------------------------


@pytest.fixture
def silent_server(silent_port: int) -> str:
    return f"127.0.0.1:{silent_port}"


async def test_an_unreachable_port_is_store_unreachable_not_a_timeout() -> None:
    with pytest.raises(StoreUnreachable) as caught:
        await observe(target([{"name": "uploads"}], endpoint=f"127.0.0.1:{free_port()}"))

    assert not isinstance(caught.value, StoreTimeout)
    assert str(caught.value).startswith("while checking bucket uploads: ")
    assert "refused" in str(caught.value)


async def test_a_wrong_secret_is_access_denied_and_the_message_holds_no_credential(
    s3_bucket: S3Bucket,
) -> None:
    wrong = "wrong-secret-0123456789"

    with pytest.raises(AccessDenied) as caught:
        await observe(target([{"name": s3_bucket.name}], secret_key=wrong))

    assert "SignatureDoesNotMatch" in str(caught.value)
    assert wrong not in str(caught.value)


async def test_an_unknown_access_key_is_access_denied_and_the_message_holds_no_credential(
    s3_bucket: S3Bucket,
) -> None:
    unknown = "AKIANOBODY0123456789"

    with pytest.raises(AccessDenied) as caught:
        await observe(target([{"name": s3_bucket.name}], access_key=unknown))

    assert "InvalidAccessKeyId" in str(caught.value)
    assert unknown not in str(caught.value)


async def test_a_server_that_never_answers_is_a_timeout_within_the_timeout(
    silent_server: str,
) -> None:
    started = time.monotonic()

    with pytest.raises(StoreTimeout) as caught:
        await observe(target([{"name": "uploads"}], endpoint=silent_server, timeout=1.0))

    # Slack for a loaded machine; minio's own default would wait five minutes per read.
    assert time.monotonic() - started < 2.0
    assert "within 1s" in str(caught.value)


async def test_a_listing_that_never_answers_is_a_timeout_within_the_timeout(
    silent_server: str,
) -> None:
    started = time.monotonic()

    with pytest.raises(StoreTimeout):
        await newest_object(target([], endpoint=silent_server, timeout=1.0), "backups", "pg/")

    assert time.monotonic() - started < 2.0


async def test_a_bucket_name_the_client_refuses_leaves_the_other_buckets_read(
    s3_bucket: S3Bucket,
) -> None:
    """A claim stored before the CRD refused such names: the one bucket is not checked,
    the rest of the store is (it was StoreUnreachable as a whole)."""
    documented = target([{"name": s3_bucket.name}])
    assert documented.store.s3 is not None and documented.store.s3.buckets is not None
    bad = documented.store.s3.buckets[0].model_copy(update={"name": "../../etc"})
    buckets = [bad, *documented.store.s3.buckets]
    s3 = documented.store.s3.model_copy(update={"buckets": buckets})
    store = documented.store.model_copy(update={"s3": s3})

    observed = await observe(
        Target(store, 10.0, None, None, None, documented.access_key, documented.secret_access_key)
    )

    assert [(b.name, b.exists) for b in observed.buckets] == [(s3_bucket.name, True)]
    outcomes = compare_s3(store, observed)
    assert [type(o).__name__ for o in outcomes] == ["Unchecked"]
    assert outcomes[0].path == "../../etc"
