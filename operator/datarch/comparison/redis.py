"""Redis comparison: a claim's RedisExpectations + ObservedRedis -> findings. Pure: no I/O, no clock.

It must not decide what `absent: true` means (verification turns a reachable
"absent" Redis into a finding) nor read anything itself.
"""

from __future__ import annotations

import re

from datarch.claims import RedisExpectations, RedisKeyPattern, Store
from datarch.durations import format_duration, parse_duration
from datarch.errors import ClaimInvalid
from datarch.findings import Finding, FindingKind, Outcome, Severity, Unchecked
from datarch.observations import ObservedRedis, RedisKeyPatternObs, Unreadable

# Redis's own memory units (redis.conf): k/m/g are powers of 1000, kb/mb/gb of 1024.
_MEMORY_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1024,
    "m": 1000**2,
    "mb": 1024**2,
    "g": 1000**3,
    "gb": 1024**3,
}
_MEMORY = re.compile(r"^\s*([0-9]+)\s*([a-z]*)\s*$")


def parse_memory(text: str) -> int:
    """Bytes in a Redis memory size: `256mb`, `1gb`, `100k`, `1048576`; ValueError otherwise."""
    match = _MEMORY.match(text.lower())
    if not match or match.group(2) not in _MEMORY_UNITS:
        raise ValueError(f"{text!r} is not a Redis memory size such as 256mb, 1gb or 1048576")
    return int(match.group(1)) * _MEMORY_UNITS[match.group(2)]


def format_memory(size: int) -> str:
    """The largest binary unit that renders `size` exactly, as redis.conf would: 268435456 -> 256mb."""
    if size == 0:
        return "0 (unlimited)"
    for unit in ("gb", "mb", "kb"):
        if size % _MEMORY_UNITS[unit] == 0:
            return f"{size // _MEMORY_UNITS[unit]}{unit}"
    return f"{size} bytes"


def compare_redis(store: Store, observed: ObservedRedis) -> list[Outcome]:
    expected = store.redis
    if expected is None:
        return []
    findings: list[Outcome] = []
    if expected.role is not None and expected.role != observed.role:
        findings.append(_different("role", expected.role, observed.role))
    findings += _memory(store, expected, observed)
    # Redis reads the policy case-insensitively (`ALLKEYS-LRU` is set as allkeys-lru).
    if (
        expected.maxmemory_policy is not None
        and expected.maxmemory_policy.lower() != observed.maxmemory_policy.lower()
    ):
        findings.append(
            _different("maxmemoryPolicy", expected.maxmemory_policy, observed.maxmemory_policy)
        )
    findings += _persistence(expected, observed)
    findings += _databases(store, expected, observed)
    by_pattern = {p.pattern: p for p in observed.key_patterns}
    for pattern in expected.key_patterns or ():
        path = f"patterns.{pattern.pattern}"
        seen = by_pattern.get(pattern.pattern)
        if seen is not None:
            findings += _key_pattern(pattern, seen)
        else:  # neither judged nor passed: the check is incomplete
            why = observed.unreadable.get(path, Unreadable("the probe did not read it"))
            findings.append(Unchecked(path, why.reason, why.grant))
    return findings


def _memory(store: Store, expected: RedisExpectations, observed: ObservedRedis) -> list[Finding]:
    if expected.maxmemory is None:
        return []
    try:
        limit = parse_memory(expected.maxmemory)
    except ValueError as error:
        raise ClaimInvalid(f"while comparing maxmemory of store {store.name}: {error}") from error
    if limit == observed.maxmemory:
        return []
    # A documented limit that is not set at all lets Redis grow until the host
    # runs out of memory, whatever the eviction policy says: that is an outage
    # waiting to happen, not a tuning difference.
    severity = Severity.CRITICAL if observed.maxmemory == 0 and limit > 0 else Severity.WARNING
    return [
        Finding(
            "maxmemory",
            FindingKind.DIFFERENT,
            severity,
            expected=format_memory(limit),
            observed=format_memory(observed.maxmemory),
        )
    ]


