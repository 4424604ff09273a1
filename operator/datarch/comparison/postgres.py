"""PostgreSQL comparison: a claim's postgres block + ObservedPostgres -> findings. Pure.

Paths are store-relative: `database`, `extensions.pgcrypto`, `migrations.latest`,
`public`, `public.users`, `public.users.columns.email.type`,
`public.users.primaryKey`, `public.users.uniques.(email)`,
`public.users.foreignKeys.users_org_id_fkey.onDelete`,
`public.users.indexes.users_org_idx.where`, `public.users.checks.amount_positive`,
`public.events.partitioning.key`.

A field the claim leaves out is not checked. Strict mode reports what is there
but undocumented, only inside the schemas the claim names (and the store's
`scope` globs over table names), never the partitions of a table, the indexes
behind a primary key or unique constraint, or a migration tool's own table.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cached_property, lru_cache

from datarch.claims import (
    PgColumn,
    PgForeignKey,
    PgIndex,
    PgTable,
    PostgresExpectations,
    Store,
    pg_identifier,
)
from datarch.comparison.postgres_keys import (
    KeyPart,
    collations_equal,
    names_equal,
    quote_qualified,
    render_part,
    split_key_part,
)
from datarch.comparison.postgres_migrations import compare_migrations
from datarch.comparison.postgres_normalisation import (
    ColumnTypes,
    Schemas,
    expressions_equal,
    is_identifier,
    is_nextval,
    key_part,
    normalise_expression,
    parse_type,
    quote_identifier,
    split_ordering,
    types_equal,
)
from datarch.comparison.scope import in_scope
from datarch.findings import Finding, FindingKind, Outcome, Severity
from datarch.observations import (
    ObservedPostgres,
    PgColumnObs,
    PgConstraintObs,
    PgIndexObs,
    PgTableObs,
)

CRITICAL, WARNING = Severity.CRITICAL, Severity.WARNING
MISSING, UNEXPECTED, DIFFERENT = FindingKind.MISSING, FindingKind.UNEXPECTED, FindingKind.DIFFERENT

# Default severities, one line each; a claim overrides them per store (severityOverrides).
# Critical: data could be lost, rejected or corrupted, or the documented structure is absent.
SCHEMA_MISSING = CRITICAL
TABLE_MISSING = CRITICAL
COLUMN_MISSING = CRITICAL
COLUMN_TYPE = CRITICAL
COLUMN_NULLABLE = CRITICAL
COLUMN_GENERATED_MISSING = CRITICAL  # a plain column where a computed one is documented
KEY_MISSING = CRITICAL  # primary key, unique constraint, foreign key
KEY_DIFFERENT = CRITICAL  # other columns, another referenced table, other ON DELETE/UPDATE
CHECK_MISSING = CRITICAL
PARTITIONING = CRITICAL
EXTENSION_MISSING = CRITICAL
DATABASE = CRITICAL
INDEX_UNIQUE_MISSING = CRITICAL  # a documented unique index that does not enforce uniqueness
# Warning: the store works, but not as documented (slower, other defaults, docs stale).
COLUMN_DEFAULT = WARNING
COLUMN_IDENTITY = WARNING
EXPRESSION_TEXT = WARNING  # generated/check/predicate text that could not be shown equal
INDEX_MISSING = WARNING
INDEX_DIFFERENT = WARNING
NAME_DIFFERENT = WARNING  # the documented object exists under another name
UNDOCUMENTED = WARNING  # strict mode's unexpected objects

# The history tables every supported tool keeps: bookkeeping, never undocumented structure.
MIGRATION_TABLES = frozenset(
    {
        "__drizzle_migrations",
        "flyway_schema_history",
        "schema_migrations",
        "alembic_version",
        "_prisma_migrations",
        "databasechangelog",
        "databasechangeloglock",
    }
)
# PostgreSQL creates plpgsql in every database (template1 has it): not the team's structure.
BUILT_IN_EXTENSIONS = frozenset({"plpgsql"})
_COUNTED_KINDS = ("table", "partitioned table")
# Bare words a column default may be, as opposed to a string written without quotes.
_DEFAULT_KEYWORDS = frozenset(
    {
        "true",
        "false",
        "null",
        "current_timestamp",
        "current_date",
        "current_time",
        "localtimestamp",
        "localtime",
        "current_user",
        "session_user",
        "current_role",
        "user",
    }
)


def compare_postgres(store: Store, observed: ObservedPostgres) -> list[Outcome]:
    """Every finding between the store's postgres expectations and what the probe observed."""
    expected = store.postgres
    if expected is None:
        return []
    return list(_Comparison(store, expected, observed).findings())


