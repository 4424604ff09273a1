"""PostgreSQL migration history: a claim's `migrations` block against the history read. Pure.

What `latest` names, per tool, is documented in observations.PgMigrationHistory.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from datarch.claims import PgMigrations
from datarch.findings import Finding, FindingKind, Outcome, Severity, Unchecked
from datarch.observations import PgMigrationHistory

MISSING, DIFFERENT = FindingKind.MISSING, FindingKind.DIFFERENT
# Default severities, one line each; a claim overrides them per store (severityOverrides).
MIGRATIONS_MISSING = Severity.CRITICAL  # the documented tool's history table is not there
MIGRATIONS_BROKEN = Severity.CRITICAL  # failed or dirty: the next deploy's migrations will not run
# Behind the documented latest: the code deployed against the docs expects objects the
# database lacks, the same harm as a missing table, so critical like one.
MIGRATIONS_BEHIND = Severity.CRITICAL
# Newer migrations than the documented latest: the docs lag behind the database.
MIGRATIONS_AHEAD = Severity.WARNING


def compare_migrations(
    expected: PgMigrations, observed: PgMigrationHistory | None
) -> Iterable[Outcome]:
    """What `latest` names, per tool, is documented in observations.PgMigrationHistory."""
    if observed is not None and observed.unreadable is not None:
        yield Unchecked("migrations", observed.unreadable.reason, observed.unreadable.grant)
        return
    if observed is None or not observed.found:
        table = observed.table if observed else expected.tool
        yield Finding(
            "migrations",
            MISSING,
            MIGRATIONS_MISSING,
            f"{expected.tool} history",
            message=f"no {expected.tool} history table (looked for {table})",
        )
        return
    if observed.failed:
        yield Finding(
            "migrations.failed", DIFFERENT, MIGRATIONS_BROKEN, "none", ", ".join(observed.failed)
        )
    if observed.dirty:
        yield Finding(
            "migrations.dirty",
            DIFFERENT,
            MIGRATIONS_BROKEN,
            "false",
            f"true at version {observed.applied[-1] if observed.applied else '?'}",
        )
    if expected.latest is not None:
        yield from _latest(expected.tool, expected.latest, observed)


def _latest(tool: str, latest: str, observed: PgMigrationHistory) -> Iterable[Finding]:
    newest = observed.applied[-1] if observed.applied else None
    if tool == "alembic":
        # alembic keeps only the current head(s), unordered: documented latest is one, or not.
        if latest not in observed.applied:
            yield Finding(
                "migrations.latest",
                DIFFERENT,
                MIGRATIONS_BEHIND,
                latest,
                ", ".join(observed.applied) or None,
                message=f"{latest} is not the current alembic head "
                f"({', '.join(observed.applied) or 'none'})",
            )
        return
    position = _position(tool, latest, observed)
    if position is None:
        yield Finding(
            "migrations.latest",
            MISSING,
            MIGRATIONS_BEHIND,
            latest,
            newest,
            message=f"{latest} is not applied (latest applied: {newest or 'none'})",
        )
    elif position < len(observed.applied) - 1:
        yield Finding(
            "migrations.latest",
            DIFFERENT,
            MIGRATIONS_AHEAD,
            latest,
            newest,
            message=f"migrations after {latest} are applied (latest applied: {newest})",
        )


def _position(tool: str, latest: str, observed: PgMigrationHistory) -> int | None:
    """Where the documented latest sits in the applied history, or None when not applied."""
    applied = observed.applied
    if tool == "golang-migrate":
        # One row, the current version; file names start with it (000006_add_x).
        wanted, current = _leading_number(latest), _leading_number(applied[0]) if applied else None
        if wanted is None or current is None or current < wanted:
            return None
        return 0 if current == wanted else -1
    if tool == "drizzle" and len(latest) > 5 and latest[:4].isdigit() and latest[4] == "_":
        # A drizzle tag (0006_x) is its journal index; rows are one per applied entry, in order.
        index = int(latest[:4])
        return index if index < len(applied) else None
    if tool == "flyway":
        wanted_version = _flyway_version(latest)
        for position, version in enumerate(applied):
            if _flyway_version(version) == wanted_version:
                return position
    for position, (identifier, aliases) in enumerate(zip(applied, _aliases(observed), strict=True)):
        if latest == identifier or latest in aliases:
            return position
    return None


def _aliases(observed: PgMigrationHistory) -> Sequence[tuple[str, ...]]:
    return (
        observed.aliases
        if len(observed.aliases) == len(observed.applied)
        else [()] * len(observed.applied)
    )


def _leading_number(text: str) -> int | None:
    digits = ""
    for char in text:
        if not char.isdigit():
            break
        digits += char
    return int(digits) if digits else None


def _flyway_version(text: str) -> tuple[int, ...] | None:
    """`2.1`, `2_1`, `V2_1__add.sql` -> (2, 1); flyway compares parts as numbers, 1.0 == 1."""
    if text[:1] in "Vv" and text[1:2].isdigit():
        text = text[1:].split("__", 1)[0]
    parts = text.replace("_", ".").split(".")
    if not all(p.isdigit() for p in parts):
        return None
    numbers = [int(p) for p in parts]
    while len(numbers) > 1 and numbers[-1] == 0:
        numbers.pop()
    return tuple(numbers)
