"""The PostgreSQL accuracy corpus: public schemas written by other people, truthful claims, real drift.

tests/corpus/postgres/ holds, for each schema, its DDL as published (source, commit and
licence at the top of the file), a claim written from that DDL's text in its authors'
spelling, and changes a team makes without updating its docs. Each schema is loaded once
into a database of its own; every claim must verify with no finding, and every drift,
applied to a fresh copy of that database, must be reported exactly once, at its path.

The figures (schemas, facts, false findings, drifts found) are printed at the end of the
module, as the issue's closing note quotes them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from psycopg import sql
from pydantic import SecretStr

from conftest import env, unique_name, with_path
from datarch.claims import Store
from datarch.comparison.postgres import compare_postgres
from datarch.findings import Finding
from datarch.probes.base import Target
from datarch.probes.postgres import observe

pytestmark = pytest.mark.integration

CORPUS = Path(__file__).resolve().parent.parent / "corpus" / "postgres"
SCHEMAS = ("pagila", "adventureworks", "river", "hoppscotch", "openstreetmap")
# Migration files concatenated into one corpus file run one by one, as their tools run them.
_SECTION = re.compile(r"^-- ===== .*$", re.MULTILINE)


def claim(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((CORPUS / f"{name}.claim.yaml").read_text())
    return loaded


def drifts(name: str) -> list[dict[str, str]]:
    loaded: list[dict[str, str]] = yaml.safe_load((CORPUS / f"{name}.drifts.yaml").read_text())
    return loaded


def facts(postgres: dict[str, Any]) -> int:
    """What the claim states: every object it names and every field it gives each one."""
    count = len(postgres.get("extensions", ())) + len(postgres.get("migrations", {}))
    for schema in postgres.get("schemas", ()):
        count += 1
        for table in schema.get("tables", ()):
            count += 1 + ("primaryKey" in table) + len(table.get("uniques", ()))
            count += len(table.get("partitioning", {}))
            for group in ("columns", "foreignKeys", "indexes", "checks"):
                count += sum(len(entry) for entry in table.get(group, ()))  # name: the object
    return count


def load(dsn: str, ddl: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for section in _SECTION.split(ddl):
            if section.strip():
                conn.execute(section)  # the corpus's own DDL, no parameters


async def verify(ro_dsn: str, postgres: dict[str, Any]) -> list[Finding]:
    store = Store.model_validate({"name": "main", "kind": "postgres", "postgres": postgres})
    target = Target(store=store, timeout=60.0, secret=SecretStr(ro_dsn), secret_key="dsn")
    return compare_postgres(store, await observe(target))


@dataclass
class Figures:
    schemas: set[str] = field(default_factory=set)
    facts: int = 0
    false_findings: int = 0
    drifts: int = 0
    found_once: int = 0


@dataclass
class Databases:
    """One loaded database per corpus schema, made on first use; copies of them for drifts."""

    admin: psycopg.Connection
    made: list[str] = field(default_factory=list)
    loaded: dict[str, str] = field(default_factory=dict)

    def base(self, name: str) -> str:
        if name not in self.loaded:
            database = self.create(None)
            load(with_path(env("DATARCH_PG_DSN"), database), (CORPUS / f"{name}.sql").read_text())
            self.loaded[name] = database
        return self.loaded[name]

    def create(self, template: str | None) -> str:
        database = unique_name("t_corpus_")
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database))
        if template is not None:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        self.admin.execute(statement)
        self.made.append(database)
        return database

    def drop(self, database: str) -> None:
        self.admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
        )
        self.made.remove(database)


@pytest.fixture(scope="module")
def figures(request: pytest.FixtureRequest) -> Iterator[Figures]:
    counted = Figures()
    yield counted
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(
                f"\nPostgreSQL corpus: {len(counted.schemas)} schemas, {counted.facts} facts, "
                f"{counted.false_findings} false findings, "
                f"{counted.found_once}/{counted.drifts} drifts found exactly once"
            )


@pytest.fixture(scope="module")
def databases(pg_admin: psycopg.Connection) -> Iterator[Databases]:
    made = Databases(pg_admin)
    try:
        yield made
    finally:
        for database in list(made.made):
            made.drop(database)


@pytest.mark.parametrize("name", SCHEMAS)
async def test_a_truthful_claim_of_a_real_schema_has_no_findings(
    name: str, databases: Databases, figures: Figures
) -> None:
    postgres = claim(name)
    found = await verify(with_path(env("DATARCH_PG_RO_DSN"), databases.base(name)), postgres)
    figures.schemas.add(name)
    figures.facts += facts(postgres)
    figures.false_findings += len(found)
    assert [f.describe() for f in found] == []


DRIFTS = [(name, drift) for name in SCHEMAS for drift in drifts(name)]


@pytest.mark.parametrize(
    ("name", "drift"), DRIFTS, ids=[f"{name}: {drift['why']}" for name, drift in DRIFTS]
)
async def test_a_real_world_drift_is_reported_once_at_its_path(
    name: str, drift: dict[str, str], databases: Databases, figures: Figures
) -> None:
    copy = databases.create(databases.base(name))
    try:
        with psycopg.connect(with_path(env("DATARCH_PG_DSN"), copy), autocommit=True) as conn:
            conn.execute(drift["sql"])  # the corpus's own DDL, no parameters
        found = await verify(with_path(env("DATARCH_PG_RO_DSN"), copy), claim(name))
    finally:
        databases.drop(copy)
    figures.drifts += 1
    paths = [f.path for f in found]
    figures.found_once += paths == [drift["path"]]
    assert paths == [drift["path"]], [f.describe() for f in found]
