"""Benchmark: one PostgreSQL verification of a 2,000-table schema against pg_dump --schema-only.

Builds (once, reused while its fingerprint holds) a database of 2,000 tables in
two schemas, about 20k columns, 2k foreign keys, 4k+ indexes and 20 partitioned
tables with 4 partitions each, in the dev PostgreSQL; writes the claim that
documents it (about 2 MB of YAML); then prints, side by side, the medians of
- one verification pass in-process (probe + comparison, the claim already loaded),
- the whole `datarch verify -f claim.yaml` process, claim loading included,
- `pg_dump --schema-only` of the same database,
with their ratios and the number of catalog queries the probe issued.

The claim must produce zero findings against the schema it documents: that is
checked here too, so the figures are never those of a pass that found drift.

Run: `make bench`, or with the dev environment's variables exported,
`.venv/bin/python bench/postgres_verify.py [--runs N]`.
Targets (issue 3): pass <= 0.5x pg_dump; process <= 1.0x pg_dump; <= 12 queries.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import importlib
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo
from pydantic import SecretStr

from datarch.claims import Store, load_claim
from datarch.comparison.postgres import compare_postgres
from datarch.probes.base import ClientPool, Target
from datarch.probes.postgres import observe

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "bench" / ".work"
CLAIM = WORK / "postgres_claim.yaml"
DATABASE = "datarch_bench"
SECRET_ENV = "DATARCH_SECRET_BENCH_PG_DSN"  # secretRef {name: bench-pg, key: dsn}

TABLES = 2000
SCHEMAS = ("app", "billing")  # tables [0, 1500) in app, the rest in billing
BILLING_FROM = 1500
PARTITIONED_EVERY = 100  # table i with i % 100 == 50 is partitioned by range
PARTITIONS = 4
ACTIONS = ("cascade", "set null", "restrict", "no action")

TARGET_PASS = 0.5
TARGET_PROCESS = 1.0
TARGET_QUERIES = 12


# --- the schema, described once, rendered both as DDL and as the claim ---------


@dataclass(frozen=True)
class Column:
    name: str
    ddl: str  # type and constraints as written in CREATE TABLE
    claim: str  # the claim's flow mapping entries (type written with a different alias)


@dataclass(frozen=True)
class Table:
    index: int

    @property
    def schema(self) -> str:
        return SCHEMAS[0] if self.index < BILLING_FROM else SCHEMAS[1]

    @property
    def name(self) -> str:
        return f"t{self.index:04d}"

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def partitioned(self) -> bool:
        return self.index % PARTITIONED_EVERY == PARTITIONED_EVERY // 2

    @property
    def parent(self) -> Table | None:
        """The table this one references: the previous one that is not partitioned."""
        if self.index == 0:
            return None
        previous = Table(self.index - 1)
        return previous if not previous.partitioned else Table(self.index - 2)

    @property
    def unique_code(self) -> bool:
        return self.index % 4 == 0 and not self.partitioned

    @property
    def checked(self) -> bool:
        return self.index % 5 == 0

    @property
    def partial_index(self) -> bool:
        return self.index % 10 == 3

    @property
    def expression_index(self) -> bool:
        return self.index % 20 == 7

    def columns(self) -> list[Column]:
        i = self.index
        if self.partitioned:
            ident = Column("id", "bigint NOT NULL", "type: int8, nullable: false")
        elif i % 2 == 0:
            ident = Column("id", "bigserial", "type: bigserial, nullable: false")
        else:
            ident = Column(
                "id",
                "bigint GENERATED ALWAYS AS IDENTITY",
                "type: int8, nullable: false, identity: always",
            )
        return [
            ident,
            Column("parent_id", "bigint", "type: bigint, nullable: true"),
            Column(
                "name", "character varying(255) NOT NULL", "type: varchar(255), nullable: false"
            ),
            Column("code", "varchar(32)", "type: character varying(32)"),
            Column(
                "amount",
                "numeric(12,2) NOT NULL DEFAULT 0",
                "type: 'decimal(12, 2)', nullable: false, default: '0'",
            ),
            Column("tags", "text[]", "type: _text"),
            Column(
                "status",
                "text NOT NULL DEFAULT 'active'",
                "type: text, nullable: false, default: \"'active'\"",
            ),
            Column(
                "created_at",
                "timestamp with time zone NOT NULL DEFAULT now()",
                "type: timestamptz, nullable: false, default: CURRENT_TIMESTAMP",
            ),
            Column("updated_at", "timestamp(3)", "type: timestamp(3) without time zone"),
            Column("payload", "jsonb DEFAULT '{}'::jsonb", "type: JSONB, default: \"'{}'\""),
        ]

    def primary_key(self) -> list[str]:
        return ["id", "created_at"] if self.partitioned else ["id"]

    def action(self) -> str:
        return ACTIONS[self.index % len(ACTIONS)]

    def ddl(self) -> str:
        lines = [f"{c.name} {c.ddl}" for c in self.columns()]
        lines.append(f"CONSTRAINT {self.name}_pkey PRIMARY KEY ({', '.join(self.primary_key())})")
        if self.unique_code:
            lines.append(f"CONSTRAINT {self.name}_code_key UNIQUE (code)")
        if self.checked:
            lines.append(
                f"CONSTRAINT {self.name}_status_check CHECK (status IN ('active', 'archived'))"
            )
        if self.parent is not None:
            lines.append(
                f"CONSTRAINT {self.name}_parent_fkey FOREIGN KEY (parent_id) "
                f"REFERENCES {self.parent.qualified} (id) ON DELETE {self.action().upper()}"
            )
        body = ",\n  ".join(lines)
        statements = [f"CREATE TABLE {self.qualified} (\n  {body}\n)"]
        if self.partitioned:
            statements[0] += " PARTITION BY RANGE (created_at)"
            for quarter in range(PARTITIONS):
                start, end = f"2024-{quarter * 3 + 1:02d}-01", f"2024-{quarter * 3 + 4:02d}-01"
                if quarter == PARTITIONS - 1:
                    end = "2025-01-01"
                statements.append(
                    f"CREATE TABLE {self.schema}.{self.name}_q{quarter + 1} PARTITION OF "
                    f"{self.qualified} FOR VALUES FROM ('{start}') TO ('{end}')"
                )
        statements.append(f"CREATE INDEX {self.name}_parent_idx ON {self.qualified} (parent_id)")
        if self.partial_index:
            statements.append(
                f"CREATE INDEX {self.name}_active_idx ON {self.qualified} (created_at) "
                "WHERE status = 'active'"
            )
        if self.expression_index:
            statements.append(
                f"CREATE INDEX {self.name}_lower_name_idx ON {self.qualified} (lower(name))"
            )
        return ";\n".join(statements) + ";\n"

    def claim(self) -> Iterator[str]:
        """The table's entry in the claim, as YAML lines (flow mappings keep it compact)."""
        yield f"              - name: {self.name}"
        yield "                columns:"
        for column in self.columns():
            yield f"                  - {{name: {column.name}, {column.claim}}}"
        yield f"                primaryKey: [{', '.join(self.primary_key())}]"
        if self.unique_code:
            yield "                uniques: [[code]]"
        if self.parent is not None:
            reference = (
                f"{{schema: {self.parent.schema}, table: {self.parent.name}, columns: [id]}}"
            )
            yield "                foreignKeys:"
            yield (
                f"                  - {{columns: [parent_id], references: {reference}, "
                f"onDelete: {self.action()}, onUpdate: no action}}"
            )
        yield "                indexes:"
        yield f"                  - {{name: {self.name}_parent_idx, columns: [parent_id], unique: false}}"
        if self.partial_index:
            yield (
                f"                  - {{name: {self.name}_active_idx, columns: [created_at], "
                "where: \"status = 'active'\"}"
            )
        if self.expression_index:
            yield f"                  - {{name: {self.name}_lower_name_idx, columns: [lower(name)]}}"
        if self.checked:
            yield (
                f"                checks: [{{name: {self.name}_status_check, "
                "expression: \"status IN ('active', 'archived')\"}]"
            )
        if self.partitioned:
            yield "                partitioning: {strategy: range, key: [created_at]}"


