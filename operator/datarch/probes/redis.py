"""Redis probe: server facts and key-pattern TTLs, read through redis-py's asyncio client.

The only importer of redis. It sends INFO, CONFIG GET, SCAN and TTL, nothing
that writes (not even CLIENT SETINFO), and never judges: whether an `absent`
Redis answering is a finding is verification's call.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import (
    AuthenticationError,
    AuthorizationError,
    NoPermissionError,
    RedisError,
    ResponseError,
)
from redis.exceptions import TimeoutError as RedisTimeoutError

from datarch.claims import RedisKeyPattern
from datarch.errors import AccessDenied, StoreError, StoreTimeout, StoreUnreachable
from datarch.observations import ObservedRedis, RedisKeyPatternObs, Unreadable
from datarch.probes.base import ClientPool, Target, lease

# Keys SCAN visits per call: big enough to keep round trips few, small enough
# that one call never blocks the server noticeably.
SCAN_COUNT = 1000
# A sparse pattern in a big keyspace could keep SCAN going through every key;
# a pattern gives up (and says "sampled") after visiting this many keys per
# key of its sample size.
VISITS_PER_SAMPLED_KEY = 100
# Error prefixes that mean "these credentials may not do this".
_DENIED_PREFIXES = ("NOAUTH", "WRONGPASS", "NOPERM", "ERR AUTH", "ERR invalid password")
# "User x has no permissions to run the 'ttl' command": the command a grant must add.
_REFUSED_COMMAND = re.compile(r"run the '([a-z|]+)' command", re.IGNORECASE)


class _Progress:
    """The step under way, so a timeout says what it interrupted."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.step = f"connecting to Redis at {address}"


def _url(target: Target) -> tuple[str, str | None]:
    """The URL to dial and, when the Secret holds only a password, that password."""
    secret = target.secret.get_secret_value() if target.secret else None
    if secret and "://" in secret:
        return secret, None
    if target.url:
        return target.url, secret
    connection = target.store.connection
    if connection and connection.url:
        return connection.url, secret
    raise StoreUnreachable(
        f"while connecting to Redis store {target.store.name}: no URL in the claim or its Secret"
    )


def _address(url: str) -> str:
    """host:port without credentials, for messages."""
    parts = urlsplit(url)
    return (
        f"{parts.hostname or parts.path}:{parts.port or 6379}"
        if parts.hostname
        else url.rsplit("@", maxsplit=1)[-1]
    )


async def _open(target: Target) -> Redis:
    url, password = _url(target)
    options: dict[str, Any] = {
        "socket_connect_timeout": target.timeout,
        "socket_timeout": target.timeout,
        # No retries: one failed read is the observation, and retries would
        # multiply the claim's timeout.
        "retry": Retry(NoBackoff(), 0),
        # CLIENT SETINFO is a (harmless) write to connection state, and an
        # extra permission a read-only ACL user would need.
        "driver_info": None,
    }
    if password is not None:
        options["password"] = password
    try:
        client: Redis = Redis.from_url(url, **options)
        return client
    except ValueError as error:
        cause = _scrub(str(error), target)
        raise StoreUnreachable(
            f"while connecting to Redis store {target.store.name}: the URL is not valid ({cause})"
        ) from error


async def _close(client: Redis) -> None:
    # types-redis predates aclose(); redis-py 5+ has it, and close() is deprecated.
    await client.aclose()  # type: ignore[attr-defined, unused-ignore]


async def observe(target: Target, clients: ClientPool | None = None) -> ObservedRedis:
    """Server facts, and for each key pattern of the claim a bounded SCAN with its TTLs."""
    url, _ = _url(target)
    progress = _Progress(_address(url))
    async with lease(clients, target.pool_key, lambda: _open(target), _close) as client:
        try:
            async with asyncio.timeout(target.timeout):
                return await _read(client, target, progress)
        except TimeoutError as error:
            raise StoreTimeout(
                f"while {progress.step}: no answer within {target.timeout:g}s"
            ) from error
        except (RedisError, OSError) as error:
            raise _failure(progress.step, error, target) from error


async def _read(client: Redis, target: Target, progress: _Progress) -> ObservedRedis:
    progress.step = f"reading INFO and CONFIG from Redis at {progress.address}"
    # One round trip. CONFIG GET may be refused to a read-only ACL user, and
    # managed services (ElastiCache, Memorystore, Azure Cache) disable CONFIG
    # altogether; INFO carries maxmemory and the policy too, but not the RDB
    # save rules.
    pipe = client.pipeline(transaction=False)
    pipe.info()
    pipe.config_get("maxmemory")
    pipe.config_get("maxmemory-policy")
    pipe.config_get("save")
    info, *configs = await pipe.execute(raise_on_error=False)
    if isinstance(info, Exception):
        raise info
    config: dict[str, str] = {}
    unreadable: dict[str, Unreadable] = {}
    for answer in configs:
        if isinstance(answer, Exception):
            if not (_denied(answer) or _unknown_command(answer)):
                raise answer
            # INFO stands in for maxmemory and its policy; only the save rules are lost.
            unreadable["persistence.save"] = _config_refused(answer)
            continue
        config.update({_text(k): _text(v) for k, v in answer.items()})
    patterns: list[RedisKeyPatternObs] = []
    expectations = target.store.redis
    for pattern in (expectations.key_patterns or []) if expectations else []:
        progress.step = f"scanning keys matching {pattern.pattern}"
        try:
            patterns.append(await _scan(client, pattern))
        except RedisError as error:
            if not _denied(error) or isinstance(error, AuthenticationError):
                raise
            unreadable[f"patterns.{pattern.pattern}"] = _scan_refused(error, pattern.pattern)
    role = str(info.get("role", "unknown"))
    return ObservedRedis(
        version=str(info.get("redis_version", "unknown")),
        role="replica" if role == "slave" else role,
        maxmemory=int(config.get("maxmemory", info.get("maxmemory", 0))),
        maxmemory_policy=config.get("maxmemory-policy", str(info.get("maxmemory_policy", ""))),
        aof=bool(int(info.get("aof_enabled", 0))),
        save=config.get("save"),
        keyspace=_keyspace(info),
        key_patterns=tuple(patterns),
        unreadable=unreadable,
    )


