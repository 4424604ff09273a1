"""compare_redis: tables of claim + observed facts -> findings, one per finding kind and field."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from datarch.claims import Store
from datarch.comparison.redis import compare_redis, format_memory, parse_memory
from datarch.errors import ClaimInvalid
from datarch.findings import Finding, FindingKind, Outcome, Severity, Unchecked
from datarch.observations import ObservedRedis, RedisKeyPatternObs, Unreadable

CRITICAL, WARNING, INFO = Severity.CRITICAL, Severity.WARNING, Severity.INFO
MISSING, UNEXPECTED, DIFFERENT = FindingKind.MISSING, FindingKind.UNEXPECTED, FindingKind.DIFFERENT

SESSIONS = RedisKeyPatternObs(
    pattern="session:*", scanned=120, without_ttl=0, max_ttl_seconds=3000, complete=True
)
OBSERVED = ObservedRedis(
    version="7.0.15",
    role="master",
    maxmemory=256 * 1024 * 1024,
    maxmemory_policy="allkeys-lru",
    aof=True,
    save="3600 1 300 100",
    keyspace={0: 120, 1: 4},
    key_patterns=(SESSIONS,),
)


def store(redis: dict[str, Any] | None = None, **fields: Any) -> Store:
    return Store.model_validate({"name": "cache", "kind": "redis", "redis": redis, **fields})


def sessions(**fields: Any) -> dict[str, Any]:
    return {"keyPatterns": [{"pattern": "session:*", **fields}]}


CASES: list[tuple[str, dict[str, Any], ObservedRedis, list[Outcome]]] = [
    (
        "a claim that states everything as observed has no finding",
        {
            "role": "master",
            "maxmemory": "256mb",
            "maxmemoryPolicy": "allkeys-lru",
            "persistence": {"aof": True, "rdb": True, "save": "3600 1   300 100"},
            "databases": [0, 1],
            **sessions(ttlRequired=True, maxTtl="1h"),
        },
        OBSERVED,
        [],
    ),
    (
        "another role is a warning",
        {"role": "replica"},
        OBSERVED,
        [Finding("role", DIFFERENT, WARNING, expected="replica", observed="master")],
    ),
    (
        "the same maxmemory written in other units is no finding",
        {"maxmemory": "268435456"},
        OBSERVED,
        [],
    ),
    (
        "another maxmemory is a warning, shown in redis.conf units",
        {"maxmemory": "1gb"},
        OBSERVED,
        [Finding("maxmemory", DIFFERENT, WARNING, expected="1gb", observed="256mb")],
    ),
    (
        "no memory limit where the docs set one is critical",
        {"maxmemory": "256mb"},
        replace(OBSERVED, maxmemory=0),
        [Finding("maxmemory", DIFFERENT, CRITICAL, expected="256mb", observed="0 (unlimited)")],
    ),
    (
        "a limit where the docs say unlimited is only a warning",
        {"maxmemory": "0"},
        OBSERVED,
        [Finding("maxmemory", DIFFERENT, WARNING, expected="0 (unlimited)", observed="256mb")],
    ),
    (
        "another eviction policy is a warning",
        {"maxmemoryPolicy": "noeviction"},
        OBSERVED,
        [
            Finding(
                "maxmemoryPolicy", DIFFERENT, WARNING, expected="noeviction", observed="allkeys-lru"
            )
        ],
    ),
    (
        "AOF off where documented on is a warning",
        {"persistence": {"aof": True}},
        replace(OBSERVED, aof=False),
        [Finding("persistence.aof", DIFFERENT, WARNING, expected="on", observed="off")],
    ),
    (
        "RDB snapshots documented off but configured are a warning",
        {"persistence": {"rdb": False}},
        OBSERVED,
        [Finding("persistence.rdb", DIFFERENT, WARNING, expected="off", observed="on")],
    ),
    (
        "other save rules are a warning",
        {"persistence": {"save": "900 1"}},
        OBSERVED,
        [
            Finding(
                "persistence.save", DIFFERENT, WARNING, expected="900 1", observed="3600 1 300 100"
            )
        ],
    ),
    (
        "the same save rules in another order are no finding: each rule triggers on its own",
        {"persistence": {"save": "300 100 3600 1"}},
        OBSERVED,
        [],
    ),
    (
        "save rules whose numbers change places are other rules",
        {"persistence": {"save": "1 3600 100 300"}},
        OBSERVED,
        [
            Finding(
                "persistence.save",
                DIFFERENT,
                WARNING,
                expected="1 3600 100 300",
                observed="3600 1 300 100",
            )
        ],
    ),
    (
        "the eviction policy written in capitals is the same policy",
        {"maxmemoryPolicy": "ALLKEYS-LRU"},
        OBSERVED,
        [],
    ),
    (
        "save rules documented off but configured are a warning",
        {"persistence": {"save": ""}},
        OBSERVED,
        [Finding("persistence.save", DIFFERENT, WARNING, expected='""', observed="3600 1 300 100")],
    ),
    (
        "save rules the probe may not read are could not check naming the grant, not a finding",
        {"persistence": {"rdb": True, "save": "3600 1"}},
        replace(
            OBSERVED,
            save=None,
            unreadable={
                "persistence.save": Unreadable(
                    "CONFIG GET is refused to the probe's user", "+config|get"
                )
            },
        ),
        [
            Unchecked(
                "persistence.rdb", "CONFIG GET is refused to the probe's user", "+config|get"
            ),
            Unchecked(
                "persistence.save", "CONFIG GET is refused to the probe's user", "+config|get"
            ),
        ],
    ),
    (
        "save rules the server does not offer are could not check with no grant to name",
        {"persistence": {"save": "3600 1"}},
        replace(
            OBSERVED,
            save=None,
            unreadable={"persistence.save": Unreadable("the server does not offer CONFIG GET")},
        ),
        [Unchecked("persistence.save", "the server does not offer CONFIG GET")],
    ),
    (
        "a documented database without keys is missing",
        {"databases": [0, 1, 2]},
        OBSERVED,
        [Finding("databases.2", MISSING, WARNING, expected="holds keys", observed="no keys")],
    ),
    (
        "an undocumented database in use is not checked outside strict mode",
        {"databases": [0]},
        OBSERVED,
        [],
    ),
    (
        "keys without TTL where every key must expire are a warning that counts them",
        sessions(ttlRequired=True),
        replace(OBSERVED, key_patterns=(replace(SESSIONS, without_ttl=37),)),
        [
            Finding(
                "patterns.session:*.ttl",
                DIFFERENT,
                WARNING,
                expected="every key expires",
                observed="37 of 120 keys have no TTL",
                message="37 of 120 keys have no TTL; the claim requires every key matching "
                "session:* to expire",
            )
        ],
    ),
    (
        "a scan stopped at the sample size says its figures are sampled",
        sessions(ttlRequired=True),
        replace(
            OBSERVED,
            key_patterns=(replace(SESSIONS, scanned=10000, without_ttl=37, complete=False),),
        ),
        [
            Finding(
                "patterns.session:*.ttl",
                DIFFERENT,
                WARNING,
                expected="every key expires",
                observed="37 of 10000 sampled keys have no TTL",
                message="37 of 10000 sampled keys have no TTL; the claim requires every key "
                "matching session:* to expire",
            )
        ],
    ),
    (
        "keys without TTL are no finding when the claim does not require one",
        sessions(ttlRequired=False),
        replace(OBSERVED, key_patterns=(replace(SESSIONS, without_ttl=37),)),
        [],
    ),
    (
        "a TTL longer than maxTtl is a warning",
        sessions(maxTtl="30m"),
        OBSERVED,
        [
            Finding(
                "patterns.session:*.maxTtl",
                DIFFERENT,
                WARNING,
                expected="at most 30m",
                observed="a key expires in 50m",
            )
        ],
    ),
    (
        "a TTL exactly at maxTtl is no finding",
        sessions(maxTtl="50m"),
        OBSERVED,
        [],
    ),
    (
        "a key that never expires outlives maxTtl",
        sessions(maxTtl="1h"),
        replace(
            OBSERVED,
            key_patterns=(replace(SESSIONS, without_ttl=1, max_ttl_seconds=7200, complete=False),),
        ),
        [
            Finding(
                "patterns.session:*.maxTtl",
                DIFFERENT,
                WARNING,
                expected="at most 1h",
                observed="a key expires in 2h; 1 of 120 sampled keys has no TTL (sampled)",
            )
        ],
    ),
    (
        "a key without TTL is reported once when both ttlRequired and maxTtl are stated",
        sessions(ttlRequired=True, maxTtl="1h"),
        replace(OBSERVED, key_patterns=(replace(SESSIONS, without_ttl=1, scanned=1),)),
        [
            Finding(
                "patterns.session:*.ttl",
                DIFFERENT,
                WARNING,
                expected="every key expires",
                observed="1 of 1 key has no TTL",
                message="1 of 1 key has no TTL; the claim requires every key matching "
                "session:* to expire",
            )
        ],
    ),
    (
        "a pattern the probe may not read is could not check naming the grant",
        sessions(ttlRequired=True),
        replace(
            OBSERVED,
            key_patterns=(),
            unreadable={"patterns.session:*": Unreadable("TTL is refused", "+ttl")},
        ),
        [Unchecked("patterns.session:*", "TTL is refused", "+ttl")],
    ),
    (
        "a pattern the probe did not read is could not check, never a pass",
        sessions(ttlRequired=True),
        replace(OBSERVED, key_patterns=()),
        [Unchecked("patterns.session:*", "the probe did not read it")],
    ),
]


@pytest.mark.parametrize(
    ("claim", "observed", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_comparison_table(
    claim: dict[str, Any], observed: ObservedRedis, expected: list[Outcome]
) -> None:
    assert compare_redis(store(claim), observed) == expected


def test_undocumented_databases_in_use_are_unexpected_in_strict_mode() -> None:
    findings = compare_redis(store({"databases": [0]}, strict=True), OBSERVED)
    assert findings == [Finding("databases.1", UNEXPECTED, WARNING, observed="4 keys")]


def test_empty_databases_are_not_unexpected_in_strict_mode() -> None:
    observed = replace(OBSERVED, keyspace={0: 120, 3: 0})
    assert compare_redis(store({"databases": [0]}, strict=True), observed) == []


def test_strict_mode_without_documented_databases_counts_nothing() -> None:
    assert compare_redis(store({"role": "master"}, strict=True), OBSERVED) == []


def test_a_store_without_expectations_has_no_finding() -> None:
    assert compare_redis(store(None), replace(OBSERVED, role="replica", maxmemory=0)) == []


def test_a_maxmemory_that_is_not_a_redis_size_is_an_invalid_claim() -> None:
    with pytest.raises(ClaimInvalid, match="maxmemory of store cache: '12xb'"):
        compare_redis(store({"maxmemory": "12xb"}), OBSERVED)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("0", 0),
        ("1048576", 1048576),
        ("100k", 100_000),
        ("100kb", 102_400),
        ("256mb", 268_435_456),
        ("256m", 256_000_000),
        ("1gb", 1_073_741_824),
        ("1G", 1_000_000_000),
        ("2GB", 2_147_483_648),
        (" 64b ", 64),
    ],
)
def test_redis_memory_units_parse_as_redis_conf_reads_them(text: str, size: int) -> None:
    assert parse_memory(text) == size


@pytest.mark.parametrize("text", ["", "mb", "1.5gb", "-1", "10tb", "1 g b"])
def test_other_memory_sizes_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a Redis memory size"):
        parse_memory(text)


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0 (unlimited)"), (268_435_456, "256mb"), (1024, "1kb"), (100_000, "100000 bytes")],
)
def test_memory_sizes_print_in_the_largest_exact_unit(size: int, text: str) -> None:
    assert format_memory(size) == text


# Cases the mutation audit (`make mutation`) showed nothing else would fail on: each
# difference in the other direction, and the edges of what counts as in use.
@pytest.mark.parametrize(
    ("claim", "observed", "expected"),
    [
        (
            {"role": "master"},
            replace(OBSERVED, role="replica"),
            [Finding("role", DIFFERENT, WARNING, expected="master", observed="replica")],
        ),
        (
            {"maxmemoryPolicy": "allkeys-lfu"},
            replace(OBSERVED, maxmemory_policy="volatile-lru"),
            [
                Finding(
                    "maxmemoryPolicy",
                    DIFFERENT,
                    WARNING,
                    expected="allkeys-lfu",
                    observed="volatile-lru",
                )
            ],
        ),
        (
            {"persistence": {"aof": False}},
            OBSERVED,
            [Finding("persistence.aof", DIFFERENT, WARNING, expected="off", observed="on")],
        ),
        (
            {"persistence": {"rdb": True}},
            replace(OBSERVED, save=""),
            [Finding("persistence.rdb", DIFFERENT, WARNING, expected="on", observed="off")],
        ),
        (
            {"persistence": {"save": "3600"}},
            OBSERVED,
            [
                Finding(
                    "persistence.save",
                    DIFFERENT,
                    WARNING,
                    expected="3600",
                    observed="3600 1 300 100",
                )
            ],
        ),
    ],
    ids=[
        "documented master, a replica",
        "a documented policy that sorts before the observed one",
        "AOF documented off, on",
        "snapshots documented on, off",
        "save text that is not pairs is compared as text",
    ],
)
def test_differences_are_found_in_either_direction(
    claim: dict[str, Any], observed: ObservedRedis, expected: list[Outcome]
) -> None:
    assert compare_redis(store(claim), observed) == expected


def test_a_database_holding_one_key_is_in_use() -> None:
    observed = replace(OBSERVED, keyspace={0: 120, 5: 1})
    assert compare_redis(store({"databases": [0]}, strict=True), observed) == [
        Finding("databases.5", UNEXPECTED, WARNING, observed="1 key")
    ]


def test_a_documented_empty_database_is_missing_not_unexpected_in_strict_mode() -> None:
    assert compare_redis(store({"databases": [0, 1, 7]}, strict=True), OBSERVED) == [
        Finding("databases.7", MISSING, WARNING, expected="holds keys", observed="no keys")
    ]
