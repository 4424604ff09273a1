"""compare_nats: tables of claim + observed facts -> findings, one per finding kind and field."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from datarch.claims import Store
from datarch.comparison.nats import compare_nats
from datarch.findings import Finding, FindingKind, Severity, Unchecked
from datarch.observations import NatsConsumerObs, NatsStreamObs, ObservedNats

CRITICAL, WARNING = Severity.CRITICAL, Severity.WARNING
MISSING, UNEXPECTED, DIFFERENT = FindingKind.MISSING, FindingKind.UNEXPECTED, FindingKind.DIFFERENT

WORKER = NatsConsumerObs(
    name="worker",
    durable=True,
    ack_policy="explicit",
    deliver_policy="all",
    filter_subjects=("app.events.orders",),
    max_deliver=-1,
    ack_wait_seconds=30.0,
    max_ack_pending=1000,
    num_pending=10,
    num_ack_pending=2,
    num_redelivered=0,
    oldest_unacked_age_seconds=12.0,
)
EVENTS = NatsStreamObs(
    name="EVENTS",
    subjects=("app.events.>",),
    retention="limits",
    storage="file",
    replicas=1,
    max_age_seconds=604800.0,
    max_bytes=-1,
    max_msgs=-1,
    max_msg_size=-1,
    discard="old",
    duplicate_window_seconds=120.0,
    allow_direct=False,
    sealed=False,
    mirror=None,
    sources=(),
    consumers=(WORKER,),
)
SESSIONS = replace(
    EVENTS,
    name="KV_sessions",
    subjects=("$KV.sessions.>",),
    max_age_seconds=3600.0,
    discard="new",
    allow_direct=True,
    history=5,
    consumers=(),
    consumers_listed=False,
)
FILES = replace(
    EVENTS,
    name="OBJ_files",
    subjects=("$O.files.C.>", "$O.files.M.>"),
    max_age_seconds=0.0,
    consumers=(),
    consumers_listed=False,
)


def store(nats: dict[str, Any] | None = None, **fields: Any) -> Store:
    return Store.model_validate({"name": "events", "kind": "nats", "nats": nats, **fields})


def observed(*streams: NatsStreamObs, version: str = "2.10.22") -> ObservedNats:
    return ObservedNats(version=version, streams=streams)


def events_claim(**fields: Any) -> dict[str, Any]:
    return {"streams": [{"name": "EVENTS", **fields}]}


def worker_claim(**fields: Any) -> dict[str, Any]:
    return events_claim(consumers=[{"name": "worker", **fields}])


def with_worker(**fields: Any) -> NatsStreamObs:
    return replace(EVENTS, consumers=(replace(WORKER, **fields),))


AGREEING = [
    pytest.param(events_claim(), observed(EVENTS), id="a stream named only by name"),
    pytest.param(
        events_claim(
            subjects=["app.events.>"],
            retention="limits",
            storage="file",
            replicas=1,
            maxAge="168h",
            maxBytes=-1,
            maxMsgs=-1,
            maxMsgSize=-1,
            discard="old",
            duplicateWindow="2m",
            allowDirect=False,
            sealed=False,
            sources=[],
        ),
        observed(EVENTS),
        id="every stream field as documented",
    ),
    pytest.param(
        events_claim(maxBytes=0, maxMsgs=0, maxMsgSize=0),
        observed(EVENTS),
        id="an unset limit (0) and the server's -1 both mean unlimited",
    ),
    pytest.param(
        events_claim(duplicateWindow="120000ms"),
        observed(EVENTS),
        id="durations compare as seconds whatever their unit",
    ),
    pytest.param(
        events_claim(subjects=["b.>", "a.>"]),
        observed(replace(EVENTS, subjects=("a.>", "b.>"))),
        id="subjects compare as a set",
    ),
    pytest.param(
        worker_claim(
            ackPolicy="explicit",
            deliverPolicy="all",
            filterSubjects=["app.events.orders"],
            maxDeliver=-1,
            ackWait="30s",
            maxAckPending=1000,
            lag={
                "maxPending": 10,
                "maxAckPending": 2,
                "maxRedelivered": 0,
                "maxOldestUnackedAge": "12s",
            },
        ),
        observed(EVENTS),
        id="a consumer at exactly its lag thresholds",
    ),
    pytest.param(
        {
            "keyValues": [
                {"bucket": "sessions", "history": 5, "ttl": "1h", "storage": "file", "replicas": 1}
            ]
        },
        observed(SESSIONS),
        id="a KV bucket as documented",
    ),
    pytest.param(
        {"objectStores": [{"bucket": "files", "ttl": "0s", "maxBytes": -1, "storage": "file"}]},
        observed(FILES),
        id="an object store as documented",
    ),
]


@pytest.mark.parametrize(("nats", "facts"), AGREEING)
def test_a_store_as_documented_has_no_findings(nats: dict[str, Any], facts: ObservedNats) -> None:
    assert compare_nats(store(nats), facts) == []


DIFFERING = [
    pytest.param(
        events_claim(), observed(), [Finding("EVENTS", MISSING, CRITICAL)], id="missing stream"
    ),
    pytest.param(
        events_claim(subjects=["app.events.>", "app.audit.>"]),
        observed(EVENTS),
        [
            Finding(
                "EVENTS.subjects", DIFFERENT, CRITICAL, "app.events.>, app.audit.>", "app.events.>"
            )
        ],
        id="subjects",
    ),
    pytest.param(
        events_claim(retention="workqueue"),
        observed(EVENTS),
        [Finding("EVENTS.retention", DIFFERENT, CRITICAL, "workqueue", "limits")],
        id="retention",
    ),
    pytest.param(
        events_claim(storage="memory"),
        observed(EVENTS),
        [Finding("EVENTS.storage", DIFFERENT, CRITICAL, "memory", "file")],
        id="storage",
    ),
    pytest.param(
        events_claim(mirror="ORDERS"),
        observed(EVENTS),
        [Finding("EVENTS.mirror", DIFFERENT, CRITICAL, "ORDERS", "none")],
        id="mirror",
    ),
    pytest.param(
        events_claim(sources=["A", "B"]),
        observed(replace(EVENTS, sources=("A",))),
        [Finding("EVENTS.sources", DIFFERENT, CRITICAL, "A, B", "A")],
        id="sources",
    ),
    pytest.param(
        events_claim(sealed=True),
        observed(EVENTS),
        [Finding("EVENTS.sealed", DIFFERENT, CRITICAL, "true", "false")],
        id="sealed",
    ),
    pytest.param(
        events_claim(replicas=3),
        observed(EVENTS),
        [Finding("EVENTS.replicas", DIFFERENT, WARNING, "3", "1")],
        id="replicas",
    ),
    pytest.param(
        events_claim(maxAge="24h"),
        observed(EVENTS),
        [Finding("EVENTS.maxAge", DIFFERENT, WARNING, "24h", "168h")],
        id="max age",
    ),
    pytest.param(
        events_claim(maxAge="0s"),
        observed(EVENTS),
        [Finding("EVENTS.maxAge", DIFFERENT, WARNING, "0s", "168h")],
        id="max age documented unlimited",
    ),
    pytest.param(
        events_claim(maxBytes=1048576),
        observed(EVENTS),
        [Finding("EVENTS.maxBytes", DIFFERENT, WARNING, "1048576", "-1")],
        id="max bytes",
    ),
    pytest.param(
        events_claim(maxMsgs=-1),
        observed(replace(EVENTS, max_msgs=5000)),
        [Finding("EVENTS.maxMsgs", DIFFERENT, WARNING, "-1", "5000")],
        id="max msgs",
    ),
    pytest.param(
        events_claim(maxMsgSize=1024),
        observed(EVENTS),
        [Finding("EVENTS.maxMsgSize", DIFFERENT, WARNING, "1024", "-1")],
        id="max msg size",
    ),
    pytest.param(
        events_claim(discard="new"),
        observed(EVENTS),
        [Finding("EVENTS.discard", DIFFERENT, WARNING, "new", "old")],
        id="discard",
    ),
    pytest.param(
        events_claim(duplicateWindow="500ms"),
        observed(EVENTS),
        [Finding("EVENTS.duplicateWindow", DIFFERENT, WARNING, "500ms", "2m")],
        id="duplicate window",
    ),
    pytest.param(
        events_claim(allowDirect=True),
        observed(EVENTS),
        [Finding("EVENTS.allowDirect", DIFFERENT, WARNING, "true", "false")],
        id="allow direct",
    ),
    pytest.param(
        events_claim(consumers=[{"name": "mailer"}]),
        observed(EVENTS),
        [Finding("EVENTS.consumers.mailer", MISSING, CRITICAL)],
        id="missing consumer",
    ),
    pytest.param(
        worker_claim(ackPolicy="all"),
        observed(EVENTS),
        [Finding("EVENTS.consumers.worker.ackPolicy", DIFFERENT, WARNING, "all", "explicit")],
        id="ack policy",
    ),
    pytest.param(
        worker_claim(deliverPolicy="new"),
        observed(EVENTS),
        [Finding("EVENTS.consumers.worker.deliverPolicy", DIFFERENT, WARNING, "new", "all")],
        id="deliver policy",
    ),
    pytest.param(
        worker_claim(filterSubjects=["app.events.orders", "app.events.refunds"]),
        observed(EVENTS),
        [
            Finding(
                "EVENTS.consumers.worker.filterSubjects",
                DIFFERENT,
                WARNING,
                "app.events.orders, app.events.refunds",
                "app.events.orders",
            )
        ],
        id="filter subjects",
    ),
    pytest.param(
        worker_claim(maxDeliver=5),
        observed(EVENTS),
        [Finding("EVENTS.consumers.worker.maxDeliver", DIFFERENT, WARNING, "5", "-1")],
        id="max deliver",
    ),
    pytest.param(
        worker_claim(ackWait="1m"),
        observed(EVENTS),
        [Finding("EVENTS.consumers.worker.ackWait", DIFFERENT, WARNING, "1m", "30s")],
        id="ack wait",
    ),
    pytest.param(
        worker_claim(maxAckPending=100),
        observed(EVENTS),
        [Finding("EVENTS.consumers.worker.maxAckPending", DIFFERENT, WARNING, "100", "1000")],
        id="max ack pending setting",
    ),
    pytest.param(
        worker_claim(lag={"maxPending": 1000}),
        observed(with_worker(num_pending=2500)),
        [Finding("EVENTS.consumers.worker.lag.maxPending", DIFFERENT, WARNING, "<= 1000", "2500")],
        id="lag: pending",
    ),
    pytest.param(
        worker_claim(lag={"maxAckPending": 1}),
        observed(EVENTS),
        [Finding("EVENTS.consumers.worker.lag.maxAckPending", DIFFERENT, WARNING, "<= 1", "2")],
        id="lag: ack pending",
    ),
    pytest.param(
        worker_claim(lag={"maxRedelivered": 0}),
        observed(with_worker(num_redelivered=3)),
        [Finding("EVENTS.consumers.worker.lag.maxRedelivered", DIFFERENT, WARNING, "<= 0", "3")],
        id="lag: redelivered",
    ),
    pytest.param(
        worker_claim(lag={"maxOldestUnackedAge": "5m"}),
        observed(with_worker(oldest_unacked_age_seconds=432.0)),
        [
            Finding(
                "EVENTS.consumers.worker.lag.maxOldestUnackedAge",
                DIFFERENT,
                WARNING,
                "<= 5m",
                "7m12s",
            )
        ],
        id="lag: oldest unacked age",
    ),
    pytest.param(
        worker_claim(lag={"maxOldestUnackedAge": "100ms"}),
        observed(with_worker(oldest_unacked_age_seconds=0.25)),
        [
            Finding(
                "EVENTS.consumers.worker.lag.maxOldestUnackedAge",
                DIFFERENT,
                WARNING,
                "<= 100ms",
                "0.25s",
            )
        ],
        id="lag: a sub-second age stays readable",
    ),
    pytest.param(
        {"keyValues": [{"bucket": "sessions"}]},
        observed(EVENTS),
        [Finding("kv.sessions", MISSING, CRITICAL)],
        id="missing KV bucket",
    ),
    pytest.param(
        {
            "keyValues": [
                {"bucket": "sessions", "history": 1, "ttl": "30m", "maxBytes": 1024, "replicas": 3}
            ]
        },
        observed(SESSIONS),
        [
            Finding("kv.sessions.history", DIFFERENT, WARNING, "1", "5"),
            Finding("kv.sessions.ttl", DIFFERENT, WARNING, "30m", "1h"),
            Finding("kv.sessions.maxBytes", DIFFERENT, WARNING, "1024", "-1"),
            Finding("kv.sessions.replicas", DIFFERENT, WARNING, "3", "1"),
        ],
        id="KV bucket settings",
    ),
    pytest.param(
        {"keyValues": [{"bucket": "sessions", "storage": "memory"}]},
        observed(SESSIONS),
        [Finding("kv.sessions.storage", DIFFERENT, CRITICAL, "memory", "file")],
        id="KV bucket storage",
    ),
    pytest.param(
        {"objectStores": [{"bucket": "files"}]},
        observed(EVENTS),
        [Finding("objectstore.files", MISSING, CRITICAL)],
        id="missing object store",
    ),
    pytest.param(
        {"objectStores": [{"bucket": "files", "ttl": "24h", "storage": "memory"}]},
        observed(FILES),
        [
            Finding("objectstore.files.storage", DIFFERENT, CRITICAL, "memory", "file"),
            Finding("objectstore.files.ttl", DIFFERENT, WARNING, "24h", "0s"),
        ],
        id="object store settings",
    ),
]


@pytest.mark.parametrize(("nats", "facts", "findings"), DIFFERING)
def test_each_documented_field_that_differs_is_one_finding(
    nats: dict[str, Any], facts: ObservedNats, findings: list[Finding]
) -> None:
    assert compare_nats(store(nats), facts) == findings


def test_a_lag_finding_reads_as_threshold_and_figure() -> None:
    [finding] = compare_nats(
        store(worker_claim(lag={"maxPending": 1000})), observed(with_worker(num_pending=2500))
    )
    assert (
        finding.describe()
        == "EVENTS.consumers.worker.lag.maxPending: expected <= 1000, observed 2500"
    )


def test_consumers_of_a_stream_the_probe_did_not_list_are_could_not_check_not_missing() -> None:
    facts = observed(replace(EVENTS, consumers=(), consumers_listed=False))
    assert compare_nats(store(worker_claim(), strict=True), facts) == [
        Unchecked("EVENTS.consumers", "the probe could not list them")
    ]


def test_an_oldest_unacked_age_the_probe_could_not_read_is_could_not_check() -> None:
    facts = observed(with_worker(oldest_unacked_age_seconds=None))
    assert compare_nats(store(worker_claim(lag={"maxOldestUnackedAge": "1s"})), facts) == [
        Unchecked(
            "EVENTS.consumers.worker.lag.maxOldestUnackedAge",
            "the messages awaiting an ack are no longer stored, so none can be timed",
        )
    ]


def test_without_a_nats_block_there_is_nothing_to_compare() -> None:
    """The version constraint is verification's to check, for every kind alike."""
    assert compare_nats(store(None, strict=True, version=">=9"), observed(EVENTS, SESSIONS)) == []


