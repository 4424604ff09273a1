"""Backup freshness against real CronJobs and Jobs in the local kube-apiserver, and real S3.

No kubelet or controller-manager runs here: the tests play the CronJob controller,
creating Jobs owned by the CronJob and writing their status through the status
subresource, exactly as the controller would.
"""

from __future__ import annotations

import asyncio
import io
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes import client as kube

from datarch import backups as b
from datarch.claims import ClaimSpec, Store
from datarch.probes.base import ClientPool, Target
from datarch.secrets import LocalSecrets
from datarch.verification import resolve_target

pytestmark = pytest.mark.integration

POD = {"restartPolicy": "Never", "containers": [{"name": "backup", "image": "busybox"}]}


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class Cluster:
    """The CronJob controller's side of the story, written by hand."""

    def __init__(self, api: kube.ApiClient, namespace: str) -> None:
        self.batch: Any = kube.BatchV1Api(api)  # Any: dict bodies, though annotated as models
        self.namespace = namespace

    def cron_job(self, name: str = "pg-backup", **spec: Any) -> Any:
        body = {
            "metadata": {"name": name},
            "spec": {
                "schedule": "0 2 * * *",
                "jobTemplate": {"spec": {"template": {"spec": POD}}},
                **spec,
            },
        }
        return self.batch.create_namespaced_cron_job(self.namespace, body)

    def job(
        self,
        name: str,
        owner: Any | None,
        *,
        succeeded: datetime | None = None,
        failed: datetime | None = None,
    ) -> None:
        metadata: dict[str, Any] = {"name": name}
        if owner is not None:
            metadata["ownerReferences"] = [
                {
                    "apiVersion": "batch/v1",
                    "kind": "CronJob",
                    "name": owner.metadata.name,
                    "uid": owner.metadata.uid,
                    "controller": True,
                }
            ]
        self.batch.create_namespaced_job(
            self.namespace, {"metadata": metadata, "spec": {"template": {"spec": POD}}}
        )
        end = succeeded or failed
        if end is None:
            return
        start = stamp(end - timedelta(minutes=5))
        if succeeded is not None:
            status = {
                "startTime": start,
                "completionTime": stamp(end),
                "succeeded": 1,
                "conditions": [
                    {
                        "type": "SuccessCriteriaMet",
                        "status": "True",
                        "lastTransitionTime": stamp(end),
                    },
                    {"type": "Complete", "status": "True", "lastTransitionTime": stamp(end)},
                ],
            }
        else:
            reason = {
                "reason": "BackoffLimitExceeded",
                "message": "Job has reached the specified backoff limit",
            }
            status = {
                "startTime": start,
                "failed": 1,
                "conditions": [
                    {
                        "type": "FailureTarget",
                        "status": "True",
                        "lastTransitionTime": stamp(end),
                        **reason,
                    },
                    {
                        "type": "Failed",
                        "status": "True",
                        "lastTransitionTime": stamp(end),
                        **reason,
                    },
                ],
            }
        self.batch.patch_namespaced_job_status(name, self.namespace, {"status": status})

    def last_successful_time(self, name: str, moment: datetime) -> None:
        self.batch.patch_namespaced_cron_job_status(
            name, self.namespace, {"status": {"lastSuccessfulTime": stamp(moment)}}
        )


@pytest.fixture
def cluster(kube_api: kube.ApiClient, kube_namespace: str) -> Iterator[Cluster]:
    cluster = Cluster(kube_api, kube_namespace)
    yield cluster
    # "Background": the default for Jobs ("orphan") waits for a garbage collector that
    # this control plane does not run, and would leave them Terminating in etcd.
    for job in cluster.batch.list_namespaced_job(kube_namespace).items:
        cluster.batch.delete_namespaced_job(
            job.metadata.name, kube_namespace, propagation_policy="Background"
        )


def spec(**backup: Any) -> ClaimSpec:
    document = {
        "name": "main-nightly",
        "store": "main",
        "cronJob": {"name": "pg-backup"},
        "schedule": "0 2 * * *",
    }
    document.update(backup)
    return ClaimSpec.model_validate(
        {
            "stores": [
                {"name": "main", "kind": "postgres"},
                {
                    "name": "objects",
                    "kind": "s3",
                    "connection": {
                        "endpoint": os.environ.get("DATARCH_S3_ENDPOINT", ""),
                        "secure": False,
                        "secretRef": {"name": "s3-readonly"},
                    },
                },
            ],
            "backups": [document],
        }
    )


def s3_secrets() -> LocalSecrets:
    return LocalSecrets(
        environ={
            "DATARCH_SECRET_S3_READONLY_ACCESSKEY": os.environ["DATARCH_S3_RO_ACCESS_KEY"],
            "DATARCH_SECRET_S3_READONLY_SECRETKEY": os.environ["DATARCH_S3_RO_SECRET_KEY"],
        }
    )


