"""False findings and misses that new users met on real schemas (issue 10), each reproduced on
the dev PostgreSQL through the read-only role, probe and comparison together.

Every case builds its schema as the superuser in a database of its own and verifies the
claim a careful engineer writes from the DDL, as `datarch verify` does.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from pydantic import SecretStr

from conftest import PgDatabase
from datarch.claims import Store
from datarch.comparison.postgres import compare_postgres
from datarch.findings import Finding
from datarch.observations import ObservedPostgres
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


async def findings(dsn: str, *, strict: bool = False, **claim: Any) -> list[Finding]:
    store_target = target(dsn, strict=strict, **claim)
    return compare_postgres(store_target.store, await observe(store_target))


async def brief(dsn: str, *, strict: bool = False, **claim: Any) -> list[tuple[Any, ...]]:
    return [
        (f.path, f.kind.value, f.expected, f.observed)
        for f in await findings(dsn, strict=strict, **claim)
    ]


def with_search_path(dsn: str, search_path: str) -> str:
    """The same role and database, its session's search_path set by the DSN, as an app may."""
    return f"{dsn}?options={quote(f'-c search_path={search_path}')}"


# --------------------------------------------------------------------------- 1. search_path

SEQUENCES = """
CREATE EXTENSION "uuid-ossp";
CREATE TABLE public.items (id serial PRIMARY KEY, name text NOT NULL);
CREATE SCHEMA app;
CREATE TYPE app.state AS ENUM ('new', 'done');
CREATE TABLE app.things (
  id serial PRIMARY KEY,
  item_id integer NOT NULL REFERENCES public.items (id),
  state app.state NOT NULL DEFAULT 'new',
  ref uuid DEFAULT public.uuid_generate_v4(),
  label text
);
CREATE FUNCTION app.norm(text) RETURNS text IMMUTABLE LANGUAGE sql AS 'SELECT lower($1)';
CREATE INDEX things_label_idx ON app.things (app.norm(label));
"""

SEQUENCE_CLAIM: dict[str, Any] = {
    "schemas": [
        {
            "name": "public",
            "tables": [
                {
                    "name": "items",
                    # as pg_dump writes it (search_path '')
                    "columns": [
                        {
                            "name": "id",
                            "type": "integer",
                            "default": "nextval('public.items_id_seq'::regclass)",
                        }
                    ],
                }
            ],
        },
        {
            "name": "app",
            "tables": [
                {
                    "name": "things",
                    # as psql's \\d shows it with app on the search_path
                    "columns": [
                        {
                            "name": "id",
                            "type": "integer",
                            "default": "nextval('things_id_seq'::regclass)",
                        },
                        {"name": "state", "type": "state", "default": "'new'::state"},
                        {"name": "ref", "type": "uuid", "default": "uuid_generate_v4()"},
                    ],
                    "indexes": [{"name": "things_label_idx", "columns": ["norm(label)"]}],
                }
            ],
        },
    ]
}


@pytest.mark.parametrize("search_path", ["", "app", "app,public", "nowhere"])
async def test_sequence_defaults_and_names_do_not_depend_on_the_readers_search_path(
    pg_database: PgDatabase, search_path: str
) -> None:
    execute(pg_database.dsn, SEQUENCES)
    dsn = with_search_path(pg_database.ro_dsn, search_path) if search_path else pg_database.ro_dsn
    assert await brief(dsn, **SEQUENCE_CLAIM) == []


async def test_the_observation_is_the_same_whatever_the_readers_search_path(
    pg_database: PgDatabase,
) -> None:
    execute(pg_database.dsn, SEQUENCES)
    observed: list[ObservedPostgres] = [
        await observe(target(with_search_path(pg_database.ro_dsn, path), **SEQUENCE_CLAIM))
        for path in ("public", "app", "pg_catalog")
    ]
    assert observed[0] == observed[1] == observed[2]


async def test_a_default_naming_another_sequence_is_still_found(pg_database: PgDatabase) -> None:
    execute(pg_database.dsn, SEQUENCES + "CREATE SEQUENCE app.items_id_seq;")
    claim = {
        "schemas": [
            {
                "name": "public",
                "tables": [
                    {
                        "name": "items",
                        "columns": [
                            {"name": "id", "default": "nextval('app.items_id_seq'::regclass)"}
                        ],
                    }
                ],
            }
        ]
    }
    assert await brief(pg_database.ro_dsn, **claim) == [
        (
            "public.items.columns.id.default",
            "different",
            "nextval('app.items_id_seq'::regclass)",
            "nextval('public.items_id_seq'::regclass)",
        )
    ]


