"""`datarch verify` as a user runs it: a real process against the real dev PostgreSQL and Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import psycopg
import pytest
import yaml

from conftest import PgDatabase

pytestmark = pytest.mark.integration

DATARCH = [sys.executable, "-m", "datarch"]
DEAD_PORT_URL = "redis://127.0.0.1:1/0"  # port 1: nothing listens, the kernel refuses at once

SCHEMA = """
CREATE TABLE orgs (id uuid PRIMARY KEY);
CREATE TABLE users (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    email varchar(255) NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX users_org_idx ON users (org_id);
"""


def _claim(
    tables: list[dict[str, Any]], extra_stores: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "datarch.io/v1alpha1",
        "kind": "DataArchitectureClaim",
        "metadata": {"name": "platform", "namespace": "data"},
        "spec": {
            "timeout": "5s",
            "stores": [
                {
                    "name": "main",
                    "kind": "postgres",
                    "connection": {"secretRef": {"name": "pg-readonly"}},
                    "postgres": {"schemas": [{"name": "public", "tables": tables}]},
                },
                *(extra_stores or []),
            ],
        },
    }


USERS = {
    "name": "users",
    "columns": [
        {"name": "id", "type": "uuid", "nullable": False},
        {"name": "email", "type": "varchar(255)", "nullable": False},
        {"name": "created_at", "type": "timestamptz", "nullable": False, "default": "now()"},
    ],
    "primaryKey": ["id"],
    "uniques": [["email"]],
    "foreignKeys": [
        {
            "columns": ["org_id"],
            "references": {"table": "orgs", "columns": ["id"]},
            "onDelete": "cascade",
        }
    ],
    "indexes": [{"name": "users_org_idx", "columns": ["org_id"]}],
}


@pytest.fixture
def platform(pg_database: PgDatabase) -> PgDatabase:
    with psycopg.connect(pg_database.dsn, autocommit=True) as conn:
        conn.execute(SCHEMA)  # type: ignore[arg-type]  # a literal script, no parameters
    return pg_database


def _verify(
    tmp_path: Path, claim: dict[str, Any], env: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "claim.yaml"
    path.write_text(yaml.safe_dump(claim))
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DATARCH_SECRET_")}
    return subprocess.run(
        [*DATARCH, "verify", "-f", str(path), *args],
        env={**environment, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_claim_that_matches_the_database_exits_zero(tmp_path: Path, platform: PgDatabase) -> None:
    run = _verify(tmp_path, _claim([USERS]), {"DATARCH_SECRET_PG_READONLY_DSN": platform.ro_dsn})
    assert run.returncode == 0, run.stdout + run.stderr
    assert "data/platform: conforming" in run.stdout


def test_drift_exits_one_and_is_listed_worst_first(tmp_path: Path, platform: PgDatabase) -> None:
    wrong = {
        **USERS,
        "columns": [{"name": "email", "type": "text"}, {"name": "nickname", "type": "text"}],
    }
    run = _verify(tmp_path, _claim([wrong]), {"DATARCH_SECRET_PG_READONLY_DSN": platform.ro_dsn})
    assert run.returncode == 1, run.stdout + run.stderr
    lines = [
        line
        for line in run.stdout.splitlines()
        if line.startswith("  CRIT") or line.startswith("  WARN")
    ]
    assert any("main/public.users.columns.email.type" in line for line in lines)
    assert any("main/public.users.columns.nickname" in line and "missing" in line for line in lines)


def test_json_output_carries_every_finding_with_its_fields(
    tmp_path: Path, platform: PgDatabase
) -> None:
    wrong = {**USERS, "columns": [{"name": "email", "type": "text"}]}
    run = _verify(
        tmp_path, _claim([wrong]), {"DATARCH_SECRET_PG_READONLY_DSN": platform.ro_dsn}, "-o", "json"
    )
    assert run.returncode == 1
    report = json.loads(run.stdout)
    [finding] = [
        f for f in report["findings"] if f["path"] == "main/public.users.columns.email.type"
    ]
    assert finding["kind"] == "different"
    assert finding["severity"] == "critical"
    assert finding["expected"] == "text"
    assert "character varying(255)" in finding["observed"]
    assert report["result"] == "findings"


def test_json_output_is_not_capped_at_the_statuss_fifty(
    tmp_path: Path, platform: PgDatabase
) -> None:
    missing = [{"name": f"absent_{i:02d}"} for i in range(60)]
    run = _verify(
        tmp_path,
        _claim([USERS, *missing]),
        {"DATARCH_SECRET_PG_READONLY_DSN": platform.ro_dsn},
        "-o",
        "json",
    )
    assert run.returncode == 1, run.stdout + run.stderr
    report = json.loads(run.stdout)
    paths = {f["path"] for f in report["findings"]}
    assert paths == {f"main/public.absent_{i:02d}" for i in range(60)}
    assert report["stores"][0]["findings"] == 60


def test_junit_output_has_one_test_case_per_documented_object(
    tmp_path: Path, platform: PgDatabase
) -> None:
    orgs = {"name": "orgs", "columns": [{"name": "id", "type": "uuid"}]}
    missing = {"name": "invoices"}
    run = _verify(
        tmp_path,
        _claim([USERS, orgs, missing]),
        {"DATARCH_SECRET_PG_READONLY_DSN": platform.ro_dsn},
        "-o",
        "junit",
    )
    assert run.returncode == 1
    cases = {c.get("name"): c for c in ElementTree.fromstring(run.stdout).iter("testcase")}
    assert {"public", "public.users", "public.orgs", "public.invoices"} <= set(cases)
    assert cases["public.invoices"].find("failure") is not None
    assert cases["public.users"].find("failure") is None


def test_secrets_resolve_from_a_directory_laid_out_like_a_mounted_secret(
    tmp_path: Path, platform: PgDatabase
) -> None:
    (tmp_path / "secrets" / "pg-readonly").mkdir(parents=True)
    (tmp_path / "secrets" / "pg-readonly" / "dsn").write_text(platform.ro_dsn + "\n")
    run = _verify(tmp_path, _claim([USERS]), {}, "--secrets-dir", str(tmp_path / "secrets"))
    assert run.returncode == 0, run.stdout + run.stderr


def test_a_missing_secret_exits_two_with_one_line_naming_it(
    tmp_path: Path, platform: PgDatabase
) -> None:
    run = _verify(tmp_path, _claim([USERS]), {})
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    [line] = [x for x in run.stderr.splitlines() if x.startswith("datarch:")]
    assert (
        "main" in line and "SecretUnavailable" in line and "DATARCH_SECRET_PG_READONLY_DSN" in line
    )


def test_a_wrong_password_exits_two_without_leaking_it(
    tmp_path: Path, platform: PgDatabase
) -> None:
    wrong = platform.ro_dsn.replace(":datarch_ro@", ":not-the-password@")
    assert wrong != platform.ro_dsn
    run = _verify(tmp_path, _claim([USERS]), {"DATARCH_SECRET_PG_READONLY_DSN": wrong})
    assert run.returncode == 2
    assert "AccessDenied" in run.stderr
    assert "not-the-password" not in run.stdout + run.stderr
    assert "Traceback" not in run.stderr


def test_a_dead_store_exits_two_even_when_another_store_has_findings(
    tmp_path: Path, platform: PgDatabase
) -> None:
    wrong = {**USERS, "columns": [{"name": "email", "type": "text"}]}
    dead = {"name": "cache", "kind": "redis", "connection": {"url": DEAD_PORT_URL}, "redis": {}}
    run = _verify(
        tmp_path, _claim([wrong], [dead]), {"DATARCH_SECRET_PG_READONLY_DSN": platform.ro_dsn}
    )
    assert run.returncode == 2, run.stdout + run.stderr
    assert "cache (redis): NOT CHECKED (StoreUnreachable)" in run.stdout
    assert "INCOMPLETE" in run.stdout


def test_an_invalid_claim_exits_two_naming_the_field(tmp_path: Path) -> None:
    claim = _claim([USERS])
    claim["spec"]["interval"] = "often"
    run = _verify(tmp_path, claim, {})
    assert run.returncode == 2
    assert "spec.interval" in run.stderr
    assert "Traceback" not in run.stderr


def test_a_redis_documented_as_absent_passes_when_nothing_answers(
    tmp_path: Path, platform: PgDatabase
) -> None:
    absent = {
        "name": "cache",
        "kind": "redis",
        "absent": True,
        "connection": {"url": DEAD_PORT_URL},
    }
    run = _verify(
        tmp_path, _claim([USERS], [absent]), {"DATARCH_SECRET_PG_READONLY_DSN": platform.ro_dsn}
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "cache (redis): absent, as documented" in run.stdout


def test_a_redis_documented_as_absent_is_a_finding_when_one_answers(
    tmp_path: Path, platform: PgDatabase
) -> None:
    absent = {
        "name": "cache",
        "kind": "redis",
        "absent": True,
        "connection": {"url": os.environ["DATARCH_REDIS_URL"]},
    }
    run = _verify(
        tmp_path, _claim([USERS], [absent]), {"DATARCH_SECRET_PG_READONLY_DSN": platform.ro_dsn}
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "documented as absent, but a redis server answered" in run.stdout


def _with_backup(namespace: str) -> dict[str, Any]:
    claim = _claim([USERS])
    claim["metadata"]["namespace"] = namespace
    claim["spec"]["backups"] = [
        {
            "name": "nightly",
            "store": "main",
            "cronJob": {"name": "pg-backup"},
            "schedule": "0 2 * * *",
        }
    ]
    return claim


def test_backups_are_not_checked_without_a_cluster_and_that_exits_two(
    tmp_path: Path, platform: PgDatabase
) -> None:
    env = {"DATARCH_SECRET_PG_READONLY_DSN": platform.ro_dsn, "KUBECONFIG": str(tmp_path / "none")}
    run = _verify(tmp_path, _with_backup("data"), env)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "backup nightly not checked: CronJobUnreadable" in run.stderr
    assert "--skip-backups" in run.stderr
    # The closing line agrees with the exit code: incomplete, not "conforming".
    closing = run.stdout.splitlines()[-1]
    assert "INCOMPLETE" in closing and "nightly" in closing, closing
    assert "conforming" not in closing, closing


def test_an_unchecked_backup_is_a_junit_error_not_a_failure(
    tmp_path: Path, platform: PgDatabase
) -> None:
    env = {"DATARCH_SECRET_PG_READONLY_DSN": platform.ro_dsn, "KUBECONFIG": str(tmp_path / "none")}
    run = _verify(tmp_path, _with_backup("data"), env, "-o", "junit")
    assert run.returncode == 2, run.stdout + run.stderr
    suite = next(
        s
        for s in ElementTree.fromstring(run.stdout).iter("testsuite")
        if s.get("name") == "backup nightly"
    )
    assert (suite.get("errors"), suite.get("failures")) == ("1", "0")
    [error] = suite.iter("error")
    assert error.get("type") == "CronJobUnreadable"


def test_skip_backups_verifies_the_stores_alone(tmp_path: Path, platform: PgDatabase) -> None:
    env = {"DATARCH_SECRET_PG_READONLY_DSN": platform.ro_dsn, "KUBECONFIG": str(tmp_path / "none")}
    run = _verify(tmp_path, _with_backup("data"), env, "--skip-backups")
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.e2e
def test_a_documented_cron_job_that_does_not_exist_is_a_finding(
    tmp_path: Path, platform: PgDatabase, kube_namespace: str
) -> None:
    run = _verify(
        tmp_path, _with_backup(kube_namespace), {"DATARCH_SECRET_PG_READONLY_DSN": platform.ro_dsn}
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "backup nightly: CronJobNotFound" in run.stdout
    # Every store conforms, but the backup does not: the closing line must not say
    # "conforming" while the exit code says 1.
    closing = run.stdout.splitlines()[-1]
    assert "conforming" not in closing, closing
    assert "1 backup not fresh (nightly)" in closing, closing
