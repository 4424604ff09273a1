"""PostgreSQL probe: reads one database's catalog, read-only, in a constant number of queries.

The only module that imports psycopg. It observes and never judges: every fact
keeps PostgreSQL's own spelling (format_type, pg_get_expr) and comparison
decides what is equal. It runs in one READ ONLY, REPEATABLE READ transaction
with a statement timeout, passes every name from the claim as a parameter, and
issues the same few set-based pg_catalog queries whatever the number of tables:
no per-table query and no information_schema.

Formatting is the catalog's costly part, so it is asked for only where it is
needed: type names once per distinct (type, typmod), expressions only for
defaults, expression indexes, partial indexes, checks and partition keys.
Attribute numbers are turned into column names here, from the columns already
read, instead of by joins.
"""

from __future__ import annotations

import asyncio
import gc
import math
import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow

from datarch.claims import PgMigrations, pg_identifier
from datarch.errors import AccessDenied, StoreError, StoreTimeout, StoreUnreachable
from datarch.observations import (
    ObservedPostgres,
    PgColumnObs,
    PgConstraintObs,
    PgIndexObs,
    PgMigrationHistory,
    PgTableObs,
    Unreadable,
)
from datarch.probes.base import ClientPool, Target
from datarch.probes.postgres_history import HISTORY, history_of

# Shown in pg_stat_activity and the server log, unless the DSN names its own.
APPLICATION_NAME = "datarch"

Connection = psycopg.AsyncConnection[TupleRow]

# --- the catalog queries --------------------------------------------------------
# %(schemas)s is the claim's schema names, or NULL for every non-system schema.

_IN_SCHEMAS = """(
    n.nspname = ANY(%(schemas)s::text[])
    OR (%(schemas)s::text[] IS NULL AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema')
)"""

_RELKINDS = "('r', 'p', 'v', 'm', 'f')"

ABOUT = """
SELECT current_database(),
       current_setting('server_version'),
       current_setting('server_version_num')::int,
       ARRAY(SELECT nspname::text FROM pg_namespace
             WHERE nspname !~ '^pg_' AND nspname <> 'information_schema' ORDER BY 1),
       ARRAY(SELECT extname::text FROM pg_extension ORDER BY 1),
       ARRAY(SELECT extversion FROM pg_extension ORDER BY extname),
       ARRAY(SELECT DISTINCT n.nspname::text FROM pg_extension e
             JOIN pg_namespace n ON n.oid = e.extnamespace ORDER BY 1),
       ARRAY(SELECT oid FROM pg_opclass ORDER BY oid),
       ARRAY(SELECT CASE WHEN n.nspname = 'pg_catalog' THEN quote_ident(o.opcname)
                         ELSE quote_ident(n.nspname) || '.' || quote_ident(o.opcname) END
             FROM pg_opclass o JOIN pg_namespace n ON n.oid = o.opcnamespace ORDER BY o.oid),
       ARRAY(SELECT opcdefault FROM pg_opclass ORDER BY oid),
       ARRAY(SELECT oid FROM pg_collation
             WHERE oid IN (SELECT unnest(indcollation::oid[]) FROM pg_index) ORDER BY oid),
       ARRAY(SELECT CASE WHEN n.nspname = 'pg_catalog' THEN quote_ident(c.collname)
                         ELSE quote_ident(n.nspname) || '.' || quote_ident(c.collname) END
             FROM pg_collation c JOIN pg_namespace n ON n.oid = c.collnamespace
             WHERE c.oid IN (SELECT unnest(indcollation::oid[]) FROM pg_index) ORDER BY c.oid)
""".strip()

RELATIONS = f"""
SELECT c.oid, n.nspname::text, c.relname::text, c.relkind::text,
       pn.nspname::text, p.relname::text,
       pt.partstrat::text,
       CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_inherits i ON c.relispartition AND i.inhrelid = c.oid
LEFT JOIN pg_class p ON p.oid = i.inhparent
LEFT JOIN pg_namespace pn ON pn.oid = p.relnamespace
LEFT JOIN pg_partitioned_table pt ON pt.partrelid = c.oid
WHERE c.relkind IN {_RELKINDS} AND {_IN_SCHEMAS}
""".strip()