# --- strict mode -----------------------------------------------------------------

AUDIT = replace(EVENTS, name="AUDIT", consumers=(), consumers_listed=False)
THE0_JOBS = replace(EVENTS, name="THE0_JOBS", consumers=(), consumers_listed=False)
KV_THE0 = replace(SESSIONS, name="KV_THE0_cache")
EVERYTHING = observed(EVENTS, AUDIT, THE0_JOBS, SESSIONS, KV_THE0, FILES)

STRICT = [
    pytest.param(
        events_claim(),
        [],
        EVERYTHING,
        [
            Finding("AUDIT", UNEXPECTED, WARNING, observed="stream"),
            Finding("THE0_JOBS", UNEXPECTED, WARNING, observed="stream"),
        ],
        id="undocumented streams, not KV buckets or object stores the claim does not list",
    ),
    pytest.param(
        events_claim(),
        ["THE0_*"],
        EVERYTHING,
        [Finding("THE0_JOBS", UNEXPECTED, WARNING, observed="stream")],
        id="only streams in scope",
    ),
    pytest.param(
        {"keyValues": [{"bucket": "sessions"}], "objectStores": []},
        [],
        EVERYTHING,
        [
            Finding("kv.THE0_cache", UNEXPECTED, WARNING, observed="KV bucket"),
            Finding("objectstore.files", UNEXPECTED, WARNING, observed="object store"),
        ],
        id="KV buckets and object stores count as buckets",
    ),
    pytest.param(
        {"keyValues": [], "streams": []},
        ["THE0_*"],
        EVERYTHING,
        [
            Finding("kv.THE0_cache", UNEXPECTED, WARNING, observed="KV bucket"),
            Finding("THE0_JOBS", UNEXPECTED, WARNING, observed="stream"),
        ],
        id="a bucket is in scope by its bucket name",
    ),
    pytest.param(
        {"streams": [{"name": "EVENTS"}, {"name": "KV_sessions"}], "keyValues": []},
        [],
        observed(EVENTS, SESSIONS),
        [],
        id="a KV stream documented as a plain stream is documented",
    ),
    pytest.param(
        events_claim(consumers=[]),
        [],
        observed(with_worker(), replace(EVENTS, name="OTHER")),
        [
            Finding("EVENTS.consumers.worker", UNEXPECTED, WARNING, observed="durable consumer"),
            Finding("OTHER", UNEXPECTED, WARNING, observed="stream"),
        ],
        id="undocumented durable consumers of a documented stream",
    ),
    pytest.param(
        events_claim(consumers=[]),
        [],
        observed(with_worker(durable=False)),
        [],
        id="ephemeral consumers are not counted",
    ),
    pytest.param(
        events_claim(),
        [],
        observed(EVENTS),
        [],
        id="consumers are not counted when the claim lists none",
    ),
]


