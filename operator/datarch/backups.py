"""Backup freshness: CronJob/Job state read from the Kubernetes API, plus artifact age via the s3 probe.

It judges freshness (age against maxAge) but holds no status, metrics or kopf.
Reading (`read_cron_job`, `observe_artifact`) and judging (`judge_backup`, pure,
with the clock passed in) are separate, so the rules are tested without a cluster.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from datarch.claims import Backup, BackupArtifact, ClaimSpec, Store
from datarch.durations import format_duration, parse_duration
from datarch.errors import DatarchError
from datarch.observations import S3PrefixObs
from datarch.probes.base import ClientPool, Target, within

# The reasons a backup carries. datarch.reporting.conditions lists them with every other
# reason, each with its comment; they are spelled here because reporting sits above.
BACKUP_FRESH = "BackupFresh"
CRON_JOB_NOT_FOUND = "CronJobNotFound"
CRON_JOB_UNREADABLE = "CronJobUnreadable"
CRON_JOB_SUSPENDED = "CronJobSuspended"
SCHEDULE_MISMATCH = "ScheduleMismatch"
TIME_ZONE_MISMATCH = "TimeZoneMismatch"
NEVER_SUCCEEDED = "NeverSucceeded"
BACKUP_STALE = "BackupStale"
ARTIFACT_MISSING = "ArtifactMissing"
ARTIFACT_STALE = "ArtifactStale"
ARTIFACT_TOO_SMALL = "ArtifactTooSmall"
ARTIFACT_UNREADABLE = "ArtifactUnreadable"
# Reasons that mean "could not tell", not "stale".
UNKNOWN_REASONS = frozenset({CRON_JOB_UNREADABLE, ARTIFACT_UNREADABLE})

# Without a timeZone, the CronJob controller schedules in its own zone: UTC in every
# distribution that matters (kube-controller-manager runs in a UTC container).
CONTROLLER_TIME_ZONE = "UTC"


class CronJobUnreadable(DatarchError):
    """The CronJob or its Jobs could not be read (forbidden, API server unreachable)."""


@dataclass(frozen=True, slots=True)
class BackupResult:
    """One backup as one pass saw it; `reason` is CamelCase and set whenever it is not fresh."""

    name: str
    fresh: bool
    reason: str
    message: str = ""
    last_successful_time: datetime | None = None
    last_failure_time: datetime | None = None
    age_seconds: float | None = None
    max_age_seconds: float | None = None
    artifact_age_seconds: float | None = None
    artifact_size_bytes: int | None = None

    @property
    def checked(self) -> bool:
        """False when freshness could not be told: never read as fresh, nor as stale."""
        return self.reason not in UNKNOWN_REASONS


@dataclass(frozen=True, slots=True)
class CronJobState:
    """What the CronJob says about itself."""

    namespace: str
    name: str
    schedule: str
    time_zone: str | None = None
    suspended: bool = False
    last_successful_time: datetime | None = None

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class JobRun:
    """One Job the CronJob owns: when it succeeded or failed, if it has finished."""

    name: str
    succeeded_at: datetime | None = None
    failed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ArtifactObservation:
    """The newest object under the artifact prefix, or why it could not be read."""

    prefix: S3PrefixObs | None = None
    error: str | None = None


# --- judging (pure) --------------------------------------------------------------


def same_schedule(documented: str, actual: str) -> bool:
    """Equal as schedules, not as text: `0 2 * * 0-6` is `0 2 * * *`, `@daily` is `0 0 * * *`."""
    if " ".join(documented.split()) == " ".join(actual.split()):
        return True
    try:
        return bool(croniter.expand(documented) == croniter.expand(actual))
    except (ValueError, KeyError):  # croniter's errors subclass ValueError; aliases KeyError
        return False


@functools.lru_cache(maxsize=256)  # a few claims' zone names, judged once each
def same_time_zone(documented: str, actual: str) -> bool:
    """Names of one zone count as one ("UTC" and "Etc/UTC"): their rules agree at every
    hour of a four-year span, transitions included. An unknown name only equals itself."""
    if documented == actual:
        return True
    try:
        left, right = ZoneInfo(documented), ZoneInfo(actual)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    start = datetime(2024, 1, 1, tzinfo=UTC)
    return all(
        (moment := start + timedelta(hours=hour)).astimezone(left).utcoffset()
        == moment.astimezone(right).utcoffset()
        for hour in range(4 * 366 * 24)
    )


def derived_max_age(schedule: str, time_zone: str | None, now: datetime) -> float | None:
    """Two schedule intervals: twice the longer of the interval `now` falls in and the one
    before it.

    Measured at `now` in the CronJob's zone, so a weekday-only or DST-shifted
    schedule gets the gap it actually has. A backup whose every run succeeds (the
    latest may still be running) is never older than those two intervals together,
    so it is never stale: on a Sunday a weekday backup's last success is Friday's,
    and the interval Sunday falls in (Friday to Monday) is three days, not one.
    None when the schedule is not cron.
    """
    try:
        zone = ZoneInfo(time_zone or CONTROLLER_TIME_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo(CONTROLLER_TIME_ZONE)
    try:
        local = now.astimezone(zone)
        latest = croniter(schedule, local).get_prev(datetime)
        before = croniter(schedule, latest).get_prev(datetime)
        upcoming = croniter(schedule, latest).get_next(datetime)
    except (ValueError, KeyError):
        return None
    current = (upcoming - latest).total_seconds()
    previous = (latest - before).total_seconds()
    return 2.0 * float(max(current, previous))


def max_age_seconds(backup: Backup, cron_job: CronJobState | None, now: datetime) -> float | None:
    if backup.max_age is not None:
        return parse_duration(backup.max_age)
    schedule = backup.schedule or (cron_job.schedule if cron_job else None)
    if schedule is None:
        return None
    time_zone = (cron_job.time_zone if cron_job else None) or backup.time_zone
    return derived_max_age(schedule, time_zone, now)


def _latest(times: Sequence[datetime | None]) -> datetime | None:
    present = [t for t in times if t is not None]
    return max(present) if present else None


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def judge_backup(
    backup: Backup,
    cron_job: CronJobState | None,
    runs: Sequence[JobRun],
    now: datetime,
    *,
    artifact: ArtifactObservation | None = None,
    cron_job_ref: str | None = None,
) -> BackupResult:
    """Fresh means: the CronJob runs as documented, and its last success (and artifact)
    are within maxAge. The first rule broken names the reason.

    Messages carry timestamps, never ages, so a status that did not change reads the
    same from pass to pass and is not patched.
    """
    ref = cron_job.ref if cron_job else (cron_job_ref or backup.cron_job.name)
    if cron_job is None:
        return BackupResult(
            backup.name,
            fresh=False,
            reason=CRON_JOB_NOT_FOUND,
            message=f"CronJob {ref} does not exist",
        )
    last_success = _latest([*(r.succeeded_at for r in runs), cron_job.last_successful_time])
    last_failure = _latest([r.failed_at for r in runs])
    max_age = max_age_seconds(backup, cron_job, now)
    age = (now - last_success).total_seconds() if last_success else None
    base = BackupResult(
        backup.name,
        fresh=False,
        reason=BACKUP_FRESH,
        last_successful_time=last_success,
        last_failure_time=last_failure,
        age_seconds=age,
        max_age_seconds=max_age,
    )
    limit = format_duration(max_age) if max_age is not None else "unknown"

    if cron_job.suspended:
        return _with(base, CRON_JOB_SUSPENDED, f"CronJob {ref} is suspended: no backup will run")
    if backup.schedule is not None and not same_schedule(backup.schedule, cron_job.schedule):
        return _with(
            base,
            SCHEDULE_MISMATCH,
            f"CronJob {ref} runs on {cron_job.schedule!r}, the claim documents {backup.schedule!r}",
        )
    if backup.time_zone is not None and not same_time_zone(
        backup.time_zone, cron_job.time_zone or CONTROLLER_TIME_ZONE
    ):
        actual = cron_job.time_zone or f"no timeZone (the controller's, {CONTROLLER_TIME_ZONE})"
        return _with(
            base,
            TIME_ZONE_MISMATCH,
            f"CronJob {ref} uses {actual}, the claim documents {backup.time_zone}",
        )
    if last_success is None:
        failure = f"; last failure at {_stamp(last_failure)}" if last_failure else ""
        return _with(base, NEVER_SUCCEEDED, f"CronJob {ref} has never succeeded{failure}")
    if max_age is not None and age is not None and age > max_age:
        failure = (
            f"; last failure at {_stamp(last_failure)}"
            if last_failure and last_failure > last_success
            else ""
        )
        return _with(
            base,
            BACKUP_STALE,
            f"last success at {_stamp(last_success)} is older than maxAge {limit}{failure}",
        )
    if backup.artifact is not None and artifact is not None:
        result = _judge_artifact(
            base, backup.artifact, artifact, max_age=max_age, limit=limit, now=now
        )
        if result.reason != BACKUP_FRESH:
            return result
        base = result
    return _with(base, BACKUP_FRESH, f"last success at {_stamp(last_success)}", fresh=True)


def _judge_artifact(
    base: BackupResult,
    spec: BackupArtifact,
    artifact: ArtifactObservation,
    *,
    max_age: float | None,
    limit: str,
    now: datetime,
) -> BackupResult:
    where = f"s3://{spec.bucket}/{spec.prefix} in store {spec.store}"
    if artifact.error is not None or artifact.prefix is None:
        return _with(base, ARTIFACT_UNREADABLE, artifact.error or f"{where} was not read")
    observed = artifact.prefix
    if not observed.bucket_exists:
        return _with(
            base, ARTIFACT_MISSING, f"bucket {spec.bucket} does not exist (store {spec.store})"
        )
    if observed.newest_modified is None:
        return _with(base, ARTIFACT_MISSING, f"no object under {where}")
    age = (now - observed.newest_modified).total_seconds()
    base = replace(base, artifact_age_seconds=age, artifact_size_bytes=observed.newest_size)
    key = f"s3://{spec.bucket}/{observed.newest_key}"
    if max_age is not None and age > max_age:
        return _with(
            base,
            ARTIFACT_STALE,
            f"newest artifact {key} ({_stamp(observed.newest_modified)}) is older than maxAge {limit}",
        )
    if spec.min_size_bytes is not None and (observed.newest_size or 0) < spec.min_size_bytes:
        return _with(
            base,
            ARTIFACT_TOO_SMALL,
            f"newest artifact {key} is {observed.newest_size or 0} bytes, "
            f"less than minSizeBytes {spec.min_size_bytes}",
        )
    return base


def _with(result: BackupResult, reason: str, message: str, fresh: bool = False) -> BackupResult:
    return replace(result, reason=reason, message=message, fresh=fresh)


# --- reading (Kubernetes API, s3 probe) ---------------------------------------------


def _job_finished(job: Any, condition_type: str) -> datetime | None:
    for condition in (job.status.conditions if job.status else None) or ():
        if condition.type == condition_type and condition.status == "True":
            moment: datetime | None = condition.last_transition_time
            if condition_type == "Complete" and job.status.completion_time is not None:
                moment = job.status.completion_time
            return moment
    return None


def _read_cron_job_sync(
    batch_v1: Any, namespace: str, name: str, timeout: float | None
) -> tuple[CronJobState | None, list[JobRun]]:
    try:
        cron_job = batch_v1.read_namespaced_cron_job(name, namespace, _request_timeout=timeout)
    except Exception as error:  # kubernetes.client.ApiException, or a connection error
        if getattr(error, "status", None) == 404:
            return None, []
        raise CronJobUnreadable(
            f"while reading CronJob {namespace}/{name}: {_api_cause(error)}"
        ) from error
    try:
        jobs = batch_v1.list_namespaced_job(namespace, _request_timeout=timeout).items
    except Exception as error:
        raise CronJobUnreadable(
            f"while listing the Jobs of CronJob {namespace}/{name}: {_api_cause(error)}"
        ) from error
    uid = cron_job.metadata.uid
    runs = [
        JobRun(
            name=job.metadata.name,
            succeeded_at=_job_finished(job, "Complete"),
            failed_at=_job_finished(job, "Failed"),
        )
        for job in jobs
        if any(
            owner.kind == "CronJob" and owner.uid == uid
            for owner in job.metadata.owner_references or ()
        )
    ]
    spec = cron_job.spec
    state = CronJobState(
        namespace=namespace,
        name=name,
        schedule=spec.schedule,
        time_zone=spec.time_zone,
        suspended=bool(spec.suspend),
        last_successful_time=cron_job.status.last_successful_time if cron_job.status else None,
    )
    return state, runs


def _api_cause(error: Exception) -> str:
    status = getattr(error, "status", None)
    if not status:
        return type(error).__name__
    named = {401: "unauthorized", 403: "forbidden"}
    return named.get(status) or f"HTTP {status} {getattr(error, 'reason', '') or ''}".strip()


async def read_cron_job(
    batch_v1: Any, namespace: str, name: str, timeout: float | None = None
) -> tuple[CronJobState | None, list[JobRun]]:
    """The CronJob (None when it does not exist) and the Jobs it owns; CronJobUnreadable else.

    `batch_v1` is a kubernetes.client.BatchV1Api; the synchronous client runs in a thread,
    each request bounded by `timeout` seconds.
    """
    return await asyncio.to_thread(_read_cron_job_sync, batch_v1, namespace, name, timeout)


ResolveTarget = Callable[[Store], Awaitable[Target]]


async def observe_artifact(
    spec: ClaimSpec, artifact: BackupArtifact, resolve: ResolveTarget, clients: ClientPool | None
) -> ArtifactObservation:
    """The newest object under the prefix, read with the artifact store's own credentials."""
    from datarch.probes import s3  # noqa: PLC0415  (only claims with artifacts load minio)

    store = next(s for s in spec.stores if s.name == artifact.store)
    try:
        target = await resolve(store)
        observed = await within(
            s3.newest_object(target, artifact.bucket, artifact.prefix, clients),
            spec.timeout_seconds,
        )
    except TimeoutError:
        return ArtifactObservation(
            error=f"while listing s3://{artifact.bucket}/{artifact.prefix} in store {store.name}: "
            f"no answer within {spec.timeout}"
        )
    except DatarchError as error:  # StoreError, SecretUnavailable
        return ArtifactObservation(error=str(error))
    return ArtifactObservation(prefix=observed)


