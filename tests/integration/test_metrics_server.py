"""The operator's metrics endpoint: a real HTTP server on loopback serving the registry."""

from __future__ import annotations

import asyncio
import urllib.request
from datetime import UTC, datetime

import pytest

from conftest import free_port
from datarch.claims import ClaimSpec
from datarch.reporting import metrics
from datarch.verification import StoreResult, Verdict

pytestmark = pytest.mark.integration

SPEC = ClaimSpec.model_validate({"stores": [{"name": "main", "kind": "postgres"}]})


async def test_the_metrics_server_serves_the_registry_over_http() -> None:
    collector = metrics.VerdictCollector()
    registry = metrics.registry_with(collector)
    verdict = Verdict(
        stores=(StoreResult(name="main", kind="postgres", reachable=True),),
        started_at=datetime(2026, 11, 25, 12, 0, tzinfo=UTC),
    )
    collector.record("data", "platform", SPEC, verdict)
    port = free_port()
    runner = await metrics.start_metrics_server(registry, "127.0.0.1", port)
    try:

        def get() -> tuple[str, str]:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                return response.headers["Content-Type"], response.read().decode()

        content_type, body = await asyncio.to_thread(get)
    finally:
        await runner.cleanup()
    assert content_type.startswith("text/plain")
    assert (
        'datarch_store_up{claim="platform",claim_namespace="data",kind="postgres",store="main"} 1.0'
        in body
    )