SETTINGS = """
CREATE TABLE public.plans (
  id int PRIMARY KEY,
  trial interval NOT NULL DEFAULT interval '30 days',
  starts date NOT NULL DEFAULT '2024-01-31',
  launch timestamptz NOT NULL DEFAULT '2024-01-31 10:00:00+00',
  ratio double precision NOT NULL DEFAULT 0.1,
  CONSTRAINT plans_trial_check CHECK (trial <= interval '1 year 2 mons')
);
"""

SETTINGS_CLAIM: dict[str, Any] = {
    "schemas": [
        {
            "name": "public",
            "tables": [
                {
                    "name": "plans",
                    "columns": [
                        {"name": "trial", "default": "'30 days'::interval"},
                        {"name": "starts", "default": "'2024-01-31'::date"},
                        {"name": "launch", "default": "'2024-01-31 10:00:00+00'::timestamptz"},
                        {"name": "ratio", "default": "0.1"},
                    ],
                    "checks": [
                        {
                            "name": "plans_trial_check",
                            "expression": "trial <= '1 year 2 mons'::interval",
                        }
                    ],
                }
            ],
        }
    ]
}

# Settings a reader's role or DSN may carry; each changes how constants are printed.
ODD_SETTINGS = (
    "-c IntervalStyle=iso_8601 -c DateStyle=SQL,DMY -c TimeZone=Asia/Tokyo "
    "-c extra_float_digits=0 -c search_path=nowhere"
)


async def test_no_verdict_depends_on_the_readers_output_settings(pg_database: PgDatabase) -> None:
    execute(pg_database.dsn, SETTINGS)
    odd = f"{pg_database.ro_dsn}?options={quote(ODD_SETTINGS)}"
    assert await brief(odd, **SETTINGS_CLAIM) == []
    assert await observe(target(odd, **SETTINGS_CLAIM)) == await observe(
        target(pg_database.ro_dsn, **SETTINGS_CLAIM)
    )


# --------------------------------------------------------------------------- 2. operator classes

OPCLASSES = """
CREATE EXTENSION pg_trgm;
CREATE TABLE public.requests (
  id bigint PRIMARY KEY,
  client_ip inet NOT NULL,
  payload jsonb NOT NULL,
  "title" text NOT NULL,
  code text NOT NULL
);
CREATE INDEX requests_ip_idx ON public.requests USING gist (client_ip inet_ops);
CREATE INDEX requests_payload_idx ON public.requests USING gin (payload jsonb_path_ops);
CREATE INDEX requests_title_trgm_idx ON public.requests USING gin ("title" gin_trgm_ops);
CREATE INDEX requests_code_idx ON public.requests (code COLLATE "C" text_pattern_ops DESC);
CREATE INDEX requests_plain_idx ON public.requests USING gin (payload);
"""


def requests_claim(*indexes: dict[str, Any]) -> dict[str, Any]:
    return {
        "schemas": [{"name": "public", "tables": [{"name": "requests", "indexes": list(indexes)}]}]
    }


async def test_operator_classes_and_collations_written_in_the_claim_are_equal(
    pg_database: PgDatabase,
) -> None:
    execute(pg_database.dsn, OPCLASSES)
    claim = requests_claim(
        {"name": "requests_ip_idx", "columns": ["client_ip inet_ops"], "method": "gist"},
        {"name": "requests_payload_idx", "columns": ["payload jsonb_path_ops"]},
        {"name": "requests_title_trgm_idx", "columns": ['"title" public.gin_trgm_ops']},
        {"name": "requests_code_idx", "columns": ['code COLLATE "C" text_pattern_ops DESC']},
        # the default operator class, written out, is the default
        {"name": "requests_plain_idx", "columns": ["payload jsonb_ops"]},
    )
    assert await brief(pg_database.ro_dsn, **claim) == []


async def test_a_claim_that_leaves_operator_classes_out_does_not_check_them(
    pg_database: PgDatabase,
) -> None:
    execute(pg_database.dsn, OPCLASSES)
    claim = requests_claim(
        {"name": "requests_ip_idx", "columns": ["client_ip"]},
        {"name": "requests_title_trgm_idx", "columns": ["title"]},
        {"name": "requests_code_idx", "columns": ["code DESC"]},
    )
    assert await brief(pg_database.ro_dsn, **claim) == []