@pytest.mark.parametrize(("nats", "scope", "facts", "findings"), STRICT)
def test_strict_mode_reports_undocumented_objects_in_scope(
    nats: dict[str, Any], scope: list[str], facts: ObservedNats, findings: list[Finding]
) -> None:
    assert compare_nats(store(nats, strict=True, scope=scope), facts) == findings


def test_without_strict_mode_undocumented_objects_are_no_findings() -> None:
    nats = {"streams": [{"name": "EVENTS", "consumers": []}], "keyValues": [], "objectStores": []}
    assert compare_nats(store(nats), EVERYTHING) == []


@pytest.mark.parametrize(
    ("lower", "upper", "limit", "outcome"),
    [
        (3.0, 26.3, "30s", "pass"),
        (3.0, 26.3, "20s", "unchecked"),
        (25.0, 26.3, "20s", "finding"),
        (0.0, None, "20s", "unchecked"),
    ],
    ids=[
        "both bounds within the limit pass",
        "a limit between the bounds is could not check, not a false finding",
        "a lower bound beyond the limit is a finding that says it is a bound",
        "no upper bound and a lower bound within is could not check",
    ],
)
def test_an_inexact_oldest_unacked_age_is_judged_only_where_its_bounds_decide(
    lower: float, upper: float | None, limit: str, outcome: str
) -> None:
    facts = observed(
        with_worker(
            oldest_unacked_age_seconds=lower,
            oldest_unacked_age_exact=False,
            oldest_unacked_age_at_most_seconds=upper,
        )
    )
    found = compare_nats(store(worker_claim(lag={"maxOldestUnackedAge": limit})), facts)
    path = "EVENTS.consumers.worker.lag.maxOldestUnackedAge"
    if outcome == "pass":
        assert found == []
    elif outcome == "finding":
        (finding,) = found
        assert isinstance(finding, Finding)
        assert (finding.path, finding.expected, finding.observed) == (
            path,
            "<= 20s",
            "at least 25s",
        )
        assert "lower bound" in finding.message
    else:
        (unchecked,) = found
        assert isinstance(unchecked, Unchecked) and unchecked.path == path
        assert "exhausted maxDeliver" in unchecked.reason


