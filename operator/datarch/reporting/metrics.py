"""Prometheus metrics, built at scrape time from the latest verdict of each claim.

The only importer of prometheus_client. Nothing here is a live gauge that a pass
sets: `VerdictCollector` keeps the latest verdict per claim (plus the two
cumulative series, the verifications counter and the duration histogram) and
turns them into samples when scraped. Forgetting a claim, or a verdict without
a store, consumer or backup that the previous one had, makes their series
disappear. Gauges describe the claim as of its last verification (an age is the
age then; `time() - datarch_backup_last_success_timestamp_seconds` gives it now).

Sample (names and labels are fixed by DESIGN.md; the exposition sorts labels):
    datarch_findings{claim="platform",claim_namespace="data",severity="critical",store="main"} 3.0
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from datarch.backups import BackupResult
from datarch.claims import ClaimSpec
from datarch.findings import Severity
from datarch.observations import ObservedNats
from datarch.verification import Verdict

CLAIM_LABELS = ("claim_namespace", "claim")
RESULTS = ("ok", "findings", "error")
# Seconds; a pass is bounded by spec.timeout per store (30s by default) plus backups.
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


@dataclass
class _ClaimSeries:
    """Everything scraped about one claim: its latest verdict and its cumulative counts."""

    verdict: Verdict | None = None
    named_consumers: frozenset[tuple[str, str, str]] = frozenset()
    results: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RESULTS, 0))
    bucket_counts: list[int] = field(default_factory=lambda: [0] * (len(DURATION_BUCKETS) + 1))
    duration_sum: float = 0.0


def _named_consumers(spec: ClaimSpec) -> frozenset[tuple[str, str, str]]:
    """Consumers the claim itself names: the only ones that get series (bounded cardinality)."""
    return frozenset(
        (store.name, stream.name, consumer.name)
        for store in spec.stores
        if store.nats is not None
        for stream in store.nats.streams or ()
        for consumer in stream.consumers or ()
    )


def _lean(verdict: Verdict) -> Verdict:
    """The verdict without the observations no series reads (a large schema's catalog)."""
    stores = tuple(
        s if isinstance(s.observation, ObservedNats) else replace(s, observation=None)
        for s in verdict.stores
    )
    return replace(verdict, stores=stores)


class VerdictCollector(Collector):
    """Collects every datarch_ series from the latest verdicts; register it in a registry."""

    def __init__(self) -> None:
        self._claims: dict[tuple[str, str], _ClaimSeries] = {}
        self._lock = threading.Lock()  # scrapes may come from another thread than passes

    def record(self, namespace: str, claim: str, spec: ClaimSpec, verdict: Verdict) -> None:
        """One finished pass: it becomes the claim's latest verdict and adds to its counts."""
        with self._lock:
            series = self._claims.setdefault((namespace, claim), _ClaimSeries())
            series.verdict = _lean(verdict)
            series.named_consumers = _named_consumers(spec)
            series.results[verdict.result] += 1
            self._observe(series, verdict.duration_seconds)

    def record_error(
        self, namespace: str, claim: str, duration_seconds: float = 0.0, *, unknown: bool = False
    ) -> None:
        """A pass that produced no verdict: counted in the error results and the histogram.

        `unknown`: nothing about the claim is known any more (its spec is invalid), so the
        previous verdict's gauges go too; a conforming 1 or store_up 1 would claim a check
        that no longer happens. Otherwise the gauges keep the last verdict.
        """
        with self._lock:
            series = self._claims.setdefault((namespace, claim), _ClaimSeries())
            series.results["error"] += 1
            self._observe(series, duration_seconds)
            if unknown:
                series.verdict = None
                series.named_consumers = frozenset()

    @staticmethod
    def _observe(series: _ClaimSeries, seconds: float) -> None:
        index = next((i for i, bound in enumerate(DURATION_BUCKETS) if seconds <= bound), -1)
        series.bucket_counts[index] += 1
        series.duration_sum += seconds

    def forget(self, namespace: str, claim: str) -> None:
        """The claim is gone: every one of its series disappears from the next scrape."""
        with self._lock:
            self._claims.pop((namespace, claim), None)

    def describe(self) -> Iterable[Metric]:
        return []  # unchecked collector: the registry does not need names up front

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            claims = sorted(self._claims.items())
        families = _Families()
        for (namespace, claim), series in claims:
            families.add_claim((namespace, claim), series)
        yield from families.all()


class _Families:
    """The metric families of one scrape, filled claim by claim."""

    def __init__(self) -> None:
        def gauge(name: str, doc: str, *labels: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, doc, labels=[*CLAIM_LABELS, *labels])

        self.findings = gauge(
            "datarch_findings",
            "Findings of the last pass, by store and severity.",
            "store",
            "severity",
        )
        self.conforming = gauge(
            "datarch_claim_conforming",
            "1 when the last pass found nothing, 0 when it found something; "
            "absent while some store could not be checked.",
        )
        self.store_up = gauge(
            "datarch_store_up", "1 when the store answered in the last pass.", "store", "kind"
        )
        self.unchecked_fields = gauge(
            "datarch_store_unchecked_fields",
            "Documented fields of a store read in the last pass that the probe could not "
            "read (a grant is missing); above 0 the claim's conformance is unknown.",
            "store",
            "kind",
        )
        self.duration = HistogramMetricFamily(
            "datarch_verification_duration_seconds",
            "Duration of verification passes.",
            labels=list(CLAIM_LABELS),
        )
        self.last_verified = gauge(
            "datarch_last_verification_timestamp_seconds", "When the last pass finished, Unix time."
        )
        self.results = CounterMetricFamily(
            "datarch_verifications_total",
            "Verification passes by result: ok, findings, error.",
            labels=[*CLAIM_LABELS, "result"],
        )
        consumer = ("store", "stream", "consumer")
        self.num_pending = gauge(
            "datarch_nats_consumer_num_pending",
            "Messages not yet delivered to the consumer.",
            *consumer,
        )
        self.num_ack_pending = gauge(
            "datarch_nats_consumer_num_ack_pending",
            "Messages delivered but not yet acknowledged.",
            *consumer,
        )
        self.num_redelivered = gauge(
            "datarch_nats_consumer_num_redelivered",
            "Messages redelivered at least once.",
            *consumer,
        )
        self.num_max_delivered = gauge(
            "datarch_nats_consumer_num_max_delivered",
            "Messages that exhausted max_deliver (abandoned, not lag), as recorded by a stream "
            "keeping the consumer's MAX_DELIVERIES advisories; absent when none does.",
            *consumer,
        )
        self.oldest_unacked = gauge(
            "datarch_nats_consumer_oldest_unacked_age_seconds",
            "Age of the oldest unacknowledged message; never too high: a lower bound when "
            "JetStream cannot say which message still awaits an ack.",
            *consumer,
        )
        self.backup_last_success = gauge(
            "datarch_backup_last_success_timestamp_seconds",
            "Last successful backup run, Unix time.",
            "backup",
        )
        self.backup_age = gauge(
            "datarch_backup_age_seconds",
            "Age of the last successful backup at the last pass.",
            "backup",
        )
        self.backup_fresh = gauge(
            "datarch_backup_fresh",
            "1 when the backup runs as documented and is within maxAge; "
            "absent while its freshness could not be told.",
            "backup",
        )
        self.artifact_age = gauge(
            "datarch_backup_artifact_age_seconds",
            "Age of the newest backup artifact at the last pass.",
            "backup",
        )

    def all(self) -> list[Metric]:
        return [
            self.findings,
            self.conforming,
            self.store_up,
            self.unchecked_fields,
            self.duration,
            self.last_verified,
            self.results,
            self.num_pending,
            self.num_ack_pending,
            self.num_redelivered,
            self.num_max_delivered,
            self.oldest_unacked,
            self.backup_last_success,
            self.backup_age,
            self.backup_fresh,
            self.artifact_age,
        ]

    def add_claim(self, claim: tuple[str, str], series: _ClaimSeries) -> None:
        labels = list(claim)
        for result in RESULTS:
            self.results.add_metric([*labels, result], series.results[result])
        cumulative, buckets = 0, []
        for bound, count in zip(
            (*DURATION_BUCKETS, float("inf")), series.bucket_counts, strict=True
        ):
            cumulative += count
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
        self.duration.add_metric(labels, buckets, series.duration_sum)
        verdict = series.verdict
        if verdict is None:
            return
        finished = verdict.started_at + timedelta(seconds=verdict.duration_seconds)
        self.last_verified.add_metric(labels, finished.timestamp())
        if verdict.conforming is not None:
            self.conforming.add_metric(labels, 1.0 if verdict.conforming else 0.0)
        for store in verdict.stores:
            self.store_up.add_metric(
                [*labels, store.name, store.kind], 1.0 if store.reachable else 0.0
            )
            if store.checked:  # an unchecked store has unknown findings: no series, not 0
                counts = {s: 0 for s in Severity}
                for finding in store.findings:
                    counts[finding.severity] += 1
                for severity, count in counts.items():
                    self.findings.add_metric([*labels, store.name, severity.value], count)
                self.unchecked_fields.add_metric(
                    [*labels, store.name, store.kind], len(store.unchecked)
                )
            if isinstance(store.observation, ObservedNats):
                self._add_consumers(labels, store.name, store.observation, series.named_consumers)
        for backup in verdict.backups:
            self._add_backup(labels, backup)

    def _add_consumers(
        self,
        labels: Sequence[str],
        store: str,
        observed: ObservedNats,
        named: frozenset[tuple[str, str, str]],
    ) -> None:
        for stream in observed.streams:
            for consumer in stream.consumers:
                if (store, stream.name, consumer.name) not in named:
                    continue
                key = [*labels, store, stream.name, consumer.name]
                self.num_pending.add_metric(key, consumer.num_pending)
                self.num_ack_pending.add_metric(key, consumer.num_ack_pending)
                self.num_redelivered.add_metric(key, consumer.num_redelivered)
                if consumer.num_max_delivered is not None:
                    self.num_max_delivered.add_metric(key, consumer.num_max_delivered)
                if consumer.oldest_unacked_age_seconds is not None:
                    self.oldest_unacked.add_metric(key, consumer.oldest_unacked_age_seconds)

    def _add_backup(self, labels: Sequence[str], backup: BackupResult) -> None:
        key = [*labels, backup.name]
        if backup.checked:  # freshness unknown (CronJob or artifact unreadable): absent, not 0
            self.backup_fresh.add_metric(key, 1.0 if backup.fresh else 0.0)
        if backup.last_successful_time is not None:
            self.backup_last_success.add_metric(key, backup.last_successful_time.timestamp())
        if backup.age_seconds is not None:
            self.backup_age.add_metric(key, backup.age_seconds)
        if backup.artifact_age_seconds is not None:
            self.artifact_age.add_metric(key, backup.artifact_age_seconds)


def registry_with(collector: Collector) -> CollectorRegistry:
    """A registry of its own holding only `collector`: no process or platform series."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def exposition(registry: CollectorRegistry) -> tuple[bytes, str]:
    """The text exposition of a registry and its content type."""
    return generate_latest(registry), CONTENT_TYPE_LATEST


async def start_metrics_server(registry: CollectorRegistry, host: str, port: int) -> web.AppRunner:
    """Serve GET /metrics on host:port until the returned runner is cleaned up."""

    async def metrics(_: web.Request) -> web.Response:
        body, content_type = exposition(registry)
        response = web.Response(body=body)
        response.headers["Content-Type"] = content_type
        return response

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
