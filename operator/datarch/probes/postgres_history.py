"""Migration tools' history tables: where each tool keeps it and how its rows read. Pure.

The probe (probes/postgres.py) finds and reads the table; this module names it and turns
its rows into a PgMigrationHistory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from datarch.observations import PgMigrationHistory


@dataclass(frozen=True, slots=True)
class HistoryTable:
    schema: str | None  # None: the claim's schemas, then public
    table: str
    query: str


HISTORY: dict[str, HistoryTable] = {
    # created_at is the journal entry's `when` (ms); drizzle keeps no tag.
    "drizzle": HistoryTable(
        "drizzle",
        "__drizzle_migrations",
        "SELECT created_at::text, hash FROM __drizzle_migrations ORDER BY created_at, id",
    ),
    "flyway": HistoryTable(
        None,
        "flyway_schema_history",
        "SELECT version, script, success, type FROM flyway_schema_history ORDER BY installed_rank",
    ),
    "golang-migrate": HistoryTable(
        None, "schema_migrations", "SELECT version::text, dirty FROM schema_migrations"
    ),
    "alembic": HistoryTable(
        None, "alembic_version", "SELECT version_num FROM alembic_version ORDER BY version_num"
    ),
    "prisma": HistoryTable(
        None,
        "_prisma_migrations",
        "SELECT migration_name, finished_at IS NOT NULL, rolled_back_at IS NOT NULL "
        "FROM _prisma_migrations ORDER BY started_at, migration_name",
    ),
    "liquibase": HistoryTable(
        None,
        "databasechangelog",
        "SELECT id, author, filename, exectype, tag FROM databasechangelog "
        "ORDER BY dateexecuted, orderexecuted",
    ),
}


def history_of(tool: str, table: str, rows: Sequence[Sequence[Any]]) -> PgMigrationHistory:
    applied: list[str] = []
    aliases: list[tuple[str, ...]] = []
    failed: list[str] = []
    rolled_back: list[str] = []
    dirty = False
    if tool == "drizzle":
        for created_at, hash_ in rows:
            applied.append(created_at)
            aliases.append((hash_,) if hash_ else ())
    elif tool == "flyway":
        versioned = []
        for version, script, success, kind in rows:
            if not success:
                failed.append(version or script)
            elif version is not None and kind != "SCHEMA":
                versioned.append((_flyway_order(version), version, script))
        # Flyway's latest is the highest version, whatever the order (outOfOrder) of applying.
        for _, version, script in sorted(versioned):
            applied.append(version)
            aliases.append((script,))
    elif tool == "golang-migrate":
        for version, is_dirty in rows:
            applied.append(version)
            aliases.append(())
            dirty = dirty or bool(is_dirty)
    elif tool == "alembic":
        for (revision,) in rows:
            applied.append(revision)
            aliases.append(())
    elif tool == "prisma":
        for migration, finished, is_rolled_back in rows:
            if is_rolled_back:
                rolled_back.append(migration)
            elif finished:
                applied.append(migration)
                aliases.append(())
            else:
                failed.append(migration)  # started, never finished: prisma refuses to go on (P3009)
    elif tool == "liquibase":
        for changeset, author, filename, exectype, tag in rows:
            if exectype == "FAILED":
                failed.append(changeset)
            elif exectype in ("EXECUTED", "RERAN", "MARK_RAN"):
                applied.append(changeset)
                aliases.append(tuple(a for a in (f"{filename}::{changeset}::{author}", tag) if a))
    return PgMigrationHistory(
        tool=tool,
        table=table,
        found=True,
        applied=tuple(applied),
        aliases=tuple(aliases),
        failed=tuple(failed),
        rolled_back=tuple(rolled_back),
        dirty=dirty,
    )


def _flyway_order(version: str) -> tuple[int, ...]:
    """Flyway compares versions part by part as numbers; `1_2` is `1.2`, `1.0` is `1`."""
    parts = [int(p) if p.isdigit() else 0 for p in version.replace("_", ".").split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)