# Types come back as (oid, typmod) and TYPES formats each distinct pair once;
# defaults come from DEFAULTS: both cost less apart than inline (measured with
# bench/postgres_verify.py: 20k columns of 17 distinct types, 9k defaults).
COLUMNS = f"""
SELECT a.attrelid, a.attnum, a.attname::text, a.atttypid, a.atttypmod, a.attnotnull,
       a.attidentity::text, a.attgenerated::text, a.attcollation
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN {_RELKINDS} AND {_IN_SCHEMAS}
ORDER BY a.attrelid, a.attnum
""".strip()

TYPES = """
SELECT t.typid, t.typmod, format_type(t.typid, t.typmod)
FROM unnest(%(typids)s::oid[], %(typmods)s::int[]) AS t(typid, typmod)
""".strip()

# A default cannot name a column, so it is deparsed without its table (relid 0),
# which spares looking the table up for each one: 4x cheaper (bench: 40 -> 11 ms
# for 9k defaults), same text. A generated column's expression names columns.
DEFAULTS = f"""
SELECT d.adrelid, d.adnum,
       pg_get_expr(d.adbin, CASE WHEN a.attgenerated = '' THEN 0 ELSE d.adrelid END, true)
FROM pg_attrdef d
JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
JOIN pg_class c ON c.oid = d.adrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN {_RELKINDS} AND {_IN_SCHEMAS}
""".strip()

# Referenced columns are named here from the columns already read, except when
# the referenced table lies outside the schemas read: then by a subquery. A
# foreign key that references a partitioned table is cloned, on the referencing
# table, once per partition; those clones (whose parent constraint sits on the
# same table) are left out. A check's expression is pg_get_expr of conbin
# (cheaper than pg_get_constraintdef, which only exclusion constraints need).
CONSTRAINTS = f"""
SELECT co.conrelid, co.conname::text, co.contype::text, co.conkey::int[],
       co.confrelid, co.confkey::int[], rn.nspname::text, r.relname::text,
       CASE WHEN co.contype = 'f' AND NOT {_IN_SCHEMAS.replace("n.nspname", "rn.nspname")}
            THEN ARRAY(
                SELECT ra.attname::text
                FROM unnest(co.confkey) WITH ORDINALITY AS k(attnum, position)
                JOIN pg_attribute ra ON ra.attrelid = co.confrelid AND ra.attnum = k.attnum
                ORDER BY k.position) END,
       co.confdeltype::text, co.confupdtype::text,
       CASE co.contype WHEN 'c' THEN pg_get_expr(co.conbin, co.conrelid, true)
                       WHEN 'x' THEN pg_get_constraintdef(co.oid, true) END,
       ix.relname::text
FROM pg_constraint co
JOIN pg_class c ON c.oid = co.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_class r ON r.oid = co.confrelid
LEFT JOIN pg_namespace rn ON rn.oid = r.relnamespace
LEFT JOIN pg_class ix ON ix.oid = co.conindid AND co.contype IN ('p', 'u', 'x')
WHERE co.contype IN ('p', 'u', 'f', 'c', 'x') AND {_IN_SCHEMAS}
  AND (co.conparentid = 0 OR NOT EXISTS (
      SELECT FROM pg_constraint pc WHERE pc.oid = co.conparentid AND pc.conrelid = co.conrelid))
""".strip()

# Key columns only (INCLUDE columns are not part of what an index orders by), each
# with its indoption bits (DESC, NULLS FIRST), operator class and collation, which
# pg_get_indexdef of one column leaves out; ABOUT names the operator classes and collations.
INDEXES = f"""
SELECT x.indrelid, i.relname::text, (x.indkey::int2[])[0:x.indnkeyatts - 1],
       x.indisunique, x.indisprimary, am.amname::text,
       (x.indclass::oid[])[0:x.indnkeyatts - 1], (x.indcollation::oid[])[0:x.indnkeyatts - 1],
       CASE WHEN x.indoption::int2[] && '{{1,2,3}}'::int2[]
            THEN (x.indoption::int2[])[0:x.indnkeyatts - 1] END,
       CASE WHEN x.indexprs IS NOT NULL THEN ARRAY(
           SELECT pg_get_indexdef(x.indexrelid, k, true)
           FROM generate_series(1, x.indnkeyatts) AS k ORDER BY k) END,
       CASE WHEN x.indpred IS NOT NULL THEN pg_get_expr(x.indpred, x.indrelid, true) END
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_am am ON am.oid = i.relam
JOIN pg_class c ON c.oid = x.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN {_RELKINDS} AND {_IN_SCHEMAS}
""".strip()