class _Comparison:
    def __init__(self, store: Store, expected: PostgresExpectations, observed: ObservedPostgres):
        self.store = store
        self.expected = expected
        self.observed = observed
        self.tables = {(t.schema, t.name): t for t in observed.tables}

    def findings(self) -> Iterable[Outcome]:
        expected, observed = self.expected, self.observed
        if expected.database is not None and pg_identifier(expected.database) != observed.database:
            # One cause, one finding: nothing documented can be judged in another database.
            yield Finding(
                "database",
                DIFFERENT,
                DATABASE,
                pg_identifier(expected.database),
                observed.database,
                message=f"the DSN leads to database {observed.database}, not the documented "
                f"{pg_identifier(expected.database)}: {self._unchecked()} not checked there",
            )
            return
        documented_extensions = set()
        for name in expected.extensions or ():
            extension = pg_identifier(name)
            documented_extensions.add(extension)
            if extension not in observed.extensions:
                yield Finding(f"extensions.{extension}", MISSING, EXTENSION_MISSING, extension)
        if self.store.strict:
            for extension, version in sorted(observed.extensions.items()):
                if extension not in documented_extensions | BUILT_IN_EXTENSIONS:
                    yield Finding(
                        f"extensions.{extension}",
                        UNEXPECTED,
                        UNDOCUMENTED,
                        observed=f"{extension} {version}",
                    )
        for schema in expected.schemas or ():
            yield from self._schema(pg_identifier(schema.name), schema.tables)
        if expected.migrations is not None:
            yield from compare_migrations(expected.migrations, observed.migrations)

    def _unchecked(self) -> str:
        """What the claim documents beyond the database, counted: `3 schemas, 12 tables`."""
        expected = self.expected
        schemas = expected.schemas or []
        counts = [
            (len(expected.extensions or ()), "extension"),
            (len(schemas), "schema"),
            (sum(len(s.tables or ()) for s in schemas), "table"),
            (1 if expected.migrations else 0, "migration history"),
        ]
        parts = [
            f"{n} {what}{'s' if n > 1 and what != 'migration history' else ''}"
            for n, what in counts
            if n
        ]
        return ", ".join(parts) or "nothing else documented was"

    def _schema(self, schema: str, tables: list[PgTable] | None) -> Iterable[Finding]:
        if schema not in self.observed.schemas:
            yield Finding(
                schema,
                MISSING,
                SCHEMA_MISSING,
                message=_missing_hint("schema", schema, self.observed.schemas),
            )
            return
        documented: set[str] = set()
        for table in tables or ():
            name = pg_identifier(table.name)
            documented.add(name)
            observed = self.tables.get((schema, name))
            if observed is None:
                in_schema = [t.name for t in self.observed.tables if t.schema == schema]
                yield Finding(
                    f"{schema}.{name}",
                    MISSING,
                    TABLE_MISSING,
                    message=_missing_hint("table", name, in_schema),
                )
                continue
            yield from _Table(self, f"{schema}.{name}", table, observed).findings()
        if self.store.strict and tables is not None:
            for observed in self.observed.tables:
                if (
                    observed.schema == schema
                    and observed.name not in documented
                    and observed.kind in _COUNTED_KINDS
                    and observed.partition_of is None
                    and observed.name not in MIGRATION_TABLES
                    and self.table_in_scope(observed)
                ):
                    yield Finding(
                        f"{schema}.{observed.name}",
                        UNEXPECTED,
                        UNDOCUMENTED,
                        observed=observed.kind,
                    )

    def table_in_scope(self, table: PgTableObs) -> bool:
        """Strict mode counts only tables matching the store's scope globs (all when none)."""
        return in_scope(self.store.scope, table.name, f"{table.schema}.{table.name}")


