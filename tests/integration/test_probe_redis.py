"""The Redis probe against Redis 7, the dev server.

The probe runs as an ACL user created for the test that may run only INFO,
SCAN, TTL, CONFIG GET and SELECT: that the whole probe succeeds as that user,
which is refused a SET, and leaves no entry in the ACL log, is the proof that
it never writes. The user holds no read of values (`-@all`, no GET), which the
probe does not need either.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from pydantic import SecretStr

from conftest import RedisDb, env, free_port
from datarch.claims import Store
from datarch.errors import AccessDenied, StoreTimeout, StoreUnreachable
from datarch.observations import RedisKeyPatternObs
from datarch.probes.base import ClientPool, Target
from datarch.probes.redis import observe

pytestmark = pytest.mark.integration

# The smallest command set the probe works with; SELECT only because each test
# has a database of its own.
READ_ONLY_COMMANDS = ("+info", "+scan", "+ttl", "+config|get", "+select")


def with_user(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{parts.hostname}:{parts.port}"))


class AclUser:
    def __init__(
        self, admin: redis.Redis[bytes], redis_db: RedisDb, commands: tuple[str, ...]
    ) -> None:
        self.admin = admin
        self.name = f"datarch_ro_{uuid.uuid4().hex[:12]}"
        self.password = uuid.uuid4().hex
        self.url = with_user(redis_db.url, self.name, self.password)
        admin.execute_command(
            "ACL",
            "SETUSER",
            self.name,
            "reset",
            "on",
            f">{self.password}",
            "~*",
            "-@all",
            *commands,
        )

    def denials(self) -> list[dict[str, Any]]:
        """ACL log entries of this user: every command or key it was refused."""
        entries = self.admin.acl_log(count=1000)
        return [e for e in entries if e.get("username") == self.name]

    def delete(self) -> None:
        self.admin.execute_command("ACL", "DELUSER", self.name)


@pytest.fixture
def readonly_user(redis_db: RedisDb) -> Iterator[AclUser]:
    user = AclUser(redis_db.client, redis_db, READ_ONLY_COMMANDS)
    try:
        yield user
    finally:
        user.delete()


@pytest.fixture
def user_without_config(redis_db: RedisDb) -> Iterator[AclUser]:
    user = AclUser(redis_db.client, redis_db, ("+info", "+scan", "+ttl", "+select"))
    try:
        yield user
    finally:
        user.delete()


def target(url: str, *, timeout: float = 10.0, absent: bool = False, **redis_block: Any) -> Target:
    fields: dict[str, Any] = {"absent": True} if absent else {"redis": redis_block}
    store = Store.model_validate({"name": "cache", "kind": "redis", **fields})
    return Target(store=store, timeout=timeout, secret=SecretStr(url), secret_key="url")


def seed(redis_db: RedisDb) -> None:
    """5 sessions expiring within 5000s, 3 that never expire, and 4 users."""
    pipe = redis_db.client.pipeline()
    for i in range(5):
        pipe.set(f"session:{i}", "x", ex=1000 * (i + 1))
    for i in range(5, 8):
        pipe.set(f"session:{i}", "x")
    for i in range(4):
        pipe.set(f"user:{i}", "x")
    pipe.execute()


async def test_the_whole_probe_runs_as_a_user_that_can_only_read(
    redis_db: RedisDb, readonly_user: AclUser
) -> None:
    seed(redis_db)

    observed = await observe(
        target(
            readonly_user.url,
            keyPatterns=[{"pattern": "session:*"}, {"pattern": "user:*"}, {"pattern": "none:*"}],
        )
    )

    assert observed.version.startswith("7.")
    assert (observed.role, observed.maxmemory, observed.maxmemory_policy) == (
        "master",
        0,
        "noeviction",
    )
    assert (observed.aof, observed.save) == (False, "")
    assert observed.keyspace[redis_db.db] == 12
    session, user, none = observed.key_patterns
    # TTL rounds to whole seconds: a key set with 5000s reads 5000, or 4999 on a slow run.
    assert session.max_ttl_seconds in (4999, 5000)
    assert (session.scanned, session.without_ttl, session.complete) == (8, 3, True)
    assert user == RedisKeyPatternObs("user:*", 4, 4, None, True)
    assert none == RedisKeyPatternObs("none:*", 0, 0, None, True)
    assert readonly_user.denials() == []


def test_the_read_only_user_is_refused_a_write(readonly_user: AclUser) -> None:
    client = redis.Redis.from_url(readonly_user.url, socket_timeout=5)
    try:
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.set("datarch:write", "x")
    finally:
        client.close()
    assert [e["object"] for e in readonly_user.denials()] == ["set"]


async def test_without_config_get_the_memory_settings_come_from_info_and_save_is_unknown(
    redis_db: RedisDb, user_without_config: AclUser
) -> None:
    observed = await observe(target(user_without_config.url))

    assert (observed.maxmemory, observed.maxmemory_policy, observed.save) == (0, "noeviction", None)


async def test_a_scan_stops_at_the_sample_size_and_says_it_is_incomplete(redis_db: RedisDb) -> None:
    seed(redis_db)

    observed = await observe(
        target(redis_db.url, keyPatterns=[{"pattern": "session:*", "sampleSize": 3}])
    )

    (session,) = observed.key_patterns
    assert (session.scanned, session.complete) == (3, False)


async def test_a_pattern_spanning_several_scan_pages_counts_every_key_once(
    redis_db: RedisDb,
) -> None:
    pipe = redis_db.client.pipeline()
    for i in range(2500):
        pipe.set(f"event:{i}", "x", ex=600 if i % 10 else None)
    pipe.execute()

    observed = await observe(target(redis_db.url, keyPatterns=[{"pattern": "event:*"}]))

    (events,) = observed.key_patterns
    assert (events.scanned, events.without_ttl, events.complete) == (2500, 250, True)
    assert events.max_ttl_seconds in (599, 600)


async def test_an_absent_store_gets_server_facts_only(redis_db: RedisDb) -> None:
    seed(redis_db)

    observed = await observe(target(redis_db.url, absent=True))

    assert observed.key_patterns == ()
    assert observed.keyspace[redis_db.db] == 12


async def test_a_pool_reuses_one_client_and_drops_it_when_the_store_fails(
    redis_db: RedisDb,
) -> None:
    pool = ClientPool()
    try:
        await observe(target(redis_db.url), pool)
        await observe(target(redis_db.url), pool)
        assert (pool.opened, len(pool)) == (1, 1)

        with pytest.raises(StoreUnreachable):
            await observe(target(f"redis://127.0.0.1:{free_port()}/0"), pool)
        assert (pool.opened, len(pool)) == (2, 1)
    finally:
        await pool.close()


# --- failures ------------------------------------------------------------------------


@pytest.fixture
def silent_server(silent_port: int) -> str:
    return f"redis://127.0.0.1:{silent_port}/0"


async def test_connection_refused_is_store_unreachable_not_a_timeout() -> None:
    port = free_port()

    with pytest.raises(StoreUnreachable) as caught:
        await observe(target(f"redis://127.0.0.1:{port}/0", absent=True))

    assert not isinstance(caught.value, StoreTimeout)
    assert str(caught.value).startswith(
        f"while reading INFO and CONFIG from Redis at 127.0.0.1:{port}: "
    )


async def test_a_wrong_password_is_access_denied_and_the_message_holds_no_credential(
    readonly_user: AclUser,
) -> None:
    wrong = "wrong-password-0123456789"
    url = with_user(env("DATARCH_REDIS_URL"), readonly_user.name, wrong)

    with pytest.raises(AccessDenied) as caught:
        await observe(target(url))

    assert "invalid username-password pair" in str(caught.value)
    assert wrong not in str(caught.value)


async def test_a_server_that_never_answers_is_a_timeout_within_the_timeout(
    silent_server: str,
) -> None:
    started = time.monotonic()

    with pytest.raises(StoreTimeout) as caught:
        await observe(target(silent_server, timeout=1.0))

    # Slack for a loaded machine, short of a retried read (2s and more).
    assert time.monotonic() - started < 2.0
    assert "within 1s" in str(caught.value)
