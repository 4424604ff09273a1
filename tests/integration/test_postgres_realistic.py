"""Realistic schemas, written as platform teams write DDL, against the claims a careful
engineer writes from their docs: datarch must report exactly the real differences.

Each case builds its schema as the superuser in a database of its own and verifies it
through the read-only role, probe and comparison together, as `datarch verify` does.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from pydantic import SecretStr

from conftest import PgDatabase, with_path
from datarch.claims import Store
from datarch.comparison.postgres import compare_postgres
from datarch.findings import Unchecked
from datarch.probes.base import Target
from datarch.probes.postgres import observe

pytestmark = pytest.mark.integration


def execute(dsn: str, statements: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(statements)  # test DDL, no parameters


def target(dsn: str, *, strict: bool = False, **postgres: Any) -> Target:
    store = Store.model_validate(
        {"name": "main", "kind": "postgres", "strict": strict, "postgres": postgres}
    )
    return Target(store=store, timeout=10.0, secret=SecretStr(dsn), secret_key="dsn")


async def verify(dsn: str, **claim: Any) -> list[tuple[str, str, str | None, str | None]]:
    store_target = target(dsn, **claim)
    findings = compare_postgres(store_target.store, await observe(store_target))
    return [(f.path, f.kind.value, f.expected, f.observed) for f in findings]


# --------------------------------------------------------------------------- an orders table

ORDERS = """
CREATE SCHEMA app;
CREATE TYPE app.status AS ENUM ('active', 'archived', 'deleted');
CREATE TABLE app."Order" (
  "Id" bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  "UserId" uuid NOT NULL,
  data jsonb NOT NULL DEFAULT '{}',
  email text,
  status app.status NOT NULL DEFAULT 'active',
  amount numeric(10,2) NOT NULL DEFAULT 0.00,
  qty int NOT NULL DEFAULT 1,
  created_at timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
  updated_at timestamp DEFAULT now()::timestamp,
  expires_at timestamptz DEFAULT now() + interval '30 days',
  code varchar(12),
  total numeric GENERATED ALWAYS AS (amount * qty) STORED,
  label text GENERATED ALWAYS AS (coalesce(email, 'none') || ':' || qty::text) STORED,
  deleted boolean NOT NULL DEFAULT FALSE,
  CONSTRAINT order_code_check CHECK (char_length(code) BETWEEN 4 AND 12),
  CONSTRAINT order_total_check CHECK (amount * qty < 100000),
  CONSTRAINT order_kind_check CHECK (data->>'kind' IN ('a', 'b')),
  CONSTRAINT order_n_check CHECK (CAST(data->>'n' AS integer) > 0)
);
CREATE INDEX order_data_id_idx ON app."Order" (((data->>'id')::int));
CREATE INDEX order_active_idx ON app."Order" ("UserId", created_at DESC)
  WHERE status = 'active' AND NOT deleted;