class _Table:
    """One documented table against the observed one."""

    def __init__(self, comparison: _Comparison, path: str, expected: PgTable, observed: PgTableObs):
        self.path = path
        self.expected = expected
        self.observed = observed
        self.schema = observed.schema
        self.strict = comparison.store.strict and comparison.table_in_scope(observed)
        self.constraints = observed.constraints
        self.primary = next((c for c in observed.constraints if c.type == "p"), None)
        # Where the claim's unqualified names are read: the table's schema, public, and the
        # schemas extensions live in, which an application puts on its search_path to use them.
        self.schemas: Schemas = (
            observed.schema,
            "public",
            *comparison.observed.extension_schemas,
        )

    @cached_property
    def column_names(self) -> frozenset[str]:
        return frozenset(c.name for c in self.observed.columns)

    @cached_property
    def column_types(self) -> ColumnTypes:
        """What expressions are normalised against: casts depend on the columns' types."""
        return tuple((c.name, c.type) for c in self.observed.columns)

    def findings(self) -> Iterable[Finding]:
        expected = self.expected
        if expected.columns is not None:
            yield from self._columns(expected.columns)
        if expected.primary_key is not None:
            yield from self._primary_key(expected.primary_key)
        for columns in expected.uniques or ():
            yield from self._unique(columns)
        if expected.foreign_keys is not None:
            yield from self._foreign_keys(expected.foreign_keys)
        if expected.indexes is not None:
            yield from self._indexes(expected.indexes)
        for check in expected.checks or ():
            yield from self._check(pg_identifier(check.name), check.expression)
        if expected.partitioning is not None:
            yield from self._partitioning(expected.partitioning.strategy, expected.partitioning.key)

    # --- columns ---

    def _columns(self, columns: list[PgColumn]) -> Iterable[Finding]:
        observed = {c.name: c for c in self.observed.columns}
        documented = set()
        for column in columns:
            name = pg_identifier(column.name)
            documented.add(name)
            found = observed.get(name)
            if found is None:
                yield Finding(
                    f"{self.path}.columns.{name}",
                    MISSING,
                    COLUMN_MISSING,
                    column.type,
                    message=_missing_hint("column", name, observed),
                )
            else:
                yield from self._column(name, column, found)
        if self.strict:
            for found in self.observed.columns:
                if found.name not in documented:
                    yield Finding(
                        f"{self.path}.columns.{found.name}",
                        UNEXPECTED,
                        UNDOCUMENTED,
                        observed=found.type,
                    )

    def _column(self, name: str, expected: PgColumn, observed: PgColumnObs) -> Iterable[Finding]:
        serial = False
        if expected.type is not None:
            serial = parse_type(expected.type).serial
            if not types_equal(expected.type, observed.type):
                # Both in format_type's spelling: `character varying(320)`, not `varchar(320)`.
                yield Finding(
                    f"{self.path}.columns.{name}.type",
                    DIFFERENT,
                    COLUMN_TYPE,
                    str(parse_type(expected.type)),
                    observed.type,
                )
        if expected.nullable is not None and expected.nullable != observed.nullable:
            yield Finding(
                f"{self.path}.columns.{name}.nullable",
                DIFFERENT,
                COLUMN_NULLABLE,
                _bool(expected.nullable),
                _bool(observed.nullable),
            )
        if serial:
            # serial's default names a generated sequence; only its being one is documented.
            if not is_nextval(observed.default):
                yield Finding(
                    f"{self.path}.columns.{name}.default",
                    DIFFERENT,
                    COLUMN_DEFAULT,
                    "nextval(...) (serial)",
                    observed.default or _identity_text(observed),
                )
        elif expected.default is not None and not _defaults_equal(
            expected.default, observed.default, self.schemas
        ):
            yield Finding(
                f"{self.path}.columns.{name}.default",
                DIFFERENT,
                COLUMN_DEFAULT,
                expected.default,
                observed.default,
            )
        if expected.identity is not None and expected.identity != observed.identity:
            yield Finding(
                f"{self.path}.columns.{name}.identity",
                DIFFERENT,
                COLUMN_IDENTITY,
                expected.identity,
                observed.identity,
            )
        if expected.generated is not None:
            if observed.generated is None:
                yield Finding(
                    f"{self.path}.columns.{name}.generated",
                    MISSING,
                    COLUMN_GENERATED_MISSING,
                    expected.generated,
                )
            elif not expressions_equal(
                expected.generated, observed.generated, self.column_types, self.schemas
            ):
                yield Finding(
                    f"{self.path}.columns.{name}.generated",
                    DIFFERENT,
                    EXPRESSION_TEXT,
                    expected.generated,
                    observed.generated,
                )

    # --- keys ---

    def _primary_key(self, columns: list[str]) -> Iterable[Finding]:
        expected = _names(columns)
        path = f"{self.path}.primaryKey"
        if self.primary is None:
            yield Finding(path, MISSING, KEY_MISSING, _names_list(expected))
        elif self.primary.columns != expected:
            yield Finding(
                path,
                DIFFERENT,
                KEY_DIFFERENT,
                _names_list(expected),
                _names_list(self.primary.columns),
            )

    def _unique(self, columns: list[str]) -> Iterable[Finding]:
        """Any unique constraint, primary key or plain unique index on the same columns will do."""
        expected = frozenset(_names(columns))
        for constraint in self.constraints:
            if constraint.type in ("p", "u") and frozenset(constraint.columns) == expected:
                return
        for index in self.observed.indexes:
            if _enforces_unique(index) and frozenset(index.columns) == expected:
                return
        yield Finding(
            f"{self.path}.uniques.{_list(_names(columns))}",
            MISSING,
            KEY_MISSING,
            _names_list(_names(columns)),
        )

    def _foreign_keys(self, keys: list[PgForeignKey]) -> Iterable[Finding]:
        observed = [c for c in self.constraints if c.type == "f"]
        matched: set[str] = set()
        for key in keys:
            columns = _names(key.columns)
            name = pg_identifier(key.name) if key.name else None
            path = f"{self.path}.foreignKeys.{name or _list(columns)}"
            found = next((c for c in observed if c.name == name), None) if name else None
            by_columns = next(
                (c for c in observed if c.columns == columns and c.name not in matched), None
            )
            if found is None and by_columns is not None:
                found = by_columns
                if name is not None:
                    yield Finding(f"{path}.name", DIFFERENT, NAME_DIFFERENT, name, found.name)
            if found is None:
                yield Finding(path, MISSING, KEY_MISSING, _reference(self.schema, key))
                continue
            matched.add(found.name)
            yield from self._foreign_key(path, key, columns, found)
        if self.strict:
            for constraint in observed:
                if constraint.name not in matched:
                    yield Finding(
                        f"{self.path}.foreignKeys.{constraint.name}",
                        UNEXPECTED,
                        UNDOCUMENTED,
                        observed=_observed_reference(constraint),
                    )

    def _foreign_key(
        self, path: str, key: PgForeignKey, columns: tuple[str, ...], found: PgConstraintObs
    ) -> Iterable[Finding]:
        if found.columns != columns:
            yield Finding(
                f"{path}.columns",
                DIFFERENT,
                KEY_DIFFERENT,
                _names_list(columns),
                _names_list(found.columns),
            )
        reference = key.references
        schema = pg_identifier(reference.schema_) if reference.schema_ else self.schema
        expected = (schema, pg_identifier(reference.table), _names(reference.columns))
        if expected != (found.ref_schema, found.ref_table, found.ref_columns):
            yield Finding(
                f"{path}.references",
                DIFFERENT,
                KEY_DIFFERENT,
                f"{quote_qualified(f'{schema}.{expected[1]}')}{_names_list(expected[2])}",
                f"{_qualified(found.ref_schema, found.ref_table)}{_names_list(found.ref_columns)}",
            )
        if key.on_delete is not None and key.on_delete != found.on_delete:
            yield Finding(
                f"{path}.onDelete", DIFFERENT, KEY_DIFFERENT, key.on_delete, found.on_delete
            )
        if key.on_update is not None and key.on_update != found.on_update:
            yield Finding(
                f"{path}.onUpdate", DIFFERENT, KEY_DIFFERENT, key.on_update, found.on_update
            )

    # --- indexes ---

    def _indexes(self, indexes: list[PgIndex]) -> Iterable[Finding]:
        observed = self.observed.indexes
        matched: set[str] = set()
        for index in indexes:
            columns = self._expected_key(index.columns)
            name = pg_identifier(index.name) if index.name else None
            path = f"{self.path}.indexes.{name or _list(index.columns)}"
            found = next((i for i in observed if i.name == name), None) if name else None
            if found is None:
                candidates = [
                    i
                    for i in observed
                    if self._observed_key(i.columns) == columns and i.name not in matched
                ]
                # Of the indexes on these columns, the one that is all the claim says, if any.
                found = next(
                    (i for i in candidates if not any(self._index(path, index, columns, i))),
                    candidates[0] if candidates else None,
                )
                if found is not None and name is not None:
                    yield Finding(f"{path}.name", DIFFERENT, NAME_DIFFERENT, name, found.name)
            if found is None:
                parts = [split_key_part(part) for part in index.columns]
                yield Finding(
                    path,
                    MISSING,
                    INDEX_MISSING,
                    _list(render_part(p.body, p.collation, p.opclass) for p in parts),
                )
                continue
            matched.add(found.name)
            yield from self._index(path, index, columns, found)
        if self.strict:
            behind_constraints = {c.index for c in self.constraints if c.index}
            for found in observed:
                if (
                    found.name not in matched
                    and not found.primary
                    and found.name not in behind_constraints
                    and not self._backs_documented_unique(found)
                ):
                    yield Finding(
                        f"{self.path}.indexes.{found.name}",
                        UNEXPECTED,
                        UNDOCUMENTED,
                        observed=_list(self._render_observed(found)),
                    )

    def _index(
        self, path: str, expected: PgIndex, columns: tuple[str, ...], found: PgIndexObs
    ) -> Iterable[Finding]:
        parts = [split_key_part(part) for part in expected.columns]
        if self._observed_key(found.columns) != columns or not self._options_equal(parts, found):
            yield Finding(
                f"{path}.columns",
                DIFFERENT,
                INDEX_DIFFERENT,
                _list(render_part(p.body, p.collation, p.opclass) for p in parts),
                _list(self._render_observed(found)),
            )
        if expected.unique is not None and expected.unique != found.unique:
            severity = INDEX_UNIQUE_MISSING if expected.unique else INDEX_DIFFERENT
            yield Finding(
                f"{path}.unique", DIFFERENT, severity, _bool(expected.unique), _bool(found.unique)
            )
        if expected.method is not None and expected.method.lower() != found.method:
            yield Finding(
                f"{path}.method", DIFFERENT, INDEX_DIFFERENT, expected.method, found.method
            )
        if expected.where is not None:
            if found.predicate is None:
                yield Finding(f"{path}.where", DIFFERENT, INDEX_DIFFERENT, expected.where, None)
            elif not expressions_equal(
                expected.where, found.predicate, self.column_types, self.schemas
            ):
                yield Finding(
                    f"{path}.where", DIFFERENT, EXPRESSION_TEXT, expected.where, found.predicate
                )

    def _options_equal(self, parts: Sequence[KeyPart], found: PgIndexObs) -> bool:
        """The collations and operator classes the claim names, against the observed ones."""
        for position, part in enumerate(parts):
            if part.opclass is not None and (
                position >= len(found.opclasses)
                or not names_equal(part.opclass, found.opclasses[position], self.schemas)
            ):
                return False
            if part.collation is not None and (
                position >= len(found.collations)
                or not collations_equal(part.collation, found.collations[position], self.schemas)
            ):
                return False
        return True

    def _render_observed(self, found: PgIndexObs) -> list[str]:
        """The observed key as pg_get_indexdef prints it, non-default operator classes shown."""
        rendered = []
        for position, part in enumerate(found.columns):
            body, ordering = (
                (quote_identifier(part), "") if part in self.column_names else split_ordering(part)
            )
            opclass = None
            if position < len(found.opclasses) and not found.default_opclasses[position]:
                opclass = found.opclasses[position]
            collation = found.collations[position] if position < len(found.collations) else None
            text = " ".join(
                x
                for x in (
                    body,
                    f"COLLATE {collation}" if collation else "",
                    opclass or "",
                    ordering.upper(),
                )
                if x
            )
            rendered.append(text)
        return rendered

    def _expected_key(self, parts: Sequence[str]) -> tuple[str, ...]:
        """A claim's index or partition key: column names folded, expressions normalised."""
        return tuple(
            key_part(split_key_part(part).body, self.column_types, self.schemas) for part in parts
        )

    def _observed_key(self, parts: Sequence[str]) -> tuple[str, ...]:
        """The probe's key: a column's raw name, or an expression's text to normalise."""
        return tuple(
            part if part in self.column_names else key_part(part, self.column_types, self.schemas)
            for part in parts
        )

    def _backs_documented_unique(self, index: PgIndexObs) -> bool:
        """A unique index standing in for a documented unique constraint (as prisma makes them)."""
        return _enforces_unique(index) and any(
            frozenset(_names(u)) == frozenset(index.columns) for u in self.expected.uniques or ()
        )

    # --- checks and partitioning ---

    def _check(self, name: str, expression: str | None) -> Iterable[Finding]:
        path = f"{self.path}.checks.{name}"
        found = next((c for c in self.constraints if c.type == "c" and c.name == name), None)
        if found is None:
            yield Finding(path, MISSING, CHECK_MISSING, expression)
        elif expression is not None and not expressions_equal(
            expression, found.definition or "", self.column_types, self.schemas
        ):
            yield Finding(
                f"{path}.expression", DIFFERENT, EXPRESSION_TEXT, expression, found.definition
            )

    def _partitioning(self, strategy: str, key: list[str]) -> Iterable[Finding]:
        path = f"{self.path}.partitioning"
        observed = self.observed
        if observed.partition_strategy is None:
            yield Finding(
                path, DIFFERENT, PARTITIONING, f"{strategy} ({', '.join(key)})", "not partitioned"
            )
            return
        if strategy != observed.partition_strategy:
            yield Finding(
                f"{path}.strategy", DIFFERENT, PARTITIONING, strategy, observed.partition_strategy
            )
        expected = [split_key_part(part) for part in key]
        found = [split_key_part(part) for part in observed.partition_key]
        bodies_equal = self._expected_key(key) == tuple(
            key_part(part.body, self.column_types, self.schemas) for part in found
        )
        if not bodies_equal or not all(
            (want.opclass is None or (got.opclass and self._same(want.opclass, got.opclass)))
            and (
                want.collation is None
                or collations_equal(want.collation, got.collation, self.schemas)
            )
            for want, got in zip(expected, found, strict=False)
        ):
            yield Finding(
                f"{path}.key",
                DIFFERENT,
                PARTITIONING,
                _list(render_part(p.body, p.collation, p.opclass) for p in expected),
                _list(observed.partition_key),
            )

    def _same(self, expected: str, observed: str) -> bool:
        return names_equal(expected, observed, self.schemas)