async def test_another_operator_class_or_collation_is_found_with_both_printed_alike(
    pg_database: PgDatabase,
) -> None:
    execute(pg_database.dsn, OPCLASSES)
    claim = requests_claim(
        {"name": "requests_payload_idx", "columns": ["payload jsonb_ops"]},
        {"name": "requests_code_idx", "columns": ['code COLLATE "en_US" DESC']},
        {"name": "requests_plain_idx", "columns": ["payload jsonb_path_ops"]},
    )
    assert await brief(pg_database.ro_dsn, **claim) == [
        (
            "public.requests.indexes.requests_payload_idx.columns",
            "different",
            "(payload jsonb_ops)",
            "(payload jsonb_path_ops)",
        ),
        (
            "public.requests.indexes.requests_code_idx.columns",
            "different",
            '(code COLLATE "en_US" DESC)',
            '(code COLLATE "C" text_pattern_ops DESC)',
        ),
        (
            "public.requests.indexes.requests_plain_idx.columns",
            "different",
            "(payload jsonb_path_ops)",
            "(payload)",
        ),
    ]


async def test_names_from_an_extension_in_its_own_schema_are_read_as_the_app_reads_them(
    pg_database: PgDatabase,
) -> None:
    # As Supabase installs them: extensions in schema `extensions`, on the app's search_path.
    execute(
        pg_database.dsn,
        "CREATE SCHEMA extensions; CREATE EXTENSION pg_trgm SCHEMA extensions;"
        'CREATE EXTENSION "uuid-ossp" SCHEMA extensions;'
        "CREATE TABLE public.posts (id uuid PRIMARY KEY DEFAULT extensions.uuid_generate_v4(),"
        " title text NOT NULL);"
        "CREATE INDEX posts_title_idx ON public.posts USING gin (title extensions.gin_trgm_ops);",
    )
    table = {
        "name": "posts",
        "columns": [{"name": "id", "default": "uuid_generate_v4()"}],
        "indexes": [{"name": "posts_title_idx", "columns": ["title gin_trgm_ops"]}],
    }
    assert await brief(pg_database.ro_dsn, schemas=[{"name": "public", "tables": [table]}]) == []


# --------------------------------------------------------------------------- 3. Prisma arrays

PRISMA_ARRAYS = """
CREATE TYPE "Kind" AS ENUM ('MEMBER', 'ADMIN');
CREATE TABLE "Team" (
    "id" TEXT NOT NULL,
    "kinds" "Kind"[] DEFAULT ARRAY['MEMBER']::"Kind"[],
    "tags" TEXT[] DEFAULT ARRAY['a', 'b']::TEXT[],
    CONSTRAINT "Team_pkey" PRIMARY KEY ("id")
);
"""


def team_claim(kinds_default: str) -> dict[str, Any]:
    columns = [
        {"name": '"kinds"', "type": '"Kind"[]', "default": kinds_default},
        {"name": '"tags"', "type": "TEXT[]", "default": "ARRAY['a', 'b']::TEXT[]"},
    ]
    return {"schemas": [{"name": "public", "tables": [{"name": '"Team"', "columns": columns}]}]}


async def test_an_array_default_cast_as_a_whole_equals_the_stored_array_of_casts(
    pg_database: PgDatabase,
) -> None:
    execute(pg_database.dsn, PRISMA_ARRAYS)
    assert await brief(pg_database.ro_dsn, **team_claim("ARRAY['MEMBER']::\"Kind\"[]")) == []


async def test_another_array_default_is_still_found(pg_database: PgDatabase) -> None:
    execute(pg_database.dsn, PRISMA_ARRAYS)
    assert await brief(pg_database.ro_dsn, **team_claim("ARRAY['ADMIN']::\"Kind\"[]")) == [
        (
            "public.Team.columns.kinds.default",
            "different",
            "ARRAY['ADMIN']::\"Kind\"[]",
            "ARRAY['MEMBER'::public.\"Kind\"]",
        )
    ]


# --------------------------------------------------------------------------- 4. extensions


async def test_strict_mode_reports_an_undocumented_extension(pg_database: PgDatabase) -> None:
    execute(pg_database.dsn, "CREATE EXTENSION pgcrypto; CREATE EXTENSION citext;")
    claim = {"extensions": ["citext"], "schemas": [{"name": "public", "tables": []}]}
    found = await findings(pg_database.ro_dsn, strict=True, **claim)
    assert [(f.path, f.kind.value, f.severity.value) for f in found] == [
        ("extensions.pgcrypto", "unexpected", "warning")
    ]
    assert found[0].observed is not None and found[0].observed.startswith("pgcrypto ")
    # outside strict mode an undocumented extension is no finding
    assert await brief(pg_database.ro_dsn, **claim) == []


# --------------------------------------------------------------------------- 5. history tables

GOLANG_MIGRATE_IN_APP = """
CREATE SCHEMA app;
CREATE TABLE app.schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);
INSERT INTO app.schema_migrations VALUES (20240611093000, true);
CREATE TABLE app.accounts (id bigint PRIMARY KEY);
"""