# The history table is found where the tool writes it, not through the reader's
# search_path (the application that migrated had its own): in the schema the claim
# gives, else the tool's fixed schema, else the schemas the claim documents and
# public, in that order. The catalog names a table in a schema the role may not
# use (USAGE) too: not readable is not missing.
HISTORY_TABLE = """
SELECT n.nspname::text, has_schema_privilege(n.oid, 'USAGE'),
       has_table_privilege(c.oid, 'SELECT'), current_user::text
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname = %(table)s::text AND n.nspname = ANY(%(schemas)s::text[])
  AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
""".strip()

PIN_SESSION = (
    "SELECT set_config('statement_timeout', %(timeout)s, true), "
    "set_config('search_path', '', true), "
    # Constants in defaults and checks are printed through these: pinned as pg_dump pins
    # them (and the time zone to UTC), so a reader's own settings never change a text.
    "set_config('DateStyle', 'ISO, MDY', true), set_config('IntervalStyle', 'postgres', true), "
    "set_config('TimeZone', 'UTC', true), set_config('extra_float_digits', '3', true), "
    "set_config('bytea_output', 'hex', true), "
    "set_config('standard_conforming_strings', 'on', true)"
)

# The history is then read with the table's schema as the only search_path
# entry, set as a parameter, so no claim-given name is ever part of SQL text.
SEARCH_PATH = "SELECT set_config('search_path', format('%%I', %(schema)s::text), true)"


_RELKIND_NAMES = {
    "r": "table",
    "p": "partitioned table",
    "v": "view",
    "m": "materialized view",
    "f": "foreign table",
}
_PARTITION_STRATEGIES = {"r": "range", "l": "list", "h": "hash"}
_ACTIONS = {
    "a": "no action",
    "r": "restrict",
    "c": "cascade",
    "n": "set null",
    "d": "set default",
}
_IDENTITY = {"a": "always", "d": "by default"}

# Connection failures that mean "the server answered and said no".
_DENIED = (
    "password authentication failed",
    "no pg_hba.conf entry",
    "permission denied",
    'role "',  # role "x" does not exist
    "not permitted to log in",
)


# --- entry point ----------------------------------------------------------------


async def observe(target: Target, clients: ClientPool | None = None) -> ObservedPostgres:
    """Observe the database the target's DSN lands in, within `target.timeout` seconds.

    With `clients`, the connection is kept for the next pass (keyed by DSN) and
    one that broke while idle is replaced once; without, it is closed here.
    """
    dsn = _dsn(target)
    where = _describe(dsn)
    try:
        async with asyncio.timeout(target.timeout):
            if clients is None:
                connection = await _connect(dsn, target.timeout, where)
                try:
                    return await _Reader(connection, target, where).read()
                finally:
                    await connection.close()
            return await _observe_pooled(target, clients, dsn, where)
    except TimeoutError as error:
        raise StoreTimeout(
            f"while reading the catalog of {where}: no answer within {target.timeout:g}s"
        ) from error


async def _observe_pooled(
    target: Target, clients: ClientPool, dsn: str, where: str
) -> ObservedPostgres:
    for attempt in (1, 2):
        opened_before = clients.opened
        session = await clients.get(
            target.pool_key, lambda: _open_session(dsn, target.timeout, where), _close_session
        )
        reused = clients.opened == opened_before
        try:
            async with session.lock:
                if session.connection.broken or session.connection.closed:
                    raise StoreUnreachable(f"while reusing the connection to {where}: it closed")
                return await _Reader(session.connection, target, where).read()
        except StoreTimeout:
            await clients.discard(target.pool_key)
            raise
        except StoreUnreachable:
            await clients.discard(target.pool_key)
            if attempt == 2 or not reused:
                raise
            # A kept connection may have died while idle (server restart): retry once, fresh.
        except BaseException:
            # A cancelled or failed pass leaves the transaction state unknown.
            await clients.discard(target.pool_key)
            raise
    raise AssertionError("unreachable")  # pragma: no cover