@pytest.mark.parametrize(
    ("count", "limit", "expected"),
    [(None, 0, "unchecked"), (0, 0, "pass"), (3, 3, "pass"), (4, 3, "finding")],
    ids=["no record is could not check", "none abandoned", "at the bound", "beyond the bound"],
)
def test_abandoned_messages_are_judged_against_their_own_bound(
    count: int | None, limit: int, expected: str
) -> None:
    facts = observed(with_worker(num_max_delivered=count))
    found = compare_nats(store(worker_claim(lag={"maxMaxDelivered": limit})), facts)
    path = "EVENTS.consumers.worker.lag.maxMaxDelivered"
    if expected == "pass":
        assert found == []
    elif expected == "finding":
        assert found == [Finding(path, FindingKind.DIFFERENT, Severity.WARNING, "<= 3", "4")]
    else:
        (unchecked,) = found
        assert isinstance(unchecked, Unchecked) and unchecked.path == path


@pytest.mark.parametrize(
    ("pattern", "subject", "matches"),
    [
        ("a.b.c", "a.b.c", True),
        ("a.*.c", "a.b.c", True),
        ("a.>", "a.b.c", True),
        ("a.b.c.>", "a.b.c", False),
        ("a.*", "a.b.c", False),
        ("a.b", "a.b.c", False),
        ("a.b.c.d", "a.b.c", False),
        ("x.>", "a.b.c", False),
    ],
)
def test_subjects_match_as_nats_matches_them(pattern: str, subject: str, matches: bool) -> None:
    from datarch.probes.nats import subject_matches  # noqa: PLC0415  (a pure function)

    assert subject_matches(pattern, subject) is matches
