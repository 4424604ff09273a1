"""NATS JetStream comparison: claimed streams, consumers, KV and object stores vs ObservedNats.

Pure: no I/O, no clock, no driver. It never guesses: a field the claim leaves
out is not checked, and a documented figure the probe could not read (an
oldest unacked age of None) is Unchecked: neither a finding nor a pass.

Severities. Critical: what makes a stream a different stream (a missing stream
or consumer, its subjects, retention, storage, mirror, sources, sealed), since
publishers or consumers break. Warning: limits and tuning (max age, bytes,
msgs, msg size, replicas, discard, duplicate window, allow direct, consumer
settings) and exceeded lag thresholds. Warning as well: undocumented objects in
strict mode.

Paths name the claim's fields: `EVENTS.maxAge`, `EVENTS.consumers.worker.lag.maxPending`,
`kv.sessions.history`, `objectstore.files.ttl` (the prefixes the JUnit output
groups by). KV buckets and object stores are streams `KV_<bucket>` and
`OBJ_<bucket>` underneath; they are reported by their bucket name.

Strict mode counts, for each list the claim states (even empty), what that list
could have documented: plain streams for `streams`, `KV_` streams for
`keyValues`, `OBJ_` streams for `objectStores`, each only when its stream or
bucket name matches a `scope` glob (all when scope is empty); and, for a
documented stream whose `consumers` list is stated, its durable consumers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from datarch.claims import (
    NatsConsumer,
    NatsExpectations,
    NatsKeyValue,
    NatsObjectStore,
    NatsStream,
    Store,
)
from datarch.comparison.scope import in_scope
from datarch.durations import format_duration, parse_duration
from datarch.findings import Finding, FindingKind, Outcome, Severity, Unchecked
from datarch.observations import NatsConsumerObs, NatsStreamObs, ObservedNats

KV_PREFIX = "KV_"
OBJECT_STORE_PREFIX = "OBJ_"

_CRITICAL = Severity.CRITICAL
_WARNING = Severity.WARNING


def compare_nats(store: Store, observed: ObservedNats) -> list[Outcome]:
    # The server version constraint is verification's to check, for every kind alike.
    claim = store.nats
    if claim is None:
        return []
    findings: list[Outcome] = []
    streams = {stream.name: stream for stream in observed.streams}
    for stream in claim.streams or ():
        findings += _compare_stream(stream, streams.get(stream.name), strict=store.strict)
    for bucket in claim.key_values or ():
        findings += _compare_bucket(
            f"kv.{bucket.bucket}", bucket, streams.get(KV_PREFIX + bucket.bucket)
        )
    for objects in claim.object_stores or ():
        findings += _compare_bucket(
            f"objectstore.{objects.bucket}",
            objects,
            streams.get(OBJECT_STORE_PREFIX + objects.bucket),
        )
    if store.strict:
        findings += _unexpected_streams(claim, observed.streams, store.scope)
    return findings


# --- streams -----------------------------------------------------------------


def _compare_stream(
    expected: NatsStream, observed: NatsStreamObs | None, *, strict: bool
) -> list[Outcome]:
    path = expected.name
    if observed is None:
        return [Finding(path, FindingKind.MISSING, _CRITICAL)]
    findings: list[Outcome] = []
    findings += _compare_fields(
        path,
        [
            ("subjects", expected.subjects, observed.subjects, _same_set, _CRITICAL),
            ("retention", expected.retention, observed.retention, _equal, _CRITICAL),
            ("storage", expected.storage, observed.storage, _equal, _CRITICAL),
            ("mirror", expected.mirror, observed.mirror, _equal, _CRITICAL),
            ("sources", expected.sources, observed.sources, _same_set, _CRITICAL),
            ("sealed", expected.sealed, observed.sealed, _equal, _CRITICAL),
            ("replicas", expected.replicas, observed.replicas, _equal, _WARNING),
            ("maxAge", expected.max_age, observed.max_age_seconds, _same_duration, _WARNING),
            ("maxBytes", expected.max_bytes, observed.max_bytes, _same_limit, _WARNING),
            ("maxMsgs", expected.max_msgs, observed.max_msgs, _same_limit, _WARNING),
            ("maxMsgSize", expected.max_msg_size, observed.max_msg_size, _same_limit, _WARNING),
            ("discard", expected.discard, observed.discard, _equal, _WARNING),
            (
                "duplicateWindow",
                expected.duplicate_window,
                observed.duplicate_window_seconds,
                _same_duration,
                _WARNING,
            ),
            ("allowDirect", expected.allow_direct, observed.allow_direct, _equal, _WARNING),
        ],
    )
    if expected.consumers is None:
        return findings
    if not observed.consumers_listed:
        # The probe did not list them (the stream went away between two reads):
        # "missing" would be a guess and silence a pass.
        findings.append(Unchecked(f"{path}.consumers", "the probe could not list them"))
        return findings
    consumers = {consumer.name: consumer for consumer in observed.consumers}
    for consumer in expected.consumers:
        findings += _compare_consumer(
            f"{path}.consumers.{consumer.name}", consumer, consumers.get(consumer.name)
        )
    if strict:
        documented = {consumer.name for consumer in expected.consumers}
        findings += [
            Finding(
                f"{path}.consumers.{consumer.name}",
                FindingKind.UNEXPECTED,
                _WARNING,
                observed="durable consumer",
            )
            for consumer in sorted(observed.consumers, key=lambda c: c.name)
            if consumer.durable and consumer.name not in documented
        ]
    return findings


def _compare_consumer(
    path: str, expected: NatsConsumer, observed: NatsConsumerObs | None
) -> list[Outcome]:
    if observed is None:
        return [Finding(path, FindingKind.MISSING, _CRITICAL)]
    findings: list[Outcome] = []
    findings += _compare_fields(
        path,
        [
            ("ackPolicy", expected.ack_policy, observed.ack_policy, _equal, _WARNING),
            ("deliverPolicy", expected.deliver_policy, observed.deliver_policy, _equal, _WARNING),
            (
                "filterSubjects",
                expected.filter_subjects,
                observed.filter_subjects,
                _same_set,
                _WARNING,
            ),
            ("maxDeliver", expected.max_deliver, observed.max_deliver, _same_limit, _WARNING),
            ("ackWait", expected.ack_wait, observed.ack_wait_seconds, _same_duration, _WARNING),
            (
                "maxAckPending",
                expected.max_ack_pending,
                observed.max_ack_pending,
                _equal,
                _WARNING,
            ),
        ],
    )
    lag = expected.lag
    if lag is None:
        return findings
    for field, limit, figure in (
        ("lag.maxPending", lag.max_pending, observed.num_pending),
        ("lag.maxAckPending", lag.max_ack_pending, observed.num_ack_pending),
        ("lag.maxRedelivered", lag.max_redelivered, observed.num_redelivered),
    ):
        if limit is not None and figure > limit:
            findings.append(
                Finding(
                    f"{path}.{field}", FindingKind.DIFFERENT, _WARNING, f"<= {limit}", str(figure)
                )
            )
    if lag.max_max_delivered is not None:
        findings += _max_delivered(f"{path}.lag.maxMaxDelivered", lag.max_max_delivered, observed)
    age = observed.oldest_unacked_age_seconds
    limit_text = lag.max_oldest_unacked_age
    if limit_text is not None and age is None:
        findings.append(
            Unchecked(
                f"{path}.lag.maxOldestUnackedAge",
                "the messages awaiting an ack are no longer stored, so none can be timed",
            )
        )
    if limit_text is not None and age is not None:
        findings += _oldest_unacked(f"{path}.lag.maxOldestUnackedAge", limit_text, observed)
    return findings


def _max_delivered(path: str, limit: int, observed: NatsConsumerObs) -> list[Outcome]:
    """Abandoned messages are their own fact: counted only where the advisories are kept."""
    count = observed.num_max_delivered
    if count is None:
        return [
            Unchecked(
                path,
                "JetStream keeps no count of messages that exhausted maxDeliver, and no stream "
                "records this consumer's $JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES advisories",
            )
        ]
    if count <= limit:
        return []
    return [Finding(path, FindingKind.DIFFERENT, _WARNING, f"<= {limit}", str(count))]


def _oldest_unacked(path: str, limit_text: str, observed: NatsConsumerObs) -> list[Outcome]:
    """Judge only what the bounds decide: the age read is never too high, `at_most` never too low."""
    age = observed.oldest_unacked_age_seconds or 0.0
    limit = parse_duration(limit_text)
    if observed.oldest_unacked_age_exact:
        if age <= limit:
            return []
        return [
            Finding(path, FindingKind.DIFFERENT, _WARNING, f"<= {limit_text}", _duration_text(age))
        ]
    at_most = observed.oldest_unacked_age_at_most_seconds
    why = (
        "JetStream does not say which of the messages delivered after the ack floor still "
        "await an ack (others were acknowledged out of order or exhausted maxDeliver)"
    )
    if age > limit:
        return [
            Finding(
                path,
                FindingKind.DIFFERENT,
                _WARNING,
                f"<= {limit_text}",
                f"at least {_duration_text(age)}",
                f"expected <= {limit_text}, observed at least {_duration_text(age)} (a lower "
                f"bound: {why})",
            )
        ]
    if at_most is not None and at_most <= limit:
        return []
    upper = "unknown" if at_most is None else _duration_text(at_most)
    return [
        Unchecked(
            path,
            f"the oldest message awaiting an ack is between {_duration_text(age)} and {upper} "
            f"old: {why}",
        )
    ]


# --- KV buckets and object stores -----------------------------------------------


def _compare_bucket(
    path: str, expected: NatsKeyValue | NatsObjectStore, observed: NatsStreamObs | None
) -> list[Finding]:
    """A KV bucket or an object store: the same stream settings, and history for KV only."""
    if observed is None:
        return [Finding(path, FindingKind.MISSING, _CRITICAL)]
    history = expected.history if isinstance(expected, NatsKeyValue) else None
    return _compare_fields(
        path,
        [
            ("storage", expected.storage, observed.storage, _equal, _CRITICAL),
            ("history", history, observed.history, _equal, _WARNING),
            ("ttl", expected.ttl, observed.max_age_seconds, _same_duration, _WARNING),
            ("maxBytes", expected.max_bytes, observed.max_bytes, _same_limit, _WARNING),
            ("replicas", expected.replicas, observed.replicas, _equal, _WARNING),
        ],
    )


# --- strict mode -----------------------------------------------------------------


def _unexpected_streams(
    claim: NatsExpectations, observed: Iterable[NatsStreamObs], scope: Sequence[str]
) -> list[Finding]:
    documented_streams = {stream.name for stream in claim.streams or ()}
    documented_kv = {bucket.bucket for bucket in claim.key_values or ()}
    documented_objects = {bucket.bucket for bucket in claim.object_stores or ()}
    findings = []
    for stream in sorted(observed, key=lambda s: s.name):
        if stream.name in documented_streams:
            # A claim may document a KV_ or OBJ_ stream as a plain stream.
            continue
        if stream.name.startswith(KV_PREFIX):
            counted, bucket = claim.key_values is not None, stream.name[len(KV_PREFIX) :]
            path, documented, what = f"kv.{bucket}", bucket in documented_kv, "KV bucket"
        elif stream.name.startswith(OBJECT_STORE_PREFIX):
            counted, bucket = (
                claim.object_stores is not None,
                stream.name[len(OBJECT_STORE_PREFIX) :],
            )
            path, documented, what = (
                f"objectstore.{bucket}",
                bucket in documented_objects,
                "object store",
            )
        else:
            counted, bucket = claim.streams is not None, stream.name
            path, documented, what = stream.name, False, "stream"
        if not counted or documented or not in_scope(scope, stream.name, bucket):
            continue
        findings.append(Finding(path, FindingKind.UNEXPECTED, _WARNING, observed=what))
    return findings


# --- field comparison ---------------------------------------------------------------

# (field, expected as the claim states it, observed, same?, severity); expected None is not checked.
_Field = tuple[str, object, object, Callable[[object, object], bool], Severity]


def _compare_fields(path: str, fields: Iterable[_Field]) -> list[Finding]:
    findings = []
    for name, expected, observed, same, severity in fields:
        if expected is None or same(expected, observed):
            continue
        findings.append(
            Finding(
                f"{path}.{name}",
                FindingKind.DIFFERENT,
                severity,
                _expected_text(expected),
                _observed_text(observed, duration=same is _same_duration),
            )
        )
    return findings


def _equal(expected: object, observed: object) -> bool:
    return expected == observed


def _same_set(expected: object, observed: object) -> bool:
    """Subjects, filter subjects and sources: order carries no meaning to the server."""
    assert isinstance(expected, Iterable) and isinstance(observed, Iterable)
    return set(expected) == set(observed)


def _same_limit(expected: object, observed: object) -> bool:
    """The server stores an unset limit (0) as -1: both mean unlimited."""
    assert isinstance(expected, int) and isinstance(observed, int)
    return expected == observed or (expected <= 0 and observed <= 0)


def _same_duration(expected: object, observed: object) -> bool:
    """Compared in whole nanoseconds, the server's own unit, so 1.5s equals 1500ms."""
    assert isinstance(expected, str) and isinstance(observed, float | int)
    return round(parse_duration(expected) * 1e9) == round(observed * 1e9)


def _expected_text(expected: object) -> str:
    if isinstance(expected, list):
        return ", ".join(str(item) for item in expected)
    if isinstance(expected, bool):
        return str(expected).lower()
    return str(expected)


def _observed_text(observed: object, *, duration: bool) -> str:
    if duration:
        assert isinstance(observed, float | int)
        return _duration_text(observed)
    if observed is None:
        return "none"
    if isinstance(observed, tuple):
        return ", ".join(str(item) for item in observed)
    if isinstance(observed, bool):
        return str(observed).lower()
    return str(observed)


def _duration_text(seconds: float) -> str:
    """Go-style like the claim ("7m12s"); sub-minute fractions stay visible ("0.25s")."""
    if seconds < 60 and seconds != round(seconds):
        return f"{seconds:.3g}s"
    return format_duration(seconds)