async def check(
    cluster: Cluster, claim: ClaimSpec, clients: ClientPool | None = None
) -> b.BackupResult:
    secrets = s3_secrets()

    async def target(store: Store) -> Target:
        return await resolve_target(store, claim.timeout_seconds, secrets)

    [result] = await b.check_backups(
        claim, cluster.namespace, cluster.batch, target, clients=clients
    )
    return result


@pytest.fixture
def pool() -> Iterator[ClientPool]:
    yield ClientPool()


async def test_a_recently_succeeded_job_of_the_cron_job_makes_the_backup_fresh(
    cluster: Cluster,
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    owner = cluster.cron_job()
    cluster.job("pg-backup-1", owner, succeeded=now - timedelta(hours=30))
    cluster.job("pg-backup-2", owner, succeeded=now - timedelta(hours=3))
    result = await check(cluster, spec())
    assert (result.fresh, result.reason) == (True, b.BACKUP_FRESH)
    assert result.last_successful_time == now - timedelta(hours=3)
    assert result.max_age_seconds == 48 * 3600


async def test_jobs_the_cron_job_does_not_own_do_not_count(cluster: Cluster) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    owner = cluster.cron_job()
    cluster.job("pg-backup-old", owner, succeeded=now - timedelta(hours=60))
    cluster.job("manual-restore-test", None, succeeded=now - timedelta(hours=1))
    result = await check(cluster, spec())
    assert (result.fresh, result.reason) == (False, b.BACKUP_STALE)
    assert result.last_successful_time == now - timedelta(hours=60)


async def test_a_cron_job_whose_jobs_only_failed_never_succeeded(cluster: Cluster) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    owner = cluster.cron_job()
    cluster.job("pg-backup-1", owner, failed=now - timedelta(hours=2))
    cluster.job("pg-backup-2", owner)  # still running
    result = await check(cluster, spec())
    assert (result.fresh, result.reason) == (False, b.NEVER_SUCCEEDED)
    assert result.last_failure_time == now - timedelta(hours=2)
    assert f"last failure at {stamp(now - timedelta(hours=2))}" in result.message


async def test_the_cron_jobs_last_successful_time_stands_in_for_jobs_already_cleaned_up(
    cluster: Cluster,
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    cluster.cron_job()
    cluster.last_successful_time("pg-backup", now - timedelta(hours=5))
    result = await check(cluster, spec(maxAge="26h"))
    assert (result.fresh, result.last_successful_time) == (True, now - timedelta(hours=5))


async def test_a_running_job_and_a_failure_after_a_recent_success_keep_the_backup_fresh(
    cluster: Cluster,
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    owner = cluster.cron_job()
    cluster.job("pg-backup-1", owner, succeeded=now - timedelta(hours=26))
    cluster.job("pg-backup-2", owner, failed=now - timedelta(hours=2))
    cluster.job("pg-backup-3", owner)  # the retry, still running
    result = await check(cluster, spec())
    assert (result.fresh, result.reason) == (True, b.BACKUP_FRESH)
    assert result.last_successful_time == now - timedelta(hours=26)
    assert result.last_failure_time == now - timedelta(hours=2)


async def test_an_irregular_schedule_that_never_missed_a_run_is_fresh(cluster: Cluster) -> None:
    # Two runs a week, on consecutive days, the later one two days ago: the gap between
    # the two latest runs is one day, but the week's long gap (six days) is the one now
    # falls in. A backup that ran at its last scheduled time is fresh, whatever the weekday.
    now = datetime.now(UTC).replace(microsecond=0)
    latest_day = (now - timedelta(days=2)).replace(hour=2, minute=0, second=0)
    cron_day = (latest_day.weekday() + 1) % 7  # cron counts from Sunday
    schedule = f"0 2 * * {(cron_day - 1) % 7},{cron_day}"
    owner = cluster.cron_job(schedule=schedule)
    cluster.job("pg-backup-1", owner, succeeded=latest_day + timedelta(minutes=5))
    result = await check(cluster, spec(schedule=schedule))
    assert (result.fresh, result.reason) == (True, b.BACKUP_FRESH), result.message
    assert result.max_age_seconds == 2 * 6 * 24 * 3600


async def test_a_cron_job_that_does_not_exist_is_not_found(cluster: Cluster) -> None:
    result = await check(cluster, spec())
    assert (result.fresh, result.reason) == (False, b.CRON_JOB_NOT_FOUND)
    assert result.message == f"CronJob {cluster.namespace}/pg-backup does not exist"


async def test_a_suspended_cron_job_is_reported_though_its_last_run_succeeded(
    cluster: Cluster,
) -> None:
    owner = cluster.cron_job(suspend=True)
    cluster.job("pg-backup-1", owner, succeeded=datetime.now(UTC) - timedelta(hours=1))
    result = await check(cluster, spec())
    assert (result.fresh, result.reason) == (False, b.CRON_JOB_SUSPENDED)


async def test_the_schedule_and_time_zone_are_read_from_the_cron_job(cluster: Cluster) -> None:
    owner = cluster.cron_job(schedule="30 3 * * *", timeZone="Europe/Berlin")
    cluster.job("pg-backup-1", owner, succeeded=datetime.now(UTC) - timedelta(hours=1))
    mismatch = await check(cluster, spec())
    assert mismatch.reason == b.SCHEDULE_MISMATCH
    assert "'30 3 * * *'" in mismatch.message
    zone = await check(cluster, spec(schedule="30 3 * * *", timeZone="UTC"))
    assert zone.reason == b.TIME_ZONE_MISMATCH
    assert "Europe/Berlin" in zone.message
    assert (await check(cluster, spec(schedule="30 3 * * *", timeZone="Europe/Berlin"))).fresh


async def test_an_unreachable_api_server_makes_the_cron_job_unreadable_not_missing() -> None:
    configuration = kube.Configuration()
    configuration.host = "https://127.0.0.1:1"
    configuration.retries = 0
    with kube.ApiClient(configuration) as nowhere:
        result = await b.check_backup(
            spec(), spec().backups[0], "data", kube.BatchV1Api(nowhere), resolve=_unused
        )
    assert (result.fresh, result.reason) == (False, b.CRON_JOB_UNREADABLE)
    assert result.message.startswith("while reading CronJob data/pg-backup: ")


async def _unused(store: Store) -> Target:
    raise AssertionError("no artifact is documented")


async def test_the_newest_artifact_in_the_bucket_is_checked_for_size(
    cluster: Cluster, s3_bucket: Any, pool: ClientPool
) -> None:
    owner = cluster.cron_job()
    cluster.job("pg-backup-1", owner, succeeded=datetime.now(UTC) - timedelta(minutes=10))
    artifact = {
        "store": "objects",
        "bucket": s3_bucket.name,
        "prefix": "postgres/",
        "minSizeBytes": 1024,
    }
    missing = await check(cluster, spec(artifact=artifact), pool)
    assert (missing.reason, missing.message) == (
        b.ARTIFACT_MISSING,
        f"no object under s3://{s3_bucket.name}/postgres/ in store objects",
    )

    s3_bucket.client.put_object(s3_bucket.name, "postgres/1.dump", io.BytesIO(b"x" * 4096), 4096)
    await asyncio.sleep(1.1)  # S3 times have whole seconds: the newest must be newer
    s3_bucket.client.put_object(s3_bucket.name, "postgres/2.dump", io.BytesIO(b"tiny"), 4)
    s3_bucket.client.put_object(s3_bucket.name, "other/3.dump", io.BytesIO(b"x" * 9000), 9000)
    small = await check(cluster, spec(artifact=artifact), pool)
    assert small.reason == b.ARTIFACT_TOO_SMALL
    assert f"s3://{s3_bucket.name}/postgres/2.dump is 4 bytes" in small.message

    await asyncio.sleep(1.1)
    s3_bucket.client.put_object(s3_bucket.name, "postgres/3.dump", io.BytesIO(b"x" * 2048), 2048)
    fresh = await check(cluster, spec(artifact=artifact), pool)
    assert (fresh.fresh, fresh.artifact_size_bytes) == (True, 2048)
    assert fresh.artifact_age_seconds is not None and 0 <= fresh.artifact_age_seconds < 120


async def test_an_artifact_bucket_that_does_not_exist_is_a_missing_artifact(
    cluster: Cluster, pool: ClientPool
) -> None:
    owner = cluster.cron_job()
    cluster.job("pg-backup-1", owner, succeeded=datetime.now(UTC) - timedelta(minutes=10))
    artifact = {"store": "objects", "bucket": "no-such-bucket-datarch", "prefix": ""}
    result = await check(cluster, spec(artifact=artifact), pool)
    assert result.reason == b.ARTIFACT_MISSING
    assert "bucket no-such-bucket-datarch does not exist" in result.message


async def test_an_artifact_store_that_refuses_the_credentials_is_unreadable(
    cluster: Cluster,
) -> None:
    owner = cluster.cron_job()
    cluster.job("pg-backup-1", owner, succeeded=datetime.now(UTC) - timedelta(minutes=10))
    claim = spec(artifact={"store": "objects", "bucket": "backups", "prefix": ""})
    wrong = LocalSecrets(
        environ={
            "DATARCH_SECRET_S3_READONLY_ACCESSKEY": "nobody",
            "DATARCH_SECRET_S3_READONLY_SECRETKEY": "wrong-secret-key",
        }
    )

    async def target(store: Store) -> Target:
        return await resolve_target(store, claim.timeout_seconds, wrong)

    [result] = await b.check_backups(claim, cluster.namespace, cluster.batch, target)
    assert (result.fresh, result.reason) == (False, b.ARTIFACT_UNREADABLE)
    assert "wrong-secret-key" not in result.message