@dataclass
class _Session:
    """A kept connection and the lock that keeps passes from sharing its transaction."""

    connection: Connection
    lock: asyncio.Lock


async def _open_session(dsn: str, timeout: float, where: str) -> _Session:
    return _Session(await _connect(dsn, timeout, where), asyncio.Lock())


async def _close_session(session: _Session) -> None:
    await session.connection.close()


def _dsn(target: Target) -> str:
    if target.secret is not None:
        return target.secret.get_secret_value()
    if target.url:
        return target.url
    raise StoreUnreachable(
        f"while connecting to store {target.store.name}: no DSN (secretRef key dsn) was given"
    )


def _describe(dsn: str) -> str:
    """`PostgreSQL at host:port/db`, never with a credential."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.Error as error:
        # The parser's message may quote the DSN, password included: leave it out.
        raise StoreUnreachable(
            "while reading the DSN: it is not a PostgreSQL connection string"
        ) from error
    host = str(params.get("host") or params.get("hostaddr") or "localhost")
    port = str(params.get("port") or "5432")
    database = str(params.get("dbname") or params.get("user") or "")
    return f"PostgreSQL at {host}:{port}/{database}"


async def _connect(dsn: str, timeout: float, where: str) -> Connection:
    try:
        connection = await psycopg.AsyncConnection.connect(
            dsn,
            # libpq counts whole seconds, at least 2; the caller's asyncio.timeout is exact.
            connect_timeout=max(2, math.ceil(timeout)),
            fallback_application_name=APPLICATION_NAME,
        )
    except psycopg.errors.ConnectionTimeout as error:
        raise StoreTimeout(f"while connecting to {where}: no answer within {timeout:g}s") from error
    except psycopg.Error as error:
        raise _connect_error(error, where) from error
    await connection.set_read_only(True)
    await connection.set_isolation_level(psycopg.IsolationLevel.REPEATABLE_READ)
    return connection


def _connect_error(error: psycopg.Error, where: str) -> StoreError:
    cause = _cause(error)
    if any(marker in cause for marker in _DENIED):
        return AccessDenied(f"while connecting to {where}: {cause}")
    return StoreUnreachable(f"while connecting to {where}: {cause}")


def _cause(error: psycopg.Error) -> str:
    """The server's or libpq's own sentence, without psycopg's "connection failed:" framing."""
    text = str(error).strip().removeprefix("connection failed: ")
    if "FATAL:" in text:
        text = text.split("FATAL:", 1)[1]
    elif " failed: " in text:
        text = text.rsplit(" failed: ", 1)[1]
    lines = text.strip().splitlines()  # the first line says it; libpq's hints follow
    return " ".join(lines[0].split()) if lines else "no reason given"


def _query_error(error: psycopg.Error, doing: str, where: str, timeout: float) -> StoreError:
    if isinstance(error, psycopg.errors.QueryCanceled):
        return StoreTimeout(
            f"while {doing} on {where}: cancelled by the statement timeout "
            f"({_statement_timeout_ms(timeout)} ms)"
        )
    if isinstance(error, psycopg.errors.InsufficientPrivilege):
        return AccessDenied(f"while {doing} on {where}: {_cause(error)}")
    if isinstance(error, psycopg.OperationalError):
        return StoreUnreachable(f"while {doing} on {where}: {_cause(error)}")
    return StoreError(f"while {doing} on {where}: {_cause(error)}")


# --- one pass -------------------------------------------------------------------


def _statement_timeout_ms(timeout: float) -> int:
    """Below the pass's timeout, so the server cancels a slow query (and says so) first."""
    return max(1, int(timeout * 900))