async def test_a_history_table_in_a_documented_schema_is_found_and_its_dirty_flag_read(
    pg_database: PgDatabase,
) -> None:
    execute(pg_database.dsn, GOLANG_MIGRATE_IN_APP)
    claim = {
        "schemas": [{"name": "app", "tables": [{"name": "accounts"}]}],
        "migrations": {"tool": "golang-migrate", "latest": "20240611093000_add_accounts"},
    }
    assert await brief(pg_database.ro_dsn, strict=True, **claim) == [
        ("migrations.dirty", "different", "false", "true at version 20240611093000")
    ]


async def test_a_history_table_that_is_not_there_says_where_it_was_looked_for(
    pg_database: PgDatabase,
) -> None:
    execute(pg_database.dsn, "CREATE SCHEMA app; CREATE SCHEMA audit;")
    claim = {
        "schemas": [{"name": "app"}, {"name": "audit"}],
        "migrations": {"tool": "golang-migrate"},
    }
    found = await findings(pg_database.ro_dsn, **claim)
    assert [(f.path, f.kind.value, f.message) for f in found] == [
        (
            "migrations",
            "missing",
            "no golang-migrate history table (looked for app.schema_migrations, "
            "audit.schema_migrations, public.schema_migrations)",
        )
    ]


# --------------------------------------------------------------------------- 6. one cause


async def test_a_dsn_in_the_wrong_database_is_one_finding_that_names_its_consequence(
    pg_database: PgDatabase,
) -> None:
    claim = {
        "database": "shop",
        "extensions": ["citext"],
        "schemas": [
            {"name": "public", "tables": [{"name": "orders"}, {"name": "customers"}]},
            {"name": "billing", "tables": [{"name": "invoices"}]},
        ],
        "migrations": {"tool": "flyway"},
    }
    found = await findings(pg_database.ro_dsn, **claim)
    assert [(f.path, f.kind.value, f.expected, f.observed) for f in found] == [
        ("database", "different", "shop", pg_database.name)
    ]
    assert found[0].message == (
        f"the DSN leads to database {pg_database.name}, not the documented shop: "
        "1 extension, 2 schemas, 3 tables, 1 migration history not checked there"
    )


# --------------------------------------------------------------------------- 7. one spelling

MIXED_CASE = """
CREATE TABLE "Org" ("Id" text PRIMARY KEY);
CREATE TABLE "Member" (
  "Id" text PRIMARY KEY,
  "orgId" text NOT NULL REFERENCES "Org" ("Id"),
  "isActive" boolean NOT NULL,
  email varchar(255)
);
"""


async def test_findings_print_mixed_case_names_and_types_in_one_spelling(
    pg_database: PgDatabase,
) -> None:
    execute(pg_database.dsn, MIXED_CASE)
    claim = {
        "schemas": [
            {
                "name": "public",
                "tables": [
                    {
                        "name": '"Member"',
                        "columns": [{"name": "email", "type": "varchar(320)"}],
                        "primaryKey": ['"isActive"'],
                        "foreignKeys": [
                            {
                                "columns": ['"orgId"'],
                                "references": {"table": '"Member"', "columns": ['"Id"']},
                            }
                        ],
                    }
                ],
            }
        ]
    }
    assert await brief(pg_database.ro_dsn, **claim) == [
        (
            "public.Member.columns.email.type",
            "different",
            "character varying(320)",
            "character varying(255)",
        ),
        ("public.Member.primaryKey", "different", '("isActive")', '("Id")'),
        (
            "public.Member.foreignKeys.(orgId).references",
            "different",
            'public."Member"("Id")',
            'public."Org"("Id")',
        ),
    ]


# --------------------------------------------------------------------------- 2b. partition keys

PARTITIONED = """
CREATE TABLE public.events (name text NOT NULL, n int NOT NULL)
  PARTITION BY RANGE (name COLLATE "C" text_pattern_ops, n);
"""


def events_claim(*key: str) -> dict[str, Any]:
    table = {"name": "events", "partitioning": {"strategy": "range", "key": list(key)}}
    return {"schemas": [{"name": "public", "tables": [table]}]}


async def test_a_partition_keys_collation_and_operator_class_are_compared_when_written(
    pg_database: PgDatabase,
) -> None:
    execute(pg_database.dsn, PARTITIONED)
    dsn = pg_database.ro_dsn
    assert await brief(dsn, **events_claim('name COLLATE "C" text_pattern_ops', "n")) == []
    assert await brief(dsn, **events_claim("name", "n")) == []
    assert await brief(dsn, **events_claim('name COLLATE "en_US"', "n")) == [
        (
            "public.events.partitioning.key",
            "different",
            '(name COLLATE "en_US",n)',
            '(name COLLATE "C" text_pattern_ops,n)',
        )
    ]
