"""Metrics: exact names and labels, built from the latest verdicts, gone with their claim."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from datarch.backups import BackupResult
from datarch.claims import ClaimSpec
from datarch.findings import Finding, FindingKind, Severity
from datarch.observations import NatsConsumerObs, NatsStreamObs, ObservedNats
from datarch.reporting import metrics
from datarch.verification import StoreResult, Verdict

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

SPEC = ClaimSpec.model_validate(
    {
        "stores": [
            {"name": "main", "kind": "postgres"},
            {
                "name": "events",
                "kind": "nats",
                "nats": {"streams": [{"name": "EVENTS", "consumers": [{"name": "worker"}]}]},
            },
            {"name": "objects", "kind": "s3"},
        ],
        "backups": [{"name": "main-nightly", "store": "main", "cronJob": {"name": "pg-backup"}}],
    }
)

DESIGN_NAMES = {
    "datarch_findings",
    "datarch_claim_conforming",
    "datarch_store_up",
    "datarch_store_unchecked_fields",  # extends DESIGN.md: documented fields not read
    "datarch_verification_duration_seconds",
    "datarch_last_verification_timestamp_seconds",
    "datarch_verifications",  # the parser drops a counter's _total
    "datarch_nats_consumer_num_pending",
    "datarch_nats_consumer_num_ack_pending",
    "datarch_nats_consumer_num_redelivered",
    "datarch_nats_consumer_num_max_delivered",  # extends DESIGN.md: abandoned messages
    "datarch_nats_consumer_oldest_unacked_age_seconds",
    "datarch_backup_last_success_timestamp_seconds",
    "datarch_backup_age_seconds",
    "datarch_backup_fresh",
    "datarch_backup_artifact_age_seconds",
}


def consumer(name: str, pending: int) -> NatsConsumerObs:
    return NatsConsumerObs(
        name=name,
        durable=True,
        ack_policy="explicit",
        deliver_policy="all",
        filter_subjects=(),
        max_deliver=-1,
        ack_wait_seconds=30,
        max_ack_pending=1000,
        num_pending=pending,
        num_ack_pending=7,
        num_redelivered=2,
        oldest_unacked_age_seconds=42.0,
    )


def nats_observation() -> ObservedNats:
    stream = NatsStreamObs(
        name="EVENTS",
        subjects=("app.>",),
        retention="limits",
        storage="file",
        replicas=1,
        max_age_seconds=0,
        max_bytes=-1,
        max_msgs=-1,
        max_msg_size=-1,
        discard="old",
        duplicate_window_seconds=120,
        allow_direct=False,
        sealed=False,
        mirror=None,
        sources=(),
        consumers=(consumer("worker", 1500), consumer("undocumented", 3)),
    )
    return ObservedNats(version="2.10.0", streams=(stream,))


def full_verdict(objects_up: bool = True, started: datetime = T0) -> Verdict:
    findings = (
        Finding("main/public.users", FindingKind.MISSING, Severity.CRITICAL),
        Finding("main/public.orgs.columns.id", FindingKind.DIFFERENT, Severity.WARNING),
        Finding("main/public.orgs.columns.name", FindingKind.DIFFERENT, Severity.WARNING),
    )
    objects = (
        StoreResult(name="objects", kind="s3", reachable=True)
        if objects_up
        else StoreResult(
            name="objects", kind="s3", reachable=False, error_reason="StoreUnreachable"
        )
    )
    return Verdict(
        stores=(
            StoreResult(name="main", kind="postgres", reachable=True, findings=findings),
            StoreResult(name="events", kind="nats", reachable=True, observation=nats_observation()),
            objects,
        ),
        backups=(
            BackupResult(
                "main-nightly",
                fresh=True,
                reason="BackupFresh",
                last_successful_time=T0 - timedelta(hours=3),
                age_seconds=10800.0,
                artifact_age_seconds=10000.0,
            ),
        ),
        started_at=started,
        duration_seconds=0.75,
    )


def scrape(registry: CollectorRegistry) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    body, _ = metrics.exposition(registry)
    samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float | None:
    key = frozenset({"claim_namespace": "data", "claim": "platform", **labels}.items())
    return samples.get((name, key))


def collector_and_registry() -> tuple[metrics.VerdictCollector, CollectorRegistry]:
    collector = metrics.VerdictCollector()
    return collector, metrics.registry_with(collector)


def test_every_design_metric_is_exposed_and_nothing_else() -> None:
    collector, registry = collector_and_registry()
    collector.record("data", "platform", SPEC, full_verdict())
    body, _ = metrics.exposition(registry)
    names = {family.name for family in text_string_to_metric_families(body.decode())}
    assert names == DESIGN_NAMES


def test_findings_are_counted_per_store_and_severity_with_zeros_for_checked_stores() -> None:
    collector, registry = collector_and_registry()
    collector.record("data", "platform", SPEC, full_verdict(objects_up=False))
    samples = scrape(registry)
    assert value(samples, "datarch_findings", store="main", severity="critical") == 1
    assert value(samples, "datarch_findings", store="main", severity="warning") == 2
    assert value(samples, "datarch_findings", store="main", severity="info") == 0
    assert value(samples, "datarch_findings", store="events", severity="critical") == 0
    # A store that could not be read has unknown findings: no series rather than a false 0.
    assert value(samples, "datarch_findings", store="objects", severity="critical") is None


def test_store_up_and_conforming_follow_the_verdict() -> None:
    collector, registry = collector_and_registry()
    collector.record("data", "platform", SPEC, full_verdict())
    samples = scrape(registry)
    assert value(samples, "datarch_store_up", store="main", kind="postgres") == 1
    assert value(samples, "datarch_claim_conforming") == 0
    clean = Verdict(
        stores=(StoreResult(name="main", kind="postgres", reachable=True),), started_at=T0
    )
    collector.record("data", "platform", SPEC, clean)
    assert value(scrape(registry), "datarch_claim_conforming") == 1


def test_conforming_is_absent_while_a_store_could_not_be_checked() -> None:
    collector, registry = collector_and_registry()
    blind = Verdict(
        stores=(
            StoreResult(name="objects", kind="s3", reachable=False, error_reason="StoreTimeout"),
        ),
        started_at=T0,
    )
    collector.record("data", "platform", SPEC, blind)
    samples = scrape(registry)
    assert value(samples, "datarch_claim_conforming") is None
    assert value(samples, "datarch_store_up", store="objects", kind="s3") == 0
    assert value(samples, "datarch_verifications_total", result="error") == 1


def test_passes_accumulate_in_the_counter_and_the_histogram() -> None:
    collector, registry = collector_and_registry()
    for _ in range(3):
        collector.record("data", "platform", SPEC, full_verdict())
    collector.record_error("data", "platform", 0.01)
    samples = scrape(registry)
    assert value(samples, "datarch_verifications_total", result="findings") == 3
    assert value(samples, "datarch_verifications_total", result="ok") == 0
    assert value(samples, "datarch_verifications_total", result="error") == 1
    assert value(samples, "datarch_verification_duration_seconds_count") == 4
    assert value(samples, "datarch_verification_duration_seconds_bucket", le="1.0") == 4
    assert value(samples, "datarch_verification_duration_seconds_bucket", le="0.5") == 1
    assert value(samples, "datarch_verification_duration_seconds_sum") == 3 * 0.75 + 0.01
    assert value(samples, "datarch_last_verification_timestamp_seconds") == T0.timestamp() + 0.75


def test_consumer_lag_has_series_only_for_consumers_the_claim_names() -> None:
    collector, registry = collector_and_registry()
    collector.record("data", "platform", SPEC, full_verdict())
    samples = scrape(registry)
    worker = {"store": "events", "stream": "EVENTS", "consumer": "worker"}
    assert value(samples, "datarch_nats_consumer_num_pending", **worker) == 1500
    assert value(samples, "datarch_nats_consumer_num_ack_pending", **worker) == 7
    assert value(samples, "datarch_nats_consumer_num_redelivered", **worker) == 2
    assert value(samples, "datarch_nats_consumer_oldest_unacked_age_seconds", **worker) == 42
    assert not any(dict(labels).get("consumer") == "undocumented" for _, labels in samples)


def test_backups_report_last_success_age_freshness_and_artifact_age() -> None:
    collector, registry = collector_and_registry()
    collector.record("data", "platform", SPEC, full_verdict())
    samples = scrape(registry)
    backup = {"backup": "main-nightly"}
    assert value(samples, "datarch_backup_fresh", **backup) == 1
    assert value(samples, "datarch_backup_age_seconds", **backup) == 10800
    assert value(samples, "datarch_backup_artifact_age_seconds", **backup) == 10000
    assert value(samples, "datarch_backup_last_success_timestamp_seconds", **backup) == (
        (T0 - timedelta(hours=3)).timestamp()
    )


def test_a_forgotten_claim_leaves_no_series_behind_and_others_stay() -> None:
    collector, registry = collector_and_registry()
    collector.record("data", "platform", SPEC, full_verdict())
    collector.record("data", "other", SPEC, full_verdict())
    collector.forget("data", "platform")
    samples = scrape(registry)
    assert not any(dict(labels).get("claim") == "platform" for _, labels in samples)
    assert any(dict(labels).get("claim") == "other" for _, labels in samples)


def test_a_store_or_backup_missing_from_the_next_verdict_loses_its_series() -> None:
    collector, registry = collector_and_registry()
    collector.record("data", "platform", SPEC, full_verdict())
    smaller = Verdict(
        stores=(StoreResult(name="main", kind="postgres", reachable=True),), started_at=T0
    )
    collector.record("data", "platform", SPEC, smaller)
    samples = scrape(registry)
    assert value(samples, "datarch_store_up", store="objects", kind="s3") is None
    assert value(samples, "datarch_backup_fresh", backup="main-nightly") is None
    assert value(samples, "datarch_store_up", store="main", kind="postgres") == 1


def test_the_docstring_sample_line_is_what_a_scrape_prints() -> None:
    collector, registry = collector_and_registry()
    three = tuple(Finding(f"main/t{i}", FindingKind.MISSING, Severity.CRITICAL) for i in range(3))
    verdict = Verdict(
        stores=(StoreResult(name="main", kind="postgres", reachable=True, findings=three),)
    )
    collector.record("data", "platform", SPEC, verdict)
    body, _ = metrics.exposition(registry)
    sample = next(
        line.strip()
        for line in (metrics.__doc__ or "").splitlines()
        if line.strip().startswith("datarch_")
    )
    assert sample in body.decode().splitlines()


def test_an_invalid_claim_drops_the_gauges_of_its_last_verdict() -> None:
    # A claim verified clean, then edited into a spec the operator cannot verify: its
    # Conforming is Unknown now, so datarch_claim_conforming must not stay at 1.
    collector, registry = collector_and_registry()
    clean = Verdict(
        stores=(StoreResult(name="main", kind="postgres", reachable=True),), started_at=T0
    )
    collector.record("data", "platform", SPEC, clean)
    assert value(scrape(registry), "datarch_claim_conforming") == 1
    collector.record_error("data", "platform", 0.01, unknown=True)
    samples = scrape(registry)
    assert value(samples, "datarch_claim_conforming") is None
    assert value(samples, "datarch_store_up", store="main", kind="postgres") is None
    assert value(samples, "datarch_findings", store="main", severity="critical") is None
    assert value(samples, "datarch_verifications_total", result="error") == 1
    assert value(samples, "datarch_verifications_total", result="ok") == 1


def test_a_backup_whose_freshness_could_not_be_told_has_no_fresh_series() -> None:
    # CronJobUnreadable (e.g. forbidden) is not "stale" nor "never succeeded": a 0 would
    # fire DatarchBackupNeverSucceeded for a backup that may well run every night.
    collector, registry = collector_and_registry()
    unreadable = Verdict(
        stores=(StoreResult(name="main", kind="postgres", reachable=True),),
        backups=(
            BackupResult("main-nightly", fresh=False, reason="CronJobUnreadable", message="x"),
            BackupResult(
                "artifact",
                fresh=False,
                reason="ArtifactUnreadable",
                last_successful_time=T0 - timedelta(hours=3),
                age_seconds=10800.0,
            ),
            BackupResult("gone", fresh=False, reason="CronJobNotFound"),
        ),
        started_at=T0,
    )
    collector.record("data", "platform", SPEC, unreadable)
    samples = scrape(registry)
    assert value(samples, "datarch_backup_fresh", backup="main-nightly") is None
    assert value(samples, "datarch_backup_fresh", backup="artifact") is None
    assert value(samples, "datarch_backup_age_seconds", backup="artifact") == 10800
    assert value(samples, "datarch_backup_fresh", backup="gone") == 0