class _Reader:
    """Reads the catalog in one transaction and assembles the observation."""

    def __init__(self, connection: Connection, target: Target, where: str) -> None:
        self.connection = connection
        self.target = target
        self.where = where
        self.queries = 0
        self.doing = "starting a read-only transaction"  # for error messages
        expectations = target.store.postgres
        names = expectations.schemas if expectations and expectations.schemas else None
        self.schemas = sorted({pg_identifier(s.name) for s in names}) if names else None
        # Where an unqualified history table is looked for: the documented schemas in the
        # claim's order, then public.
        self.documented = [*dict.fromkeys(pg_identifier(s.name) for s in names or ()), "public"]
        self.migrations = expectations.migrations if expectations else None

    async def read(self) -> ObservedPostgres:
        try:
            async with self.connection.transaction():
                # An empty search_path (pg_catalog only), as pg_dump reads: every name outside
                # pg_catalog is rendered schema-qualified, so no verdict depends on the
                # search_path of the reader's role or DSN; likewise the output styles.
                await self._run(
                    "pinning the session's timeout, search_path and output styles",
                    PIN_SESSION,
                    {"timeout": str(_statement_timeout_ms(self.target.timeout))},
                )
                return await self._read_catalog()
        except psycopg.Error as error:
            raise _query_error(error, self.doing, self.where, self.target.timeout) from error

    async def _run(
        self, doing: str, query: str | sql.Composed, params: dict[str, Any] | None = None
    ) -> list[TupleRow]:
        self.doing = doing
        self.queries += 1
        # Binary results: ints, bools and arrays arrive without text to parse.
        cursor = await self.connection.execute(query, params, binary=True)
        if cursor.description is None:
            return []
        with _collector_paused():  # execute received the whole result: this only converts it
            return await cursor.fetchall()

    async def _read_catalog(self) -> ObservedPostgres:
        (
            (database, version, version_num, schemas, ext_names, ext_versions, ext_schemas, *names),
        ) = await self._run("reading the server version, schemas and extensions", ABOUT)
        # A store the docs say is absent: that it answered is all verification needs.
        absent = self.target.store.absent
        tables = () if absent else await self._read_tables(_Names(*names))
        migrations = await self._read_migrations(self.migrations) if self.migrations else None
        return ObservedPostgres(
            version=version,
            version_num=version_num,
            database=database,
            schemas=tuple(schemas),
            tables=tables,
            extensions=dict(zip(ext_names, ext_versions, strict=True)),
            extension_schemas=tuple(ext_schemas),
            migrations=migrations,
            queries=self.queries,
        )

    async def _read_tables(self, names: _Names) -> tuple[PgTableObs, ...]:
        scope = {"schemas": self.schemas}
        relations = await self._run("listing tables", RELATIONS, scope)
        columns = await self._run("reading columns", COLUMNS, scope)
        pairs = sorted({(row[3], row[4]) for row in columns})
        types = await self._run(
            "naming column types",
            TYPES,
            {"typids": [p[0] for p in pairs], "typmods": [p[1] for p in pairs]},
        )
        defaults = await self._run("reading column defaults", DEFAULTS, scope)
        constraints = await self._run("reading constraints", CONSTRAINTS, scope)
        indexes = await self._run("reading indexes", INDEXES, scope)
        rows = _CatalogRows(relations, columns, types, defaults, constraints, indexes, names)
        with _collector_paused():
            return _assemble(rows)

    async def _read_migrations(self, migrations: PgMigrations) -> PgMigrationHistory:
        history = HISTORY[migrations.tool]
        schema = pg_identifier(migrations.schema_) if migrations.schema_ else history.schema
        candidates = [schema] if schema else self.documented
        rows = await self._run(
            f"looking for the {migrations.tool} history",
            HISTORY_TABLE,
            {"schemas": candidates, "table": history.table},
        )
        found = {row[0]: row for row in rows}
        if not found:
            where = ", ".join(f"{s}.{history.table}" for s in candidates)
            return PgMigrationHistory(tool=migrations.tool, table=where, found=False)
        # A readable one first, in the candidates' order; else the first, to say what to grant.
        ordered = [found[s] for s in candidates if s in found]
        actual_schema, usage, select, role = next((r for r in ordered if r[1] and r[2]), ordered[0])
        table = f"{actual_schema}.{history.table}"
        if not (usage and select):
            # Not readable is not missing: the history could not be checked, and says why.
            grant = (
                f"USAGE ON SCHEMA {_quoted(actual_schema)} TO {_quoted(role)}"
                if not usage
                else f"SELECT ON {_quoted(actual_schema)}.{_quoted(history.table)} "
                f"TO {_quoted(role)}"
            )
            privilege = "USAGE on its schema" if not usage else "SELECT on it"
            return PgMigrationHistory(
                tool=migrations.tool,
                table=table,
                found=True,
                unreadable=Unreadable(f"{table} is there, but this role lacks {privilege}", grant),
            )
        await self._run(
            f"reading the {migrations.tool} history", SEARCH_PATH, {"schema": actual_schema}
        )
        rows = await self._run(f"reading the {migrations.tool} history", history.query)
        return history_of(migrations.tool, table, rows)