def _config_refused(error: BaseException) -> Unreadable:
    if _unknown_command(error):
        # Managed services (ElastiCache, Memorystore, Azure Cache) and `rename-command
        # CONFIG ""` remove the command: no grant brings it back.
        return Unreadable("the server does not offer CONFIG GET (disabled or renamed)")
    return Unreadable("CONFIG GET is refused to the probe's user", grant="+config|get")


def _scan_refused(error: BaseException, pattern: str) -> Unreadable:
    """A refused SCAN or TTL names its command; a refused key names none (ACL key patterns)."""
    command = _REFUSED_COMMAND.search(str(error))
    if command:
        name = command.group(1).lower()
        return Unreadable(f"{name.upper()} is refused to the probe's user", grant=f"+{name}")
    return Unreadable(
        f"the probe's user may not read keys matching {pattern}", grant=f"%R~{pattern}"
    )


def _keyspace(info: Mapping[str, Any]) -> dict[int, int]:
    """INFO keyspace's `db3:keys=12,expires=0,avg_ttl=0` lines, as redis-py parses them."""
    keyspace = {}
    for name, value in info.items():
        if name.startswith("db") and name[2:].isdigit() and isinstance(value, Mapping):
            keyspace[int(name[2:])] = int(value.get("keys", 0))
    return keyspace


async def _scan(client: Redis, pattern: RedisKeyPattern) -> RedisKeyPatternObs:
    """SCAN MATCH until the sample size, reading each batch's TTLs in the next round trip.

    Each round trip carries the TTLs of the keys the previous SCAN returned and
    the next SCAN, so a pattern costs one round trip per SCAN page plus one.
    """
    limit = pattern.sample_size
    budget = max(10, math.ceil(VISITS_PER_SAMPLED_KEY * limit / SCAN_COUNT))
    seen: set[bytes] = set()
    pending: list[bytes] = []
    cursor, calls = 0, 0
    scanning, complete = True, False
    scanned = without_ttl = 0
    max_ttl: int | None = None
    while scanning or pending:
        pipe = client.pipeline(transaction=False)
        for key in pending:
            pipe.ttl(key)
        if scanning:
            pipe.scan(cursor, match=pattern.pattern, count=SCAN_COUNT)
        results = await pipe.execute()
        for ttl in results[: len(pending)]:
            if ttl == -2:  # expired or deleted since SCAN returned it
                continue
            scanned += 1
            if ttl == -1:
                without_ttl += 1
            elif max_ttl is None or ttl > max_ttl:
                max_ttl = int(ttl)
        pending = []
        if not scanning:
            break
        cursor, keys = results[-1]
        calls += 1
        # SCAN may return a key more than once; each is counted once.
        fresh = list(dict.fromkeys(k for k in keys if k not in seen))
        taken = fresh[: limit - len(seen)]
        seen.update(taken)
        pending = taken
        if int(cursor) == 0 and len(taken) == len(fresh):
            scanning, complete = False, True
        elif len(seen) >= limit or calls >= budget:
            scanning = False
    return RedisKeyPatternObs(
        pattern=pattern.pattern,
        scanned=scanned,
        without_ttl=without_ttl,
        max_ttl_seconds=max_ttl,
        complete=complete,
    )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _denied(error: BaseException) -> bool:
    if isinstance(error, AuthenticationError | AuthorizationError | NoPermissionError):
        return True
    return isinstance(error, ResponseError) and str(error).startswith(_DENIED_PREFIXES)


def _unknown_command(error: BaseException) -> bool:
    """The server has no such command: disabled or renamed (`rename-command CONFIG ""`)."""
    return isinstance(error, ResponseError) and str(error).lower().startswith(
        ("unknown command", "err unknown command")
    )


def _failure(step: str, error: BaseException, target: Target) -> StoreError:
    """The typed error for a failed read, worded "while <step>: <cause>" without a credential."""
    cause = _scrub(str(error) or type(error).__name__, target)
    if _denied(error):
        return AccessDenied(f"while {step}: {cause}")
    if isinstance(error, RedisTimeoutError | TimeoutError):
        return StoreTimeout(f"while {step}: no answer within {target.timeout:g}s ({cause})")
    return StoreUnreachable(f"while {step}: {cause}")


def _scrub(text: str, target: Target) -> str:
    secret = target.secret.get_secret_value() if target.secret else ""
    if not secret:
        return text
    text = text.replace(secret, "***")
    password = urlsplit(secret).password if "://" in secret else secret
    return text.replace(password, "***") if password else text