async def check_backup(
    spec: ClaimSpec,
    backup: Backup,
    namespace: str,
    batch_v1: Any,
    resolve: ResolveTarget,
    *,
    clients: ClientPool | None = None,
    unreadable_stores: Collection[str] = (),
    api_timeout: float | None = None,
) -> BackupResult:
    cron_namespace = backup.cron_job.namespace or namespace
    try:
        cron_job, runs = await read_cron_job(
            batch_v1, cron_namespace, backup.cron_job.name, api_timeout
        )
    except CronJobUnreadable as error:
        return BackupResult(
            backup.name, fresh=False, reason=CRON_JOB_UNREADABLE, message=str(error)
        )
    artifact = None
    if backup.artifact is not None and cron_job is not None:
        if backup.artifact.store in unreadable_stores:
            # Already failed this pass: a second try would only wait out the timeout again.
            artifact = ArtifactObservation(
                error=f"store {backup.artifact.store} could not be checked in this pass"
            )
        else:
            artifact = await observe_artifact(spec, backup.artifact, resolve, clients)
    return judge_backup(
        backup,
        cron_job,
        runs,
        datetime.now(UTC),
        artifact=artifact,
        cron_job_ref=f"{cron_namespace}/{backup.cron_job.name}",
    )


async def check_backups(
    spec: ClaimSpec,
    namespace: str,
    batch_v1: Any,
    resolve: ResolveTarget,
    *,
    clients: ClientPool | None = None,
    unreadable_stores: Collection[str] = (),
    api_timeout: float | None = None,
) -> list[BackupResult]:
    """Every backup of a claim, concurrently; a failure becomes a reason, never an exception.

    `unreadable_stores`: stores this pass could not check, whose artifacts are not retried;
    `api_timeout`: seconds allowed for each Kubernetes API request.
    """
    return list(
        await asyncio.gather(
            *(
                check_backup(
                    spec,
                    b,
                    namespace,
                    batch_v1,
                    resolve,
                    clients=clients,
                    unreadable_stores=unreadable_stores,
                    api_timeout=api_timeout,
                )
                for b in spec.backups
            )
        )
    )
