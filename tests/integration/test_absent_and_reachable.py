"""Every kind proves it reached its server in every pass, and `absent: true` means that
nothing answered: refused or unresolvable is absent, a silent server could not be
checked, and anything that answers (refusing the credentials, or speaking another
protocol) is a critical finding. Real servers on loopback throughout."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest

from conftest import RedisDb, env, free_port
from datarch.claims import Store
from datarch.secrets import LocalSecrets
from datarch.verification import StoreResult, verify_store

pytestmark = pytest.mark.integration

KINDS = ("postgres", "mongodb", "nats", "s3", "redis")


def _address(kind: str, port: int) -> tuple[dict[str, Any], dict[str, str]]:
    """A connection block and the environment its secretRef reads, for a loopback port."""
    if kind == "s3":
        return {"endpoint": f"127.0.0.1:{port}", "secure": False, "secretRef": {"name": "s3"}}, {
            "DATARCH_SECRET_S3_ACCESSKEY": "datarch-ro",
            "DATARCH_SECRET_S3_SECRETKEY": "wrong-or-right",
        }
    url = {
        "postgres": f"postgresql://reader:pw@127.0.0.1:{port}/app",
        "mongodb": f"mongodb://127.0.0.1:{port}/",
        "nats": f"nats://127.0.0.1:{port}",
        "redis": f"redis://127.0.0.1:{port}/0",
    }[kind]
    key = {"postgres": "DSN", "mongodb": "URI"}.get(kind, "URL")
    return {"secretRef": {"name": "conn"}}, {f"DATARCH_SECRET_CONN_{key}": url}


async def _verify(kind: str, port: int, *, absent: bool, timeout: float = 2.0) -> StoreResult:
    connection, environ = _address(kind, port)
    store = Store.model_validate(
        {"name": "x", "kind": kind, "absent": absent, "connection": connection}
    )
    return await verify_store(store, timeout, LocalSecrets(environ=environ))


@pytest.mark.parametrize("kind", KINDS)
async def test_a_store_documented_as_absent_is_absent_when_its_port_refuses(kind: str) -> None:
    result = await _verify(kind, free_port(), absent=True)
    assert result.checked, result.message
    assert result.findings == ()
    assert result.message.startswith("absent as documented")


@pytest.mark.parametrize("kind", KINDS)
async def test_a_silent_store_documented_as_absent_could_not_be_checked(
    kind: str, silent_port: int
) -> None:
    result = await _verify(kind, silent_port, absent=True, timeout=1.0)
    assert not result.checked
    assert result.error_reason == "StoreTimeout"
    assert result.findings == ()
    assert result.duration_seconds < 1.0 + 1.5


@pytest.mark.parametrize("kind", KINDS)
async def test_a_silent_store_with_no_expectations_is_never_fine(
    kind: str, silent_port: int
) -> None:
    """The S3 probe made no request for a store without buckets: it read as conforming."""
    result = await _verify(kind, silent_port, absent=False, timeout=1.0)
    assert not result.checked
    assert not result.reachable


async def test_an_s3_store_with_no_buckets_and_nothing_listening_is_unreachable() -> None:
    """The issue's report: `conforming (1 store(s) checked)`, exit 0, store_up 1."""
    result = await _verify("s3", free_port(), absent=False)
    assert result.error_reason == "StoreUnreachable"
    assert not result.reachable


def _s3_store(access: str, secret: str, *, absent: bool) -> tuple[Store, LocalSecrets]:
    store = Store.model_validate(
        {
            "name": "objects",
            "kind": "s3",
            "absent": absent,
            "connection": {
                "endpoint": env("DATARCH_S3_ENDPOINT"),
                "secure": False,
                "secretRef": {"name": "s3"},
            },
        }
    )
    return store, LocalSecrets(
        environ={"DATARCH_SECRET_S3_ACCESSKEY": access, "DATARCH_SECRET_S3_SECRETKEY": secret}
    )


async def test_an_s3_store_with_no_buckets_proves_its_credentials() -> None:
    store, secrets = _s3_store(
        env("DATARCH_S3_RO_ACCESS_KEY"), env("DATARCH_S3_RO_SECRET_KEY"), absent=False
    )
    good = await verify_store(store, 5.0, secrets)
    assert good.checked and good.reachable, good.message
    store, secrets = _s3_store(env("DATARCH_S3_RO_ACCESS_KEY"), "not-the-secret", absent=False)
    wrong = await verify_store(store, 5.0, secrets)
    assert wrong.error_reason == "AccessDenied"
    assert "not-the-secret" not in wrong.message


@pytest.mark.parametrize("secret", ["right", "wrong"])
async def test_an_s3_server_answering_a_store_documented_as_absent_is_a_finding(
    secret: str,
) -> None:
    key = env("DATARCH_S3_RO_SECRET_KEY") if secret == "right" else "not-the-secret"
    store, secrets = _s3_store(env("DATARCH_S3_RO_ACCESS_KEY"), key, absent=True)
    result = await verify_store(store, 5.0, secrets)
    assert result.checked
    assert [f.severity.value for f in result.findings] == ["critical"]
    assert "documented as absent" in result.findings[0].message


async def test_a_server_speaking_another_protocol_where_none_is_documented_is_a_finding(
    redis_db: RedisDb,
) -> None:
    """A Redis store documented as absent whose address answers in HTTP (the S3 server):
    the probe fails without a timeout, and something is plainly there."""
    port = int(env("DATARCH_S3_ENDPOINT").rsplit(":", 1)[1])
    result = await _verify("redis", port, absent=True)
    assert result.checked, result.message
    assert len(result.findings) == 1
    assert f"something answered at 127.0.0.1:{port}" in result.findings[0].message


async def test_a_store_documented_as_absent_that_answers_is_a_finding_for_every_kind(
    redis_db: RedisDb,
) -> None:
    ports = {
        "redis": int(redis_db.url.rsplit(":", 1)[1].split("/")[0]),
        "nats": int(os.environ["DATARCH_NATS_URL"].rsplit(":", 1)[1]),
        "mongodb": int(env("DATARCH_MONGO_URI").rstrip("/").rsplit(":", 1)[1]),
        "postgres": int(env("DATARCH_PG_DSN").rsplit(":", 1)[1].split("/")[0]),
    }
    results = await asyncio.gather(
        *(_verify(kind, port, absent=True, timeout=5.0) for kind, port in ports.items())
    )
    for kind, result in zip(ports, results, strict=True):
        assert result.checked, f"{kind}: {result.message}"
        assert len(result.findings) == 1, f"{kind}: {result.message}"
