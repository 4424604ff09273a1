"""A documented field the probe may not read is "could not check": never a finding, never a pass.

Each test gives the probe a least-privilege user on the real server and a claim
that documents a field that user may not read. The verdict must be incomplete
(the CLI's exit 2, Conforming Unknown) with the field's path and the grant that
would let it be read, and no finding, since nothing is known to differ.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis

from conftest import RedisDb
from datarch.claims import ClaimSpec
from datarch.secrets import LocalSecrets
from datarch.verification import verify

pytestmark = pytest.mark.integration


def _with_user(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{parts.hostname}:{parts.port}"))


@pytest.fixture
def redis_user_url(redis_db: RedisDb) -> Iterator[Any]:
    """A factory: the URL of a fresh ACL user allowed exactly `commands` (deleted afterwards)."""
    admin: redis.Redis[bytes] = redis_db.client
    names: list[str] = []

    def make(*commands: str) -> str:
        name, password = f"datarch_lp_{uuid.uuid4().hex[:12]}", uuid.uuid4().hex
        admin.execute_command(
            "ACL", "SETUSER", name, "reset", "on", f">{password}", "~*", "-@all", *commands
        )
        names.append(name)
        return _with_user(redis_db.url, name, password)

    try:
        yield make
    finally:
        for name in names:
            admin.execute_command("ACL", "DELUSER", name)


def _spec(url_secret: str, redis_block: dict[str, Any]) -> tuple[ClaimSpec, LocalSecrets]:
    spec = ClaimSpec.model_validate(
        {
            "stores": [
                {
                    "name": "cache",
                    "kind": "redis",
                    "connection": {"secretRef": {"name": "cache", "key": "url"}},
                    "redis": redis_block,
                }
            ]
        }
    )
    return spec, LocalSecrets(environ={"DATARCH_SECRET_CACHE_URL": url_secret})


async def test_redis_save_rules_without_config_get_are_could_not_check_naming_the_grant(
    redis_user_url: Any,
) -> None:
    url = redis_user_url("+info", "+select")
    spec, secrets = _spec(url, {"persistence": {"save": ""}, "maxmemoryPolicy": "noeviction"})

    verdict = await verify(spec, secrets)

    (store,) = verdict.stores
    assert verdict.findings == []
    assert (verdict.conforming, verdict.result) == (None, "error")
    assert [u.path for u in store.unchecked] == ["cache/persistence.save"]
    assert "+config|get" in store.unchecked[0].describe()


async def test_redis_save_rules_with_config_get_are_checked_and_conforming(
    redis_user_url: Any,
) -> None:
    url = redis_user_url("+info", "+select", "+config|get")
    spec, secrets = _spec(url, {"persistence": {"save": ""}, "maxmemoryPolicy": "noeviction"})

    verdict = await verify(spec, secrets)

    assert (verdict.conforming, verdict.result, verdict.stores[0].unchecked) == (True, "ok", ())


async def test_redis_key_ttls_the_user_may_not_read_are_could_not_check(
    redis_db: RedisDb, redis_user_url: Any
) -> None:
    redis_db.client.set("session:1", "x")
    url = redis_user_url("+info", "+select", "+config|get", "+scan")
    spec, secrets = _spec(url, {"keyPatterns": [{"pattern": "session:*", "ttlRequired": True}]})

    verdict = await verify(spec, secrets)

    (store,) = verdict.stores
    assert (verdict.findings, verdict.conforming, store.error_reason) == ([], None, None)
    assert [u.path for u in store.unchecked] == ["cache/patterns.session:*"]
    assert "+ttl" in store.unchecked[0].describe()