def tables() -> list[Table]:
    return [Table(i) for i in range(TABLES)]


def schema_sql() -> str:
    parts = ["CREATE EXTENSION IF NOT EXISTS pgcrypto;\n"]
    parts += [f"CREATE SCHEMA {schema};\n" for schema in SCHEMAS]
    parts += [table.ddl() for table in tables()]
    # flyway's history, so the pass reads a migration table too.
    parts.append(
        "CREATE TABLE app.flyway_schema_history (installed_rank integer PRIMARY KEY, "
        "version varchar(50), description varchar(200) NOT NULL, type varchar(20) NOT NULL, "
        "script varchar(1000) NOT NULL, checksum integer, installed_by varchar(100) NOT NULL, "
        "installed_on timestamp NOT NULL DEFAULT now(), execution_time integer NOT NULL, "
        "success boolean NOT NULL);\n"
        "INSERT INTO app.flyway_schema_history VALUES "
        "(1, '1', 'init', 'SQL', 'V1__init.sql', 1, 'ci', now(), 10, true), "
        "(2, '2', 'tables', 'SQL', 'V2__tables.sql', 2, 'ci', now(), 4000, true);\n"
    )
    return "".join(parts)


def claim_yaml() -> str:
    lines = [
        "apiVersion: datarch.io/v1alpha1",
        "kind: DataArchitectureClaim",
        "metadata: {name: bench, namespace: bench}",
        "spec:",
        "  timeout: 60s",
        "  stores:",
        "    - name: main",
        "      kind: postgres",
        "      connection: {secretRef: {name: bench-pg, key: dsn}}",
        "      strict: true",
        "      postgres:",
        f"        database: {DATABASE}",
        "        extensions: [pgcrypto, plpgsql]",
        "        migrations: {tool: flyway, latest: '2', schema: app}",
        "        schemas:",
    ]
    by_schema: dict[str, list[Table]] = {}
    for table in tables():
        by_schema.setdefault(table.schema, []).append(table)
    for schema, members in by_schema.items():
        lines.append(f"          - name: {schema}")
        lines.append("            tables:")
        for table in members:
            lines.extend(table.claim())
    return "\n".join(lines) + "\n"