# --- assembling -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _CatalogRows:
    """What the catalog queries returned, one list of rows per query."""

    relations: list[TupleRow]
    columns: list[TupleRow]
    types: list[TupleRow]
    defaults: list[TupleRow]
    constraints: list[TupleRow]
    indexes: list[TupleRow]
    names: _Names


@dataclass(frozen=True, slots=True)
class _Names:
    """Operator classes and the collations indexes use, as ABOUT read them (parallel arrays)."""

    opclass_oids: list[int]
    opclass_names: list[str]
    opclass_defaults: list[bool]
    collation_oids: list[int]
    collation_names: list[str]


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while rows and observations are made.

    Tens of thousands of long-lived objects made in one go set off full
    collections that walk every object the process holds, a loaded claim
    included: measured with bench/postgres_verify.py (20k columns, its 2 MB
    claim loaded), building the observation takes 135 ms with them, 55 ms
    without. Nothing made here forms a cycle, and what runs inside does not
    wait on I/O (the rows are already received), so no other task runs meanwhile.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _assemble(rows: _CatalogRows) -> tuple[PgTableObs, ...]:
    relations, columns, types = rows.relations, rows.columns, rows.types
    defaults, constraints, indexes = rows.defaults, rows.constraints, rows.indexes
    type_names = {(oid, typmod): name for oid, typmod, name in types}
    default_of = {(relid, attnum): text for relid, attnum, text in defaults}

    columns_of: dict[int, list[PgColumnObs]] = defaultdict(list)
    attnames: dict[int, dict[int, str]] = defaultdict(dict)
    collation_of: dict[tuple[int, int], int] = {}
    for relid, attnum, name, typid, typmod, notnull, identity, generated, collation in columns:
        collation_of[(relid, attnum)] = collation
        expression = default_of.get((relid, attnum))
        columns_of[relid].append(
            PgColumnObs(
                name=name,
                type=type_names[(typid, typmod)],
                nullable=not notnull,
                default=None if generated else expression,
                identity=_IDENTITY.get(identity),
                generated=expression if generated else None,
            )
        )
        attnames[relid][attnum] = name

    constraints_of: dict[int, list[PgConstraintObs]] = defaultdict(list)
    for (
        relid,
        name,
        kind,
        keys,
        ref_relid,
        ref_keys,
        ref_schema,
        ref_table,
        ref_names_read,
        on_delete,
        on_update,
        definition,
        index,
    ) in constraints:
        names = attnames[relid]
        ref_columns = ref_names_read
        if kind == "f" and ref_columns is None:  # the referenced table was read: name them here
            ref_columns = [attnames[ref_relid][k] for k in ref_keys]
        constraints_of[relid].append(
            PgConstraintObs(
                name=name,
                type=kind,
                columns=tuple(names[k] for k in keys or ()),
                ref_schema=ref_schema,
                ref_table=ref_table,
                ref_columns=tuple(ref_columns or ()),
                on_delete=_ACTIONS.get(on_delete) if kind == "f" else None,
                on_update=_ACTIONS.get(on_update) if kind == "f" else None,
                definition=definition,
                index=index,
            )
        )

    known = rows.names
    opclasses = dict(zip(known.opclass_oids, known.opclass_names, strict=True))
    opclass_defaults = dict(zip(known.opclass_oids, known.opclass_defaults, strict=True))
    collations = dict(zip(known.collation_oids, known.collation_names, strict=True))
    indexes_of: dict[int, list[PgIndexObs]] = defaultdict(list)
    for (
        relid,
        name,
        keys,
        unique,
        primary,
        method,
        classes,
        index_collations,
        options,
        expressions,
        predicate,
    ) in indexes:
        key = _key(keys, expressions, attnames[relid])
        indexes_of[relid].append(
            PgIndexObs(
                name=name,
                columns=_ordered(key, keys, options) if options else key,
                unique=unique,
                primary=primary,
                method=method,
                predicate=predicate,
                opclasses=tuple(opclasses.get(c, "") for c in classes),
                default_opclasses=tuple(opclass_defaults.get(c, True) for c in classes),
                collations=tuple(
                    # An expression's own collation is the database default (100).
                    collations.get(c) if c and c != collation_of.get((relid, k), 100) else None
                    for k, c in zip(keys, index_collations, strict=True)
                ),
            )
        )

    tables = []
    for row in relations:
        oid, schema, name, relkind, parent_schema, parent, strategy, part_def = row
        tables.append(
            PgTableObs(
                schema=schema,
                name=name,
                kind=_RELKIND_NAMES[relkind],
                columns=tuple(columns_of.get(oid, ())),
                constraints=tuple(sorted(constraints_of.get(oid, ()), key=lambda c: c.name)),
                indexes=tuple(sorted(indexes_of.get(oid, ()), key=lambda i: i.name)),
                partition_strategy=_PARTITION_STRATEGIES.get(strategy) if strategy else None,
                # As pg_get_partkeydef writes each part: a column's COLLATE and operator
                # class stay with it (the catalog's attribute number alone loses them).
                partition_key=tuple(_partition_parts(part_def)) if part_def else (),
                partition_of=f"{parent_schema}.{parent}" if parent else None,
            )
        )
    tables.sort(key=lambda t: (t.schema, t.name))
    return tuple(tables)