def _persistence(expected: RedisExpectations, observed: ObservedRedis) -> list[Outcome]:
    persistence = expected.persistence
    if persistence is None:
        return []
    findings: list[Outcome] = []
    if persistence.aof is not None and persistence.aof != observed.aof:
        findings.append(_different("persistence.aof", _on(persistence.aof), _on(observed.aof)))
    save = None if observed.save is None else " ".join(observed.save.split())
    # Both RDB fields come from the save rules: unread, neither can be judged.
    why = observed.unreadable.get("persistence.save", Unreadable("the probe did not read it"))
    if persistence.rdb is not None:
        if save is None:
            findings.append(Unchecked("persistence.rdb", why.reason, why.grant))
        elif persistence.rdb != bool(save):
            findings.append(_different("persistence.rdb", _on(persistence.rdb), _on(bool(save))))
    if persistence.save is not None:
        documented = " ".join(persistence.save.split())
        if save is None:
            findings.append(Unchecked("persistence.save", why.reason, why.grant))
        elif _save_rules(documented) != _save_rules(save):
            findings.append(_different("persistence.save", documented or '""', save or '""'))
    return findings


def _save_rules(text: str) -> frozenset[tuple[int, int]] | str:
    """`3600 1 300 100` as its (seconds, changes) rules: each triggers on its own, so
    their order means nothing (Redis keeps them in the order they were set).
    Text that is not such pairs stays text, compared as written."""
    tokens = text.split()
    if len(tokens) % 2 or not all(token.isdigit() for token in tokens):
        return text
    numbers = [int(token) for token in tokens]
    return frozenset(zip(numbers[::2], numbers[1::2], strict=True))


def _databases(store: Store, expected: RedisExpectations, observed: ObservedRedis) -> list[Finding]:
    if expected.databases is None:
        return []
    in_use = {db for db, keys in observed.keyspace.items() if keys > 0}
    documented = set(expected.databases)
    findings = [
        Finding(
            f"databases.{db}",
            FindingKind.MISSING,
            Severity.WARNING,
            expected="holds keys",
            observed="no keys",
        )
        for db in sorted(documented - in_use)
    ]
    if store.strict:
        findings += [
            Finding(
                f"databases.{db}",
                FindingKind.UNEXPECTED,
                Severity.WARNING,
                observed=f"{observed.keyspace[db]} key{'' if observed.keyspace[db] == 1 else 's'}",
            )
            for db in sorted(in_use - documented)
        ]
    return findings


def _key_pattern(expected: RedisKeyPattern, seen: RedisKeyPatternObs) -> list[Finding]:
    findings = []
    prefix = f"patterns.{expected.pattern}"
    without = _without_ttl(seen)
    if expected.ttl_required and seen.without_ttl > 0:
        findings.append(
            Finding(
                f"{prefix}.ttl",
                FindingKind.DIFFERENT,
                Severity.WARNING,
                expected="every key expires",
                observed=without,
                message=f"{without}; the claim requires every key matching {expected.pattern} to expire",
            )
        )
    if expected.max_ttl is not None:
        limit = parse_duration(expected.max_ttl)
        excess = []
        if seen.max_ttl_seconds is not None and seen.max_ttl_seconds > limit:
            excess.append(f"a key expires in {format_duration(seen.max_ttl_seconds)}")
        # A key without TTL lives longer than any limit; it is counted here only
        # when ttlRequired has not already reported it, so one key is one finding.
        if seen.without_ttl > 0 and not expected.ttl_required:
            excess.append(without)
        if excess:
            sampled = "" if seen.complete else " (sampled)"
            findings.append(
                Finding(
                    f"{prefix}.maxTtl",
                    FindingKind.DIFFERENT,
                    Severity.WARNING,
                    expected=f"at most {expected.max_ttl}",
                    observed="; ".join(excess) + sampled,
                )
            )
    return findings


def _without_ttl(seen: RedisKeyPatternObs) -> str:
    """`37 of 10000 sampled keys have no TTL`: "sampled" whenever the SCAN stopped early."""
    keys = "sampled keys" if not seen.complete else ("key" if seen.scanned == 1 else "keys")
    verb = "has" if seen.without_ttl == 1 else "have"
    return f"{seen.without_ttl} of {seen.scanned} {keys} {verb} no TTL"


def _different(path: str, expected: str, observed: str) -> Finding:
    return Finding(
        path, FindingKind.DIFFERENT, Severity.WARNING, expected=expected, observed=observed
    )


def _on(value: bool) -> str:
    return "on" if value else "off"
