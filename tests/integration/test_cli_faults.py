"""`datarch verify` when one store's connection is malformed or its server is not what the
claim says: that store alone is not checked, the others are, and no secret is printed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import RedisDb

pytestmark = pytest.mark.integration

CANARY = "canary-pw-5f1e"


def _verify(
    tmp_path: Path, stores: list[dict[str, Any]], env: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    claim = {
        "apiVersion": "datarch.io/v1alpha1",
        "kind": "DataArchitectureClaim",
        "metadata": {"name": "platform", "namespace": "data"},
        "spec": {"timeout": "5s", "stores": stores},
    }
    path = tmp_path / "claim.yaml"
    path.write_text(yaml.safe_dump(claim))
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DATARCH_SECRET_")}
    return subprocess.run(
        [sys.executable, "-m", "datarch", "verify", "-f", str(path), *args],
        env={**environment, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


MALFORMED = {
    "nats": ("url", f"nats://readonly:{CANARY}@[127.0.0.1:notaport"),
    "redis": ("url", f"redis://:{CANARY}@127.0.0.1:notaport/0"),
    "postgres": ("dsn", f"postgresql://reader:{CANARY}@[::1:5432/app"),
    "mongodb": ("uri", f"mongodb://reader:{CANARY}@127.0.0.1:notaport/"),
}


@pytest.mark.parametrize("kind", sorted(MALFORMED))
def test_a_malformed_secret_is_that_stores_problem_and_the_others_are_verified(
    tmp_path: Path, redis_db: RedisDb, kind: str
) -> None:
    key, value = MALFORMED[kind]
    stores = [
        {"name": "broken", "kind": kind, "connection": {"secretRef": {"name": "bad"}}},
        {"name": "cache", "kind": "redis", "connection": {"secretRef": {"name": "cache"}}},
    ]
    env = {f"DATARCH_SECRET_BAD_{key.upper()}": value, "DATARCH_SECRET_CACHE_URL": redis_db.url}
    for output in ("text", "json"):
        run = _verify(tmp_path, stores, env, "-o", output)
        assert run.returncode == 2, run.stdout + run.stderr
        assert "Traceback" not in run.stderr
        assert CANARY not in run.stdout + run.stderr
        assert "notaport" not in run.stdout + run.stderr
        assert f"while reading secret bad key {key}" in run.stderr
    report = json.loads(run.stdout)
    by_name = {store["name"]: store for store in report["stores"]}
    assert by_name["broken"]["reachable"] is False
    assert "InvalidConnection" in json.dumps(by_name["broken"])
    assert by_name["cache"]["reachable"] is True


def test_a_malformed_s3_endpoint_in_the_claim_is_invalid_and_names_the_field(
    tmp_path: Path, redis_db: RedisDb
) -> None:
    stores = [
        {"name": "objects", "kind": "s3", "connection": {"endpoint": "127.0.0.1:notaport"}},
        {"name": "cache", "kind": "redis", "connection": {"url": redis_db.url}},
    ]
    run = _verify(tmp_path, stores, {})
    assert run.returncode == 2, run.stdout + run.stderr
    assert "objects (s3): NOT CHECKED (InvalidConnection)" in run.stdout
    assert "connection.endpoint" in run.stderr
    assert re.search(r"^cache \(redis [0-9.]+\): conforming$", run.stdout, re.MULTILINE)