FINGERPRINT = hashlib.sha256(schema_sql().encode()).hexdigest()[:16]


# --- the database -----------------------------------------------------------


def with_database(dsn: str, database: str) -> str:
    return make_conninfo(dsn, dbname=database)


def ensure_database(admin_dsn: str) -> str:
    """Build the bench database unless one with the same fingerprint is there; say which."""
    marker = f"datarch bench {FINGERPRINT}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            (DATABASE,),
        ).fetchone()
        if row is not None and row[0] == marker:
            return "reused"
        if row is not None:
            conn.execute(f"DROP DATABASE {DATABASE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DATABASE}")
    started = time.monotonic()
    with psycopg.connect(with_database(admin_dsn, DATABASE)) as conn:
        conn.execute(
            schema_sql()
        )  # one transaction: a half-built database never carries the marker
        conn.execute("ANALYZE")
        conn.commit()
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f"COMMENT ON DATABASE {DATABASE} IS '{marker}'")
    return f"built in {time.monotonic() - started:.1f}s"


def ensure_claim() -> None:
    text = claim_yaml()
    if not CLAIM.exists() or CLAIM.read_text() != text:
        WORK.mkdir(parents=True, exist_ok=True)
        CLAIM.write_text(text)


def catalog_counts(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            """
            SELECT
              (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = ANY(%(s)s) AND c.relkind IN ('r', 'p')),
              (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = ANY(%(s)s) AND c.relkind = 'p'),
              (SELECT count(*) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = ANY(%(s)s) AND c.relkind IN ('r', 'p') AND a.attnum > 0
                  AND NOT a.attisdropped),
              (SELECT count(*) FROM pg_constraint co JOIN pg_namespace n ON n.oid = co.connamespace
                WHERE n.nspname = ANY(%(s)s) AND co.contype = 'f'),
              (SELECT count(*) FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
                JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ANY(%(s)s))
            """,
            {"s": list(SCHEMAS)},
        ).fetchone()
    assert row is not None
    keys = ("tables", "partitioned", "columns", "foreign keys", "indexes")
    return dict(zip(keys, (int(v) for v in row), strict=True))


# --- measuring ------------------------------------------------------------------


Run = Callable[[], Awaitable[Any]]


async def medians(contenders: dict[str, Run], runs: int) -> dict[str, float]:
    """Median seconds of each contender, taken round-robin so each sees the same machine load."""
    samples: dict[str, list[float]] = {label: [] for label in contenders}
    for _ in range(runs):
        for label, run in contenders.items():
            started = time.perf_counter()
            await run()
            samples[label].append(time.perf_counter() - started)
    return {label: statistics.median(values) for label, values in samples.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=7, help="samples per median (default 7)")
    args = parser.parse_args()
    admin_dsn = os.environ.get("DATARCH_PG_DSN")
    ro_dsn = os.environ.get("DATARCH_PG_RO_DSN")
    if not admin_dsn or not ro_dsn:
        print('DATARCH_PG_DSN and DATARCH_PG_RO_DSN are needed: eval "$(make -s env-vars)"')
        return 2

    print(f"database {DATABASE}: {ensure_database(admin_dsn)}")
    ensure_claim()
    bench_dsn = with_database(ro_dsn, DATABASE)
    counts = catalog_counts(bench_dsn)
    print(
        "schema: "
        + ", ".join(f"{value} {key}" for key, value in counts.items())
        + f"; claim {CLAIM.stat().st_size / 1e6:.1f} MB"
    )
    os.environ[SECRET_ENV] = bench_dsn

    claim = load_claim(CLAIM)
    store = claim.spec.stores[0]
    target = Target(store=store, timeout=claim.spec.timeout_seconds, secret=SecretStr(bench_dsn))
    return asyncio.run(measure(args.runs, store, target, bench_dsn))


