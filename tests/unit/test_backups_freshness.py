"""Backup freshness rules: CronJob state, last success, maxAge (given or derived), artifacts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from datarch import backups as b
from datarch.claims import Backup
from datarch.observations import S3PrefixObs

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # a Wednesday


def backup(**fields: object) -> Backup:
    document: dict[str, object] = {
        "name": "main-nightly",
        "store": "main",
        "cronJob": {"name": "pg-backup"},
        "schedule": "0 2 * * *",
    }
    document.update(fields)
    return Backup.model_validate(document)


def cron_job(**fields: object) -> b.CronJobState:
    values: dict[str, object] = {"namespace": "data", "name": "pg-backup", "schedule": "0 2 * * *"}
    values.update(fields)
    return b.CronJobState(**values)  # type: ignore[arg-type]


def succeeded(hours_ago: float, name: str = "pg-backup-1") -> b.JobRun:
    return b.JobRun(name, succeeded_at=NOW - timedelta(hours=hours_ago))


def failed(hours_ago: float, name: str = "pg-backup-f") -> b.JobRun:
    return b.JobRun(name, failed_at=NOW - timedelta(hours=hours_ago))


def prefix(
    hours_ago: float | None = 10, size: int = 4096, exists: bool = True
) -> b.ArtifactObservation:
    return b.ArtifactObservation(
        prefix=S3PrefixObs(
            bucket="backups",
            prefix="postgres/",
            objects=0 if hours_ago is None else 3,
            newest_key=None if hours_ago is None else "postgres/2026-11-25.dump",
            newest_modified=None if hours_ago is None else NOW - timedelta(hours=hours_ago),
            newest_size=None if hours_ago is None else size,
            bucket_exists=exists,
        )
    )


ARTIFACT = {"store": "objects", "bucket": "backups", "prefix": "postgres/", "minSizeBytes": 1024}


def test_a_recent_success_within_max_age_is_fresh() -> None:
    result = b.judge_backup(backup(maxAge="26h"), cron_job(), [succeeded(10)], NOW)
    assert (result.fresh, result.reason) == (True, b.BACKUP_FRESH)
    assert result.age_seconds == 10 * 3600
    assert result.max_age_seconds == 26 * 3600
    assert result.last_successful_time == NOW - timedelta(hours=10)


def test_a_success_older_than_max_age_is_stale_and_says_when_it_was() -> None:
    result = b.judge_backup(backup(maxAge="26h"), cron_job(), [succeeded(27)], NOW)
    assert (result.fresh, result.reason) == (False, b.BACKUP_STALE)
    assert result.message == "last success at 2026-11-24T09:00:00Z is older than maxAge 26h"


def test_a_stale_backup_names_a_failure_newer_than_its_last_success() -> None:
    result = b.judge_backup(backup(maxAge="26h"), cron_job(), [succeeded(30), failed(5)], NOW)
    assert result.reason == b.BACKUP_STALE
    assert result.message.endswith("; last failure at 2026-11-25T07:00:00Z")
    assert result.last_failure_time == NOW - timedelta(hours=5)


def test_a_missing_cron_job_is_its_own_reason() -> None:
    result = b.judge_backup(backup(), None, [], NOW, cron_job_ref="data/pg-backup")
    assert (result.fresh, result.reason) == (False, b.CRON_JOB_NOT_FOUND)
    assert result.message == "CronJob data/pg-backup does not exist"


def test_a_job_that_never_succeeded_is_never_succeeded_not_stale() -> None:
    result = b.judge_backup(backup(), cron_job(), [failed(3)], NOW)
    assert (result.fresh, result.reason) == (False, b.NEVER_SUCCEEDED)
    assert result.message == (
        "CronJob data/pg-backup has never succeeded; last failure at 2026-11-25T09:00:00Z"
    )
    assert result.age_seconds is None


def test_the_cron_jobs_last_successful_time_counts_when_no_job_is_left() -> None:
    state = cron_job(last_successful_time=NOW - timedelta(hours=2))
    result = b.judge_backup(backup(), state, [], NOW)
    assert result.fresh
    assert result.last_successful_time == NOW - timedelta(hours=2)


def test_the_newest_of_job_and_cron_job_status_is_the_last_success() -> None:
    state = cron_job(last_successful_time=NOW - timedelta(hours=30))
    result = b.judge_backup(backup(), state, [succeeded(40), succeeded(6, "pg-backup-2")], NOW)
    assert result.last_successful_time == NOW - timedelta(hours=6)


def test_a_suspended_cron_job_is_not_fresh_even_with_a_recent_success() -> None:
    result = b.judge_backup(backup(), cron_job(suspended=True), [succeeded(1)], NOW)
    assert (result.fresh, result.reason) == (False, b.CRON_JOB_SUSPENDED)
    assert result.last_successful_time is not None  # still reported


def test_a_schedule_other_than_the_documented_one_is_a_mismatch() -> None:
    result = b.judge_backup(backup(), cron_job(schedule="0 3 * * *"), [succeeded(1)], NOW)
    assert (result.fresh, result.reason) == (False, b.SCHEDULE_MISMATCH)
    assert "'0 3 * * *'" in result.message and "'0 2 * * *'" in result.message


@pytest.mark.parametrize(
    ("documented", "actual", "same"),
    [
        ("0 2 * * *", "0  2 * * *", True),
        ("0 2 * * *", "0 2 * * 0-6", True),
        ("@daily", "0 0 * * *", True),
        ("0 2 * * *", "0 3 * * *", False),
        ("0 2 * * *", "not a schedule", False),
    ],
)
def test_schedules_compare_as_schedules_not_as_text(
    documented: str, actual: str, same: bool
) -> None:
    assert b.same_schedule(documented, actual) is same


def test_a_time_zone_other_than_the_documented_one_is_a_mismatch() -> None:
    result = b.judge_backup(
        backup(timeZone="Europe/Berlin"), cron_job(time_zone="UTC"), [succeeded(1)], NOW
    )
    assert (result.fresh, result.reason) == (False, b.TIME_ZONE_MISMATCH)


def test_a_documented_utc_matches_a_cron_job_without_time_zone() -> None:
    result = b.judge_backup(backup(timeZone="UTC"), cron_job(), [succeeded(1)], NOW)
    assert result.fresh


def test_without_max_age_a_daily_backup_is_stale_after_two_days() -> None:
    assert b.judge_backup(backup(), cron_job(), [succeeded(47)], NOW).fresh
    stale = b.judge_backup(backup(), cron_job(), [succeeded(49)], NOW)
    assert (stale.reason, stale.max_age_seconds) == (b.BACKUP_STALE, 48 * 3600)
    assert stale.message.endswith("older than maxAge 48h")


def test_a_weekday_schedule_allows_twice_the_weekend_gap_on_monday() -> None:
    monday = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
    assert b.derived_max_age("0 2 * * 1-5", None, monday) == 2 * 3 * 24 * 3600
    assert b.derived_max_age("0 2 * * 1-5", None, NOW) == 2 * 24 * 3600


def test_the_derived_max_age_reads_the_schedule_in_the_cron_jobs_time_zone() -> None:
    # Tuesday 20:00 UTC is Wednesday 05:00 in Tokyo: Tokyo's last weekday run was Tuesday
    # night, a day after Monday's; in UTC the last run was Monday, three days after Friday's.
    tuesday_evening = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)
    assert b.derived_max_age("0 23 * * 1-5", "Asia/Tokyo", tuesday_evening) == 2 * 24 * 3600
    assert b.derived_max_age("0 23 * * 1-5", None, tuesday_evening) == 2 * 72 * 3600


def test_an_unknown_time_zone_falls_back_to_the_controllers_zone() -> None:
    assert b.derived_max_age("0 2 * * *", "Mars/Olympus_Mons", NOW) == 48 * 3600


def test_the_schedule_of_the_cron_job_is_used_when_the_claim_gives_none() -> None:
    result = b.judge_backup(
        backup(schedule=None), cron_job(schedule="0 * * * *"), [succeeded(3)], NOW
    )
    assert (result.reason, result.max_age_seconds) == (b.BACKUP_STALE, 2 * 3600)


def test_a_fresh_artifact_keeps_the_backup_fresh_and_reports_its_age_and_size() -> None:
    result = b.judge_backup(
        backup(artifact=ARTIFACT), cron_job(), [succeeded(10)], NOW, artifact=prefix(9.5)
    )
    assert (result.fresh, result.reason) == (True, b.BACKUP_FRESH)
    assert (result.artifact_age_seconds, result.artifact_size_bytes) == (9.5 * 3600, 4096)


def test_no_object_under_the_prefix_is_a_missing_artifact() -> None:
    result = b.judge_backup(
        backup(artifact=ARTIFACT), cron_job(), [succeeded(10)], NOW, artifact=prefix(None)
    )
    assert (result.fresh, result.reason) == (False, b.ARTIFACT_MISSING)
    assert result.message == "no object under s3://backups/postgres/ in store objects"


def test_a_missing_bucket_is_a_missing_artifact() -> None:
    result = b.judge_backup(
        backup(artifact=ARTIFACT),
        cron_job(),
        [succeeded(1)],
        NOW,
        artifact=prefix(None, exists=False),
    )
    assert result.reason == b.ARTIFACT_MISSING
    assert "bucket backups does not exist" in result.message


def test_an_artifact_older_than_max_age_is_stale_though_the_job_succeeded() -> None:
    result = b.judge_backup(
        backup(artifact=ARTIFACT, maxAge="26h"),
        cron_job(),
        [succeeded(1)],
        NOW,
        artifact=prefix(30),
    )
    assert (result.fresh, result.reason) == (False, b.ARTIFACT_STALE)
    assert result.artifact_age_seconds == 30 * 3600


def test_an_artifact_below_min_size_is_too_small() -> None:
    result = b.judge_backup(
        backup(artifact=ARTIFACT), cron_job(), [succeeded(1)], NOW, artifact=prefix(1, size=12)
    )
    assert (result.fresh, result.reason) == (False, b.ARTIFACT_TOO_SMALL)
    assert "is 12 bytes, less than minSizeBytes 1024" in result.message


def test_an_unreadable_artifact_store_is_its_own_reason_with_the_cause() -> None:
    unreadable = b.ArtifactObservation(error="while listing s3://backups: connection refused")
    result = b.judge_backup(
        backup(artifact=ARTIFACT), cron_job(), [succeeded(1)], NOW, artifact=unreadable
    )
    assert (result.fresh, result.reason) == (False, b.ARTIFACT_UNREADABLE)
    assert result.message == "while listing s3://backups: connection refused"


def test_messages_carry_timestamps_not_ages_so_a_later_pass_reads_the_same() -> None:
    first = b.judge_backup(backup(maxAge="1h"), cron_job(), [succeeded(5)], NOW)
    later = b.judge_backup(
        backup(maxAge="1h"), cron_job(), [succeeded(5)], NOW + timedelta(hours=0.5)
    )
    assert first.message == later.message
    assert first.age_seconds != later.age_seconds


def test_a_weekday_backup_that_succeeded_on_friday_is_fresh_all_weekend() -> None:
    # "0 2 * * 1-5": Friday's run is the last before Monday's. On Sunday the gap
    # between the two latest runs (Thursday to Friday) is one day, but Sunday falls
    # in Friday's three-day interval: a backup that never missed a run is fresh.
    weekday = backup(schedule="0 2 * * 1-5")
    friday_run = datetime(2026, 11, 27, 2, 5, tzinfo=UTC)
    cron = cron_job(schedule="0 2 * * 1-5")
    for now in (
        datetime(2026, 11, 28, 23, 0, tzinfo=UTC),  # Saturday night
        datetime(2026, 11, 29, 12, 0, tzinfo=UTC),  # Sunday noon
        datetime(2026, 11, 30, 1, 59, tzinfo=UTC),  # Monday, before its run
    ):
        result = b.judge_backup(weekday, cron, [b.JobRun("f", succeeded_at=friday_run)], now)
        assert (result.reason, result.fresh) == (b.BACKUP_FRESH, True), now


def test_a_weekday_backup_that_missed_two_runs_is_stale() -> None:
    # Last success Monday 02:05; Tuesday's and Wednesday's runs missed: Wednesday noon is stale.
    weekday = backup(schedule="0 2 * * 1-5")
    monday_run = datetime(2026, 11, 23, 2, 5, tzinfo=UTC)
    result = b.judge_backup(
        weekday, cron_job(schedule="0 2 * * 1-5"), [b.JobRun("m", succeeded_at=monday_run)], NOW
    )
    assert (result.reason, result.max_age_seconds) == (b.BACKUP_STALE, 48 * 3600)


def test_an_hourly_backup_still_gets_two_hours() -> None:
    assert b.derived_max_age("0 * * * *", None, NOW + timedelta(minutes=30)) == 2 * 3600
    assert b.derived_max_age("*/15 * * * *", "Europe/Berlin", NOW) == 30 * 60


@pytest.mark.parametrize(
    ("documented", "actual", "same"),
    [
        ("UTC", "Etc/UTC", True),
        ("America/New_York", "US/Eastern", True),
        ("Europe/Berlin", "Europe/London", False),
        ("America/New_York", "Europe/London", False),  # DST starts on different dates
        ("UTC", "Mars/Olympus", False),
    ],
)
def test_time_zones_are_compared_by_their_rules_not_their_names(
    documented: str, actual: str, same: bool
) -> None:
    assert b.same_time_zone(documented, actual) is same