CREATE INDEX order_recent_idx ON app."Order" (created_at DESC NULLS LAST);
CREATE INDEX order_user_desc_idx ON app."Order" ("UserId" DESC);
CREATE INDEX order_email_idx ON app."Order" (email);
CREATE UNIQUE INDEX order_email_live_key ON app."Order" (email) WHERE NOT deleted;
"""

ORDERS_CLAIM: dict[str, Any] = {
    "schemas": [
        {
            "name": "app",
            "tables": [
                {
                    "name": '"Order"',
                    "columns": [
                        {"name": '"Id"', "type": "bigint", "identity": "always"},
                        {"name": '"UserId"', "type": "uuid", "nullable": False},
                        {"name": "updated_at", "type": "timestamp", "default": "now()::timestamp"},
                        {
                            "name": "expires_at",
                            "type": "timestamptz",
                            "default": "now() + interval '30 days'",
                        },
                        {"name": "total", "type": "numeric", "generated": "amount * qty"},
                        {
                            "name": "label",
                            "type": "text",
                            "generated": "coalesce(email, 'none') || ':' || qty::text",
                        },
                    ],
                    "primaryKey": ['"Id"'],
                    "checks": [
                        {
                            "name": "order_code_check",
                            "expression": "char_length(code) BETWEEN 4 AND 12",
                        },
                        {"name": "order_total_check", "expression": "amount * qty < 100000"},
                        {"name": "order_kind_check", "expression": "data->>'kind' IN ('a', 'b')"},
                        {"name": "order_n_check", "expression": "CAST(data->>'n' AS integer) > 0"},
                    ],
                    "indexes": [
                        {"name": "order_data_id_idx", "columns": ["((data->>'id')::int)"]},
                        {
                            "name": "order_active_idx",
                            "columns": ['"UserId"', "created_at DESC"],
                            "where": "status = 'active' AND NOT deleted",
                        },
                        {"name": "order_recent_idx", "columns": ["created_at DESC NULLS LAST"]},
                        {"name": "order_user_desc_idx", "columns": ['"UserId" DESC']},
                        # unnamed: the partial unique one, not the plain index on email
                        {"columns": ["email"], "unique": True, "where": "NOT deleted"},
                    ],
                }
            ],
        }
    ]
}


async def test_a_claim_copied_from_the_ddl_has_no_findings(pg_database: PgDatabase) -> None:
    execute(pg_database.dsn, ORDERS)
    assert await verify(pg_database.ro_dsn, **ORDERS_CLAIM) == []


async def test_the_ordering_of_an_index_column_is_checked(pg_database: PgDatabase) -> None:
    execute(
        pg_database.dsn,
        ORDERS
        + """
        DROP INDEX app.order_recent_idx;
        CREATE INDEX order_recent_idx ON app."Order" (created_at DESC);
        DROP INDEX app.order_user_desc_idx;
        CREATE INDEX order_user_desc_idx ON app."Order" ("UserId");
        """,
    )
    assert await verify(pg_database.ro_dsn, **ORDERS_CLAIM) == [
        (
            "app.Order.indexes.order_recent_idx.columns",
            "different",
            "(created_at DESC NULLS LAST)",
            "(created_at DESC)",
        ),
        (
            "app.Order.indexes.order_user_desc_idx.columns",
            "different",
            '("UserId" DESC)',
            '("UserId")',
        ),
    ]


async def test_real_drift_in_expressions_is_still_found(pg_database: PgDatabase) -> None:
    execute(
        pg_database.dsn,
        ORDERS
        + """
        ALTER TABLE app."Order" DROP CONSTRAINT order_code_check;
        ALTER TABLE app."Order" ADD CONSTRAINT order_code_check
          CHECK (char_length(code) BETWEEN 4 AND 10);
        ALTER TABLE app."Order" ALTER COLUMN expires_at SET DEFAULT now() + interval '31 days';
        """,
    )
    assert [p for p, *_ in await verify(pg_database.ro_dsn, **ORDERS_CLAIM)] == [
        "app.Order.columns.expires_at.default",
        "app.Order.checks.order_code_check.expression",
    ]


# --------------------------------------------------------------------------- permissions


@pytest.fixture
def plain_role(pg_database: PgDatabase) -> Iterator[str]:
    """A login role with no grants beyond PUBLIC's: it may read the catalog, as any role may."""
    name = f"datarch_plain_{uuid.uuid4().hex[:8]}"
    execute(pg_database.dsn, f"CREATE ROLE {name} LOGIN PASSWORD 'plain'")
    try:
        yield with_path(
            f"postgresql://{name}:plain@{pg_database.dsn.split('@', 1)[1]}", pg_database.name
        )
    finally:
        execute(pg_database.dsn, f"DROP OWNED BY {name}; DROP ROLE {name}")


FLYWAY = """
CREATE TABLE public.flyway_schema_history (
  installed_rank int PRIMARY KEY, version varchar(50), description varchar(200),
  type varchar(20) NOT NULL, script varchar(1000) NOT NULL, checksum int,
  installed_by varchar(100) NOT NULL, installed_on timestamp NOT NULL DEFAULT now(),
  execution_time int NOT NULL, success boolean NOT NULL
);
INSERT INTO public.flyway_schema_history
  (installed_rank, version, description, type, script, installed_by, execution_time, success)
VALUES (1, '1', 'init', 'SQL', 'V1__init.sql', 'ci', 3, true);
"""


async def test_a_history_table_in_a_schema_the_role_may_not_use_is_not_missing(
    pg_database: PgDatabase, plain_role: str
) -> None:
    # A locked-down database: PUBLIC may no longer use the public schema, so the
    # search_path silently skips it. The history is there; the role cannot see it.
    execute(pg_database.dsn, FLYWAY + "REVOKE ALL ON SCHEMA public FROM PUBLIC;")
    store_target = target(plain_role, migrations={"tool": "flyway", "latest": "1"})
    outcomes = compare_postgres(store_target.store, await observe(store_target))
    role = plain_role.split("//", 1)[1].split(":", 1)[0]
    # could not check, with the grant that would let it: neither a finding nor a pass
    assert outcomes == [
        Unchecked(
            "migrations",
            "public.flyway_schema_history is there, but this role lacks USAGE on its schema",
            f"USAGE ON SCHEMA public TO {role}",
        )
    ]


async def test_a_documented_table_in_a_schema_the_role_may_not_use_is_still_checked(
    pg_database: PgDatabase, plain_role: str
) -> None:
    # The catalog is readable by every role: the table is observed, and compared.
    execute(
        pg_database.dsn,
        "CREATE SCHEMA vault; CREATE TABLE vault.keys (id int PRIMARY KEY, k bytea NOT NULL);"
        "REVOKE ALL ON SCHEMA vault FROM PUBLIC;",
    )
    claim = {
        "schemas": [
            {
                "name": "vault",
                "tables": [
                    {
                        "name": "keys",
                        "columns": [
                            {"name": "id", "type": "int"},
                            {"name": "k", "type": "bytea", "nullable": True},
                        ],
                        "primaryKey": ["id"],
                    }
                ],
            }
        ]
    }
    assert await verify(plain_role, **claim) == [
        ("vault.keys.columns.k.nullable", "different", "true", "false")
    ]