@lru_cache(maxsize=65536)
def _defaults_equal(expected: str, observed: str | None, schemas: Schemas) -> bool:
    if observed is None:
        return normalise_expression(expected) == "null"
    text = expected.strip()
    # `default: active` can only mean the string: a bare name is no valid default.
    if is_identifier(text) and not text.startswith('"') and text.lower() not in _DEFAULT_KEYWORDS:
        text = "'" + text + "'"
    return expressions_equal(text, observed, (), schemas)


def _identity_text(column: PgColumnObs) -> str | None:
    return f"identity ({column.identity})" if column.identity else None


def _enforces_unique(index: PgIndexObs) -> bool:
    return index.unique and index.predicate is None


# --- text ---------------------------------------------------------------------


def _names(columns: Sequence[str]) -> tuple[str, ...]:
    return tuple(pg_identifier(c) for c in columns)


def _list(items: Iterable[str]) -> str:
    return "(" + ",".join(items) + ")"


def _qualified(schema: str | None, name: str | None) -> str:
    return f"{quote_identifier(schema or '')}.{quote_identifier(name or '')}"


def _names_list(names: Iterable[str]) -> str:
    """Raw column names as SQL writes them: `(id,"orgId")`."""
    return _list(quote_identifier(name) for name in names)


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _reference(schema: str, key: PgForeignKey) -> str:
    reference = key.references
    target = pg_identifier(reference.schema_) if reference.schema_ else schema
    return (
        f"{_names_list(_names(key.columns))} -> "
        f"{_qualified(target, pg_identifier(reference.table))}"
        f"{_names_list(_names(reference.columns))}"
    )


def _observed_reference(constraint: PgConstraintObs) -> str:
    return (
        f"{_names_list(constraint.columns)} -> "
        f"{_qualified(constraint.ref_schema, constraint.ref_table)}"
        f"{_names_list(constraint.ref_columns)}"
    )


def _missing_hint(what: str, name: str, present: Iterable[str]) -> str:
    """Point at an object that differs only by case: the claim probably needs quotes."""
    for candidate in present:
        if candidate != name and candidate.lower() == name.lower():
            return (
                f'documented {what} {name} is missing; "{candidate}" exists, and a name '
                f"keeps its case only in double quotes"
            )
    return ""