def _quoted(name: str) -> str:
    """A name as SQL needs it in a GRANT a person copies."""
    return name if _PLAIN_NAME.match(name) else '"' + name.replace('"', '""') + '"'


def _key(
    attnums: Sequence[int], expressions: Sequence[str] | None, names: dict[int, str]
) -> tuple[str, ...]:
    """An index or partition key: the column's own name where it is a column (attnum > 0),
    the deparsed text where it is an expression (attnum 0)."""
    if not expressions:
        return tuple(names[k] for k in attnums)
    return tuple(names[k] if k else expressions[i] for i, k in enumerate(attnums))


_INDOPTION_DESC, _INDOPTION_NULLS_FIRST = 1, 2
_PLAIN_NAME = re.compile(r"^[a-z_][a-z0-9_$]*$")


def _ordered(
    columns: tuple[str, ...], attnums: Sequence[int], options: Sequence[int]
) -> tuple[str, ...]:
    """Key parts with their ordering where it is not the default, as pg_get_indexdef writes
    it: `created_at DESC`, `"UserId" NULLS FIRST`, `lower(email) DESC NULLS LAST`."""
    parts = []
    for part, attnum, option in zip(columns, attnums, options, strict=True):
        descending = bool(option & _INDOPTION_DESC)
        nulls_first = bool(option & _INDOPTION_NULLS_FIRST)
        suffix = ("DESC" if descending else "") + (
            " NULLS LAST" if descending and not nulls_first else ""
        )
        if nulls_first and not descending:
            suffix = "NULLS FIRST"
        if not suffix.strip():
            parts.append(part)
            continue
        if attnum and not _PLAIN_NAME.match(part):  # a column: its name as SQL writes it
            parts.append(f'"{part.replace(chr(34), chr(34) * 2)}" {suffix.strip()}')
        else:
            parts.append(f"{part} {suffix.strip()}")
    return tuple(parts)


def _partition_parts(definition: str) -> list[str]:
    """`RANGE (created_at, lower(name))` -> ["created_at", "lower(name)"]."""
    return split_top_level(definition[definition.index("(") + 1 : definition.rindex(")")])


def split_top_level(text: str) -> list[str]:
    """Split on commas outside parentheses and quotes: `a, f(b, c), 'x,y'` -> 3 parts."""
    parts, depth, quote, start = [], 0, "", 0
    for position, char in enumerate(text):
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:position].strip())
            start = position + 1
    parts.append(text[start:].strip())
    return [part for part in parts if part]
