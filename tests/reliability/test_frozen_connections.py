"""A kept connection that goes silent mid-life, for every store kind: the next pass is
StoreTimeout within the claim's timeout (a hard bound, whatever the driver does while
cancelling), never reads as fine, and the pass after the path comes back is checked.

The path runs through a FaultProxy in front of the shared dev servers, so nothing
shared is stopped: only the proxy's relay freezes.
"""

from __future__ import annotations

import os
import time
from urllib.parse import urlsplit, urlunsplit

import pytest
from fault_proxy import fault_proxy

from conftest import env
from datarch.claims import Store
from datarch.probes.base import ClientPool
from datarch.secrets import LocalSecrets
from datarch.verification import verify_store

pytestmark = pytest.mark.reliability

TIMEOUT = 1.5
# Scheduling slack on two loaded cores; psycopg's cancel alone used to add 10 s.
SLACK = 0.75


def _upstream(kind: str) -> str:
    return {
        "postgres": env("DATARCH_PG_RO_DSN"),
        "mongodb": env("DATARCH_MONGO_URI"),
        "nats": env("DATARCH_NATS_RO_URL"),
        "redis": env("DATARCH_REDIS_URL"),
        "s3": "http://" + env("DATARCH_S3_ENDPOINT"),
    }[kind]


@pytest.mark.parametrize("kind", ["postgres", "mongodb", "nats", "s3", "redis"])
async def test_a_frozen_kept_connection_times_out_within_the_timeout_and_recovers(
    kind: str,
) -> None:
    upstream = urlsplit(_upstream(kind))
    assert upstream.hostname and upstream.port
    with fault_proxy(upstream.hostname, upstream.port) as proxy:
        through = urlunsplit(
            upstream._replace(netloc=upstream.netloc.replace(f":{upstream.port}", f":{proxy.port}"))
        )
        connection: dict[str, object] = {"secretRef": {"name": "conn"}}
        if kind == "s3":
            connection |= {"endpoint": f"127.0.0.1:{proxy.port}", "secure": False}
        store = Store.model_validate({"name": kind, "kind": kind, "connection": connection})
        secrets = LocalSecrets(
            environ={
                "DATARCH_SECRET_CONN_DSN": through,
                "DATARCH_SECRET_CONN_URI": through,
                "DATARCH_SECRET_CONN_URL": through,
                "DATARCH_SECRET_CONN_ACCESSKEY": os.environ["DATARCH_S3_RO_ACCESS_KEY"],
                "DATARCH_SECRET_CONN_SECRETKEY": os.environ["DATARCH_S3_RO_SECRET_KEY"],
            }
        )
        clients = ClientPool()
        try:
            first = await verify_store(store, TIMEOUT, secrets, clients)
            assert first.checked, first.message
            assert len(clients) == 1  # the connection is kept for the next pass

            proxy.freeze()
            started = time.perf_counter()
            frozen = await verify_store(store, TIMEOUT, secrets, clients)
            waited = time.perf_counter() - started
            assert not frozen.checked, f"{kind} read as fine through a frozen connection"
            assert frozen.error_reason == "StoreTimeout", frozen.message
            assert waited < TIMEOUT + SLACK, f"{kind}: {waited:.2f}s against {TIMEOUT}s"
            assert f"{TIMEOUT:g}s" in frozen.message  # the wait it reports is the wait it did

            proxy.thaw()
            recovered = await verify_store(store, TIMEOUT, secrets, clients)
            assert recovered.checked, recovered.message
        finally:
            await clients.close()