DUMP = "pg_dump --schema-only"
PASS = "pass in-process (probe + comparison)"
PROBE = "  probe alone, pooled connection"
COMPARE = "  comparison alone"
COLD = "  pass with a new connection"
VERIFY = "  verification.verify_store"
CLI = "datarch verify -f claim.yaml"


async def measure(runs: int, store: Store, target: Target, bench_dsn: str) -> int:
    clients = ClientPool()
    observed = await observe(target, clients)  # warms the kept connection, as an operator has it
    findings = compare_postgres(store, observed)
    for finding in findings[:20]:
        print(f"  finding: {finding.describe()}")

    async def one_pass() -> None:
        compare_postgres(store, await observe(target, clients))

    async def cold_pass() -> None:
        compare_postgres(store, await observe(target))

    async def compare_only() -> None:
        compare_postgres(store, observed)

    async def dump() -> None:
        await pg_dump(bench_dsn)

    contenders: dict[str, Run] = {
        DUMP: dump,
        PASS: one_pass,
        PROBE: lambda: observe(target, clients),
        COMPARE: compare_only,
        COLD: cold_pass,
    }
    verify_one = verify_store_pass(store, target.timeout, clients)
    if verify_one is not None:
        contenders[VERIFY] = verify_one
    cli_argv, cli_note = cli_command()
    if cli_argv is not None:
        contenders[CLI] = lambda: run_process(cli_argv)
    result = await medians(contenders, runs)
    await clients.close()

    dump_s = result[DUMP]
    print(f"findings: {len(findings)} (the claim documents the schema: must be 0)")
    print(f"catalog queries per pass: {observed.queries} (target <= {TARGET_QUERIES})")
    print(f"medians of {runs} runs, taken round-robin:")
    goals = {PASS: TARGET_PASS, CLI: TARGET_PROCESS}
    for label, seconds in result.items():
        goal = f"  (target <= {goals[label]}x)" if label in goals else ""
        print(f"  {label:<40} {seconds * 1000:8.1f} ms  {seconds / dump_s:5.2f}x pg_dump{goal}")
    if cli_argv is None:
        print(f"  {CLI:<40} cli: not available ({cli_note})")
    met = {
        "findings": not findings,
        "queries": observed.queries <= TARGET_QUERIES,
        "pass": result[PASS] <= TARGET_PASS * dump_s,
        "process": CLI in result and result[CLI] <= TARGET_PROCESS * dump_s,
    }
    print("targets: " + ", ".join(f"{k} {'met' if v else 'NOT met'}" for k, v in met.items()))
    assert not findings, f"{len(findings)} findings against the schema the claim documents"
    return 0 if all(met.values()) else 1


def verify_store_pass(store: Store, timeout: float, clients: ClientPool) -> Run | None:
    """The pass as verification runs it (secret, version check, overrides), once it exists."""
    try:
        verification = importlib.import_module("datarch.verification")
        secrets = importlib.import_module("datarch.secrets")
    except ImportError:
        return None
    resolver = secrets.LocalSecrets()  # reads DATARCH_SECRET_BENCH_PG_DSN

    async def one() -> None:
        result = await verification.verify_store(store, timeout, resolver, clients)
        assert result.checked and not result.findings, result.message or result.findings[:3]

    return one


async def pg_dump(dsn: str) -> None:
    argv = ["pg_dump", "--schema-only", "--no-owner", "-f", os.devnull, "-d", dsn]
    code = await run_process(argv, dict(os.environ, PGAPPNAME="datarch-bench"))
    assert code == 0, f"pg_dump exited {code}"


async def run_process(argv: list[str], env: dict[str, str] | None = None) -> int:
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )
    return await process.wait()


def cli_command() -> tuple[list[str] | None, str]:
    """`datarch verify -f claim.yaml` as a user runs it, or why it cannot run yet."""
    executable = Path(sys.executable).parent / "datarch"
    if not executable.exists():
        found = shutil.which("datarch")
        if found is None:
            return None, "no datarch console script"
        executable = Path(found)
    argv = [str(executable), "verify", "-f", str(CLAIM), "-o", "json"]
    probe = subprocess.run(argv, capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        reason = (probe.stderr.strip() or probe.stdout.strip()).splitlines()
        return None, f"exit {probe.returncode}: {reason[-1] if reason else 'no output'}"
    return argv, ""


if __name__ == "__main__":
    sys.exit(main())
