"""compare_postgres: tables of cases for every finding kind and every normalisation."""

from __future__ import annotations

from typing import Any

import pytest

from datarch.claims import Store
from datarch.comparison.postgres import compare_postgres
from datarch.findings import Finding, FindingKind, Severity
from datarch.observations import (
    ObservedPostgres,
    PgColumnObs,
    PgConstraintObs,
    PgIndexObs,
    PgMigrationHistory,
    PgTableObs,
)

CRITICAL, WARNING = Severity.CRITICAL, Severity.WARNING
MISSING, UNEXPECTED, DIFFERENT = FindingKind.MISSING, FindingKind.UNEXPECTED, FindingKind.DIFFERENT


# --- builders -------------------------------------------------------------------


def store(
    postgres: dict[str, Any], *, strict: bool = False, scope: list[str] | None = None
) -> Store:
    return Store.model_validate(
        {
            "name": "main",
            "kind": "postgres",
            "strict": strict,
            "scope": scope or [],
            "postgres": postgres,
        }
    )


def one_table(table: dict[str, Any], schema: str = "public", **postgres: Any) -> dict[str, Any]:
    return {"schemas": [{"name": schema, "tables": [table]}], **postgres}


def col(
    name: str,
    type_: str = "integer",
    nullable: bool = True,
    default: str | None = None,
    *,
    identity: str | None = None,
    generated: str | None = None,
) -> PgColumnObs:
    return PgColumnObs(name, type_, nullable, default, identity, generated)


def pk(*columns: str, name: str = "t_pkey") -> PgConstraintObs:
    return PgConstraintObs(name, "p", columns, index=name)


def unique(*columns: str, name: str = "t_key") -> PgConstraintObs:
    return PgConstraintObs(name, "u", columns, index=name)


def fk(
    name: str,
    columns: tuple[str, ...],
    table: str,
    ref_columns: tuple[str, ...] = ("id",),
    *,
    schema: str = "public",
    on_delete: str = "no action",
    on_update: str = "no action",
) -> PgConstraintObs:
    return PgConstraintObs(name, "f", columns, schema, table, ref_columns, on_delete, on_update)


def check(name: str, definition: str) -> PgConstraintObs:
    return PgConstraintObs(name, "c", (), definition=definition)


def index(
    name: str,
    *columns: str,
    unique: bool = False,
    primary: bool = False,
    method: str = "btree",
    predicate: str | None = None,
) -> PgIndexObs:
    return PgIndexObs(name, columns, unique, primary, method, predicate)


def table(name: str, *columns: PgColumnObs, schema: str = "public", **fields: Any) -> PgTableObs:
    kind = "partitioned table" if fields.get("partition_strategy") else "table"
    return PgTableObs(
        schema=schema, name=name, kind=fields.pop("kind", kind), columns=columns, **fields
    )


def observed(
    *tables: PgTableObs,
    schemas: tuple[str, ...] = ("public",),
    database: str = "app",
    extensions: dict[str, str] | None = None,
    migrations: PgMigrationHistory | None = None,
) -> ObservedPostgres:
    return ObservedPostgres(
        version="15.18",
        version_num=150018,
        database=database,
        schemas=schemas,
        tables=tables,
        extensions=extensions or {"plpgsql": "1.0"},
        migrations=migrations,
    )


def brief(findings: list[Finding]) -> list[tuple[str, str, str, str | None, str | None]]:
    """What a table of cases compares: path, kind, severity, expected, observed."""
    return [(f.path, f.kind.value, f.severity.value, f.expected, f.observed) for f in findings]


def column_findings(claim_column: dict[str, Any], observed_column: PgColumnObs) -> list[Finding]:
    claim = store(
        one_table({"name": "t", "columns": [{"name": observed_column.name, **claim_column}]})
    )
    return compare_postgres(claim, observed(table("t", observed_column)))


# --- types ----------------------------------------------------------------------

EQUAL_TYPES = [
    ("varchar", "character varying"),
    ("varchar(255)", "character varying(255)"),
    ("VARCHAR( 255 )", "character varying(255)"),
    ("character varying(255)", "character varying(255)"),
    ("int", "integer"),
    ("int4", "integer"),
    ("integer", "integer"),
    ("int8", "bigint"),
    ("int2", "smallint"),
    ("bool", "boolean"),
    ("float8", "double precision"),
    ("float", "double precision"),
    ("float(53)", "double precision"),
    ("float4", "real"),
    ("float(24)", "real"),
    ("timestamptz", "timestamp with time zone"),
    ("timestamptz(3)", "timestamp(3) with time zone"),
    ("timestamp", "timestamp without time zone"),
    ("timestamp(6)", "timestamp without time zone"),
    ("timestamp(3) without time zone", "timestamp(3) without time zone"),
    ("timetz", "time with time zone"),
    ("time", "time without time zone"),
    ("int[]", "integer[]"),
    ("_int4", "integer[]"),
    ("integer[3]", "integer[]"),
    ("text[][]", "text[]"),
    ("integer ARRAY", "integer[]"),
    ("varchar(64)[]", "character varying(64)[]"),
    ("_text", "text[]"),
    ("numeric(10,2)", "numeric(10,2)"),
    ("decimal(10, 2)", "numeric(10,2)"),
    ("numeric(10)", "numeric(10,0)"),
    ("decimal", "numeric"),
    ("char", "character(1)"),
    ("char(3)", "character(3)"),
    ("bit", "bit(1)"),
    ("varbit(8)", "bit varying(8)"),
    ('"Role"', '"Role"'),
    ("status", "public.status"),
    ("pg_catalog.int4", "integer"),
    ("uuid", "uuid"),
    ("JSONB", "jsonb"),
    ("double precision", "double precision"),
    ('"char"', '"char"'),
]


@pytest.mark.parametrize(("claim_type", "format_type"), EQUAL_TYPES)
def test_equal_types_never_differ(claim_type: str, format_type: str) -> None:
    assert column_findings({"type": claim_type}, col("c", format_type)) == []


DIFFERENT_TYPES = [  # (the claim's type, format_type, the claim's type as findings print it)
    ("varchar(255)", "character varying(100)", "character varying(255)"),
    ("varchar", "text", "character varying"),
    ("varchar(255)", "character varying", "character varying(255)"),
    ("int", "bigint", "integer"),
    ("numeric(10,2)", "numeric(12,2)", "numeric(10,2)"),
    ("numeric", "numeric(10,2)", "numeric"),
    ("int[]", "integer", "integer[]"),
    ("int", "integer[]", "integer"),
    ("timestamp", "timestamp with time zone", "timestamp without time zone"),
    ("timestamptz(3)", "timestamp with time zone", "timestamp(3) with time zone"),
    ("Role", '"Role"', "role"),  # unquoted folds to role
    ("app.status", "public.status", "app.status"),
    ("char(3)", "character(1)", "character(3)"),
    ("float4", "double precision", "real"),
]


@pytest.mark.parametrize(("claim_type", "format_type", "printed"), DIFFERENT_TYPES)
def test_different_types_are_a_critical_finding_printed_in_one_spelling(
    claim_type: str, format_type: str, printed: str
) -> None:
    assert brief(column_findings({"type": claim_type}, col("c", format_type))) == [
        ("public.t.columns.c.type", "different", "critical", printed, format_type)
    ]


@pytest.mark.parametrize(
    ("claim_type", "format_type"),
    [("serial", "integer"), ("bigserial", "bigint"), ("smallserial", "smallint")],
)
def test_serial_is_its_integer_with_a_sequence_default(claim_type: str, format_type: str) -> None:
    column = col("id", format_type, False, "nextval('t_id_seq'::regclass)")
    assert column_findings({"type": claim_type, "nullable": False}, column) == []


def test_serial_without_a_sequence_default_is_a_default_finding() -> None:
    column = col("id", "integer", False, identity="by default")
    assert brief(column_findings({"type": "serial"}, column)) == [
        (
            "public.t.columns.id.default",
            "different",
            "warning",
            "nextval(...) (serial)",
            "identity (by default)",
        )
    ]


def test_a_serial_columns_sequence_name_is_not_compared() -> None:
    column = col("id", "bigint", False, "nextval('other_name_seq'::regclass)")
    assert column_findings({"type": "bigserial", "default": "nextval('t_id_seq')"}, column) == []


def test_serial_type_against_another_integer_is_a_type_finding() -> None:
    column = col("id", "integer", False, "nextval('t_id_seq'::regclass)")
    assert brief(column_findings({"type": "bigserial"}, column)) == [
        ("public.t.columns.id.type", "different", "critical", "bigint", "integer")
    ]


# --- defaults and expressions -----------------------------------------------------

EQUAL_DEFAULTS = [
    ("now()", "now()"),
    ("CURRENT_TIMESTAMP", "now()"),
    ("now()", "CURRENT_TIMESTAMP"),
    ("transaction_timestamp()", "now()"),
    ("'x'", "'x'::text"),
    ("'x'", "'x'::character varying"),
    ("active", "'active'::text"),  # a bare word is no valid default: the string is meant
    ("'active'::status", "'active'::status"),
    ("0", "0"),
    ("'0'", "0"),
    ("-1", "'-1'::integer"),
    ("'{}'", "'{}'::jsonb"),
    ("'{}'::jsonb", "'{}'::jsonb"),
    ("gen_random_uuid()", "gen_random_uuid()"),
    ("TRUE", "true"),
    ("NULL", None),
    ("nextval('t_id_seq')", "nextval('t_id_seq'::regclass)"),
    ("  now( )  ", "now()"),
]


@pytest.mark.parametrize(("claim_default", "observed_default"), EQUAL_DEFAULTS)
def test_equal_defaults_never_differ(claim_default: str, observed_default: str | None) -> None:
    assert (
        column_findings({"default": claim_default}, col("c", "text", default=observed_default))
        == []
    )


DIFFERENT_DEFAULTS = [
    ("now()", "'2020-01-01 00:00:00'::timestamp without time zone"),
    ("'a'", "'b'::text"),
    ("1", "2"),
    ("now()", "CURRENT_TIMESTAMP(3)"),
    ("now()", None),
    ("'A'", "'a'::text"),  # literals keep their case
    ("true", "false"),
]


@pytest.mark.parametrize(("claim_default", "observed_default"), DIFFERENT_DEFAULTS)
def test_a_different_default_is_a_warning(claim_default: str, observed_default: str | None) -> None:
    assert brief(
        column_findings({"default": claim_default}, col("c", "text", default=observed_default))
    ) == [("public.t.columns.c.default", "different", "warning", claim_default, observed_default)]


def test_a_default_the_claim_leaves_out_is_not_checked() -> None:
    assert column_findings({"type": "text"}, col("c", "text", default="'x'::text")) == []


EQUAL_CHECKS = [
    ("amount > 0", "amount > 0::numeric"),
    ("(amount > 0)", "amount > (0)::numeric"),
    ("status IN ('active', 'archived')", "status = ANY (ARRAY['active'::text, 'archived'::text])"),
    ("status in ('active')", "status = 'active'::text"),
    ("status NOT IN ('a', 'b')", "status <> ALL (ARRAY['a'::text, 'b'::text])"),
    ("name <> ''", "name::text <> ''::text"),
    ("name != ''", "(name)::text <> ''::text"),
    ("email LIKE '%@%'", "email::text ~~ '%@%'::text"),
    ("price >= 0 AND price < 1000", "price >= 0 AND price < 1000"),
    ('"Total" > 0', '"Total" > 0'),
    ('"total" > 0', "total > 0"),
    ("(a > 0) AND (b > 0)", "a > 0 AND b > 0"),
    ("a OR (b AND c)", "a OR b AND c"),
    ("a AND (b AND c)", "a AND b AND c"),
    ("qty > 0 AND (price > 0 OR free)", "qty > 0 AND (price > 0::numeric OR free)"),
    ("price > qty", "price > qty::numeric"),  # qty integer, price numeric: an implicit cast
]

# The table the check expressions are about: casts depend on the columns' types.
CHECK_COLUMNS = (
    col("qty"),
    col("price", "numeric"),
    col("amount", "numeric"),
    col("status", "text"),
    col("name", "character varying(20)"),
    col("email", "character varying(255)"),
    col("a"),
    col("b"),
    col("c"),
    col("free", "boolean"),
)


@pytest.mark.parametrize(("claim_expression", "definition"), EQUAL_CHECKS)
def test_equal_check_expressions_never_differ(claim_expression: str, definition: str) -> None:
    claim = store(
        one_table({"name": "t", "checks": [{"name": "c_check", "expression": claim_expression}]})
    )
    found = observed(table("t", *CHECK_COLUMNS, constraints=(check("c_check", definition),)))
    assert compare_postgres(claim, found) == []


@pytest.mark.parametrize(
    ("claim_expression", "definition"),
    [
        ("(a OR b) AND c", "a OR b AND c"),  # the parentheses matter here
        ("price > qty", "price::integer > qty"),  # a narrowing cast is never implicit
        ("NOT (a AND b)", "NOT a AND b"),
    ],
)
def test_check_expressions_that_only_look_alike_differ(
    claim_expression: str, definition: str
) -> None:
    claim = store(
        one_table({"name": "t", "checks": [{"name": "c_check", "expression": claim_expression}]})
    )
    found = observed(table("t", *CHECK_COLUMNS, constraints=(check("c_check", definition),)))
    assert [f.path for f in compare_postgres(claim, found)] == [
        "public.t.checks.c_check.expression"
    ]


def test_a_check_with_another_expression_is_a_warning() -> None:
    claim = store(
        one_table({"name": "t", "checks": [{"name": "c_check", "expression": "amount > 0"}]})
    )
    found = observed(table("t", constraints=(check("c_check", "amount >= 0::numeric"),)))
    assert brief(compare_postgres(claim, found)) == [
        (
            "public.t.checks.c_check.expression",
            "different",
            "warning",
            "amount > 0",
            "amount >= 0::numeric",
        )
    ]


def test_a_missing_check_is_critical() -> None:
    claim = store(one_table({"name": "t", "checks": [{"name": "c_check"}]}))
    assert brief(compare_postgres(claim, observed(table("t")))) == [
        ("public.t.checks.c_check", "missing", "critical", None, None)
    ]


# --- identifiers ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("claim_name", "observed_name"),
    [
        ("email", "email"),
        ("Email", "email"),
        ("EMAIL", "email"),
        ('"Email"', "Email"),
        ('"a""b"', 'a"b'),
    ],
)
def test_identifiers_follow_postgres_case_and_quoting(claim_name: str, observed_name: str) -> None:
    claim = store(one_table({"name": "t", "columns": [{"name": claim_name}]}))
    assert compare_postgres(claim, observed(table("t", col(observed_name)))) == []


def test_an_unquoted_name_does_not_match_a_mixed_case_one_and_says_so() -> None:
    claim = store(one_table({"name": "t", "columns": [{"name": "Email", "type": "text"}]}))
    (finding,) = compare_postgres(claim, observed(table("t", col("Email", "text"))))
    assert (finding.path, finding.kind, finding.severity) == (
        "public.t.columns.email",
        MISSING,
        CRITICAL,
    )
    assert '"Email" exists' in finding.message


def test_quoted_table_and_schema_names_keep_their_case() -> None:
    claim = store({"schemas": [{"name": '"App"', "tables": [{"name": '"User"'}]}]})
    assert compare_postgres(claim, observed(table("User", schema="App"), schemas=("App",))) == []


# --- columns --------------------------------------------------------------------


def test_nullability_difference_is_critical() -> None:
    assert brief(column_findings({"nullable": False}, col("c", nullable=True))) == [
        ("public.t.columns.c.nullable", "different", "critical", "false", "true")
    ]


def test_missing_column_is_critical() -> None:
    claim = store(one_table({"name": "t", "columns": [{"name": "email", "type": "text"}]}))
    assert brief(compare_postgres(claim, observed(table("t", col("id"))))) == [
        ("public.t.columns.email", "missing", "critical", "text", None)
    ]


def test_identity_difference_is_a_warning() -> None:
    assert brief(column_findings({"identity": "always"}, col("id", identity="by default"))) == [
        ("public.t.columns.id.identity", "different", "warning", "always", "by default")
    ]


def test_generated_column_checks() -> None:
    generated = col("total", "numeric", generated="price * (qty)::numeric")
    assert column_findings({"generated": "price * qty::numeric"}, generated) == []
    assert brief(column_findings({"generated": "price * 2"}, generated)) == [
        (
            "public.t.columns.total.generated",
            "different",
            "warning",
            "price * 2",
            "price * (qty)::numeric",
        )
    ]
    assert brief(column_findings({"generated": "price * 2"}, col("total", "numeric"))) == [
        ("public.t.columns.total.generated", "missing", "critical", "price * 2", None)
    ]


# --- schemas, tables, extensions, database ------------------------------------------


def test_missing_schema_is_one_critical_finding_not_one_per_table() -> None:
    claim = store({"schemas": [{"name": "billing", "tables": [{"name": "a"}, {"name": "b"}]}]})
    assert brief(compare_postgres(claim, observed())) == [
        ("billing", "missing", "critical", None, None)
    ]


def test_missing_table_is_critical() -> None:
    claim = store(one_table({"name": "users", "columns": [{"name": "id"}]}))
    assert brief(compare_postgres(claim, observed(table("orgs")))) == [
        ("public.users", "missing", "critical", None, None)
    ]


def test_missing_extension_is_critical() -> None:
    claim = store({"extensions": ["pgcrypto", "plpgsql", '"uuid-ossp"']})
    assert brief(
        compare_postgres(claim, observed(extensions={"plpgsql": "1.0", "uuid-ossp": "1.1"}))
    ) == [("extensions.pgcrypto", "missing", "critical", "pgcrypto", None)]


def test_another_database_is_critical() -> None:
    assert brief(compare_postgres(store({"database": "app"}), observed(database="postgres"))) == [
        ("database", "different", "critical", "app", "postgres")
    ]


def test_the_database_name_follows_identifier_rules() -> None:
    assert compare_postgres(store({"database": "App"}), observed(database="app")) == []
    assert compare_postgres(store({"database": '"App"'}), observed(database="App")) == []
    assert [
        f.path for f in compare_postgres(store({"database": "App"}), observed(database="App"))
    ] == ["database"]


def test_an_empty_postgres_block_checks_nothing() -> None:
    assert compare_postgres(store({}), observed(table("t", col("c")))) == []


# --- primary keys, uniques, foreign keys ------------------------------------------------


def test_primary_key_cases() -> None:
    claim = store(one_table({"name": "t", "primaryKey": ["id"]}))
    assert compare_postgres(claim, observed(table("t", constraints=(pk("id"),)))) == []
    assert brief(compare_postgres(claim, observed(table("t")))) == [
        ("public.t.primaryKey", "missing", "critical", "(id)", None)
    ]
    assert brief(
        compare_postgres(claim, observed(table("t", constraints=(pk("id", "org_id"),))))
    ) == [("public.t.primaryKey", "different", "critical", "(id)", "(id,org_id)")]


@pytest.mark.parametrize(
    ("claim_columns", "constraints", "indexes"),
    [
        (["email"], (unique("email"),), ()),
        (["email", "org_id"], (unique("org_id", "email"),), ()),  # a set of columns
        (["email"], (pk("email"),), ()),
        (["email"], (), (index("t_email_idx", "email", unique=True),)),  # prisma's @unique
    ],
)
def test_a_documented_unique_is_satisfied_by_any_enforcement(
    claim_columns: list[str],
    constraints: tuple[PgConstraintObs, ...],
    indexes: tuple[PgIndexObs, ...],
) -> None:
    claim = store(one_table({"name": "t", "uniques": [claim_columns]}))
    assert (
        compare_postgres(claim, observed(table("t", constraints=constraints, indexes=indexes)))
        == []
    )


def test_a_missing_unique_is_critical_and_a_partial_unique_index_does_not_count() -> None:
    claim = store(one_table({"name": "t", "uniques": [["email"]]}))
    partial = index("t_email_idx", "email", unique=True, predicate="deleted_at IS NULL")
    assert brief(compare_postgres(claim, observed(table("t", indexes=(partial,))))) == [
        ("public.t.uniques.(email)", "missing", "critical", "(email)", None)
    ]


FK_CLAIM = {
    "name": "orders",
    "foreignKeys": [
        {
            "columns": ["org_id"],
            "references": {"table": "orgs", "columns": ["id"]},
            "onDelete": "cascade",
        }
    ],
}


@pytest.mark.parametrize(
    ("constraint", "expected"),
    [
        (fk("orders_org_id_fkey", ("org_id",), "orgs", on_delete="cascade"), []),
        (
            None,
            [
                (
                    "public.orders.foreignKeys.(org_id)",
                    "missing",
                    "critical",
                    "(org_id) -> public.orgs(id)",
                    None,
                )
            ],
        ),
        (
            fk("orders_org_id_fkey", ("org_id",), "orgs", on_delete="restrict"),
            [
                (
                    "public.orders.foreignKeys.(org_id).onDelete",
                    "different",
                    "critical",
                    "cascade",
                    "restrict",
                )
            ],
        ),
        (
            fk("orders_org_id_fkey", ("org_id",), "organisations", on_delete="cascade"),
            [
                (
                    "public.orders.foreignKeys.(org_id).references",
                    "different",
                    "critical",
                    "public.orgs(id)",
                    "public.organisations(id)",
                )
            ],
        ),
        (
            fk("orders_org_id_fkey", ("org_id",), "orgs", schema="billing", on_delete="cascade"),
            [
                (
                    "public.orders.foreignKeys.(org_id).references",
                    "different",
                    "critical",
                    "public.orgs(id)",
                    "billing.orgs(id)",
                )
            ],
        ),
    ],
)
def test_foreign_key_cases(
    constraint: PgConstraintObs | None, expected: list[tuple[Any, ...]]
) -> None:
    constraints = (constraint,) if constraint else ()
    assert (
        brief(
            compare_postgres(
                store(one_table(FK_CLAIM)), observed(table("orders", constraints=constraints))
            )
        )
        == expected
    )


@pytest.mark.parametrize("action", ["cascade", "restrict", "no action", "set null", "set default"])
def test_every_referential_action_compares(action: str) -> None:
    claim_fk = {
        "columns": ["org_id"],
        "references": {"table": "orgs", "columns": ["id"]},
        "onUpdate": action,
    }
    claim = store(one_table({"name": "orders", "foreignKeys": [claim_fk]}))
    same = fk("f", ("org_id",), "orgs", on_update=action)
    other = fk("f", ("org_id",), "orgs", on_update="cascade" if action != "cascade" else "restrict")
    assert compare_postgres(claim, observed(table("orders", constraints=(same,)))) == []
    assert brief(compare_postgres(claim, observed(table("orders", constraints=(other,))))) == [
        (
            "public.orders.foreignKeys.(org_id).onUpdate",
            "different",
            "critical",
            action,
            other.on_update,
        )
    ]


def test_a_named_foreign_key_found_under_another_name_is_a_name_warning() -> None:
    claim_fk = {
        "name": "fk_org",
        "columns": ["org_id"],
        "references": {"table": "orgs", "columns": ["id"]},
    }
    claim = store(one_table({"name": "orders", "foreignKeys": [claim_fk]}))
    found = observed(table("orders", constraints=(fk("orders_org_id_fkey", ("org_id",), "orgs"),)))
    assert brief(compare_postgres(claim, found)) == [
        (
            "public.orders.foreignKeys.fk_org.name",
            "different",
            "warning",
            "fk_org",
            "orders_org_id_fkey",
        )
    ]


def test_a_foreign_key_to_another_schema_names_it() -> None:
    claim_fk = {
        "columns": ["org_id"],
        "references": {"schema": "billing", "table": "orgs", "columns": ["id"]},
    }
    claim = store(one_table({"name": "orders", "foreignKeys": [claim_fk]}))
    found = observed(table("orders", constraints=(fk("f", ("org_id",), "orgs", schema="billing"),)))
    assert compare_postgres(claim, found) == []


# --- indexes ----------------------------------------------------------------------

INDEXED = (col("org_id"), col("email", "character varying(255)"), col("status", "text"))


@pytest.mark.parametrize(
    ("claim_index", "observed_index", "expected"),
    [
        ({"name": "t_org_idx", "columns": ["org_id"]}, index("t_org_idx", "org_id"), []),
        ({"columns": ["org_id"]}, index("whatever_name", "org_id"), []),
        ({"columns": ["lower(email)"]}, index("t_lower", "lower((email)::text)"), []),
        ({"columns": ["LOWER(email)"]}, index("t_lower", "lower(email::text)"), []),
        (
            {"name": "t_org_idx", "columns": ["org_id"]},
            None,
            [("public.t.indexes.t_org_idx", "missing", "warning", "(org_id)", None)],
        ),
        (
            {"name": "t_org_idx", "columns": ["org_id"]},
            index("t_other", "org_id"),
            [("public.t.indexes.t_org_idx.name", "different", "warning", "t_org_idx", "t_other")],
        ),
        (
            {"name": "t_org_idx", "columns": ["org_id", "email"]},
            index("t_org_idx", "org_id"),
            [
                (
                    "public.t.indexes.t_org_idx.columns",
                    "different",
                    "warning",
                    "(org_id,email)",
                    "(org_id)",
                )
            ],
        ),
        (
            {"name": "t_org_idx", "columns": ["org_id"], "unique": True},
            index("t_org_idx", "org_id"),
            [("public.t.indexes.t_org_idx.unique", "different", "critical", "true", "false")],
        ),
        (
            {"name": "t_org_idx", "columns": ["org_id"], "unique": False},
            index("t_org_idx", "org_id", unique=True),
            [("public.t.indexes.t_org_idx.unique", "different", "warning", "false", "true")],
        ),
        (
            {"name": "t_org_idx", "columns": ["org_id"], "method": "HASH"},
            index("t_org_idx", "org_id", method="hash"),
            [],
        ),
        (
            {"name": "t_org_idx", "columns": ["org_id"], "method": "gin"},
            index("t_org_idx", "org_id"),
            [("public.t.indexes.t_org_idx.method", "different", "warning", "gin", "btree")],
        ),
        (
            {"name": "t_org_idx", "columns": ["org_id"], "where": "status = 'active'"},
            index("t_org_idx", "org_id", predicate="status = 'active'::text"),
            [],
        ),
        (
            {"name": "t_org_idx", "columns": ["org_id"], "where": "status = 'active'"},
            index("t_org_idx", "org_id", predicate="status = 'gone'::text"),
            [
                (
                    "public.t.indexes.t_org_idx.where",
                    "different",
                    "warning",
                    "status = 'active'",
                    "status = 'gone'::text",
                )
            ],
        ),
        (
            {"name": "t_org_idx", "columns": ["org_id"], "where": "status = 'active'"},
            index("t_org_idx", "org_id"),
            [
                (
                    "public.t.indexes.t_org_idx.where",
                    "different",
                    "warning",
                    "status = 'active'",
                    None,
                )
            ],
        ),
    ],
)
def test_index_cases(
    claim_index: dict[str, Any], observed_index: PgIndexObs | None, expected: list[tuple[Any, ...]]
) -> None:
    claim = store(one_table({"name": "t", "indexes": [claim_index]}))
    indexes = (observed_index,) if observed_index else ()
    assert (
        brief(compare_postgres(claim, observed(table("t", *INDEXED, indexes=indexes)))) == expected
    )


# --- partitioning -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "key", "expected"),
    [
        ("range", ("created_at",), []),
        (
            None,
            (),
            [
                (
                    "public.events.partitioning",
                    "different",
                    "critical",
                    "range (created_at)",
                    "not partitioned",
                )
            ],
        ),
        (
            "list",
            ("created_at",),
            [("public.events.partitioning.strategy", "different", "critical", "range", "list")],
        ),
        (
            "range",
            ("id",),
            [("public.events.partitioning.key", "different", "critical", "(created_at)", "(id)")],
        ),
    ],
)
def test_partitioning_cases(
    strategy: str | None, key: tuple[str, ...], expected: list[tuple[Any, ...]]
) -> None:
    claim = store(
        one_table({"name": "events", "partitioning": {"strategy": "range", "key": ["created_at"]}})
    )
    events = table(
        "events", col("id"), col("created_at"), partition_strategy=strategy, partition_key=key
    )
    assert brief(compare_postgres(claim, observed(events))) == expected


def test_an_expression_partition_key_compares_normalised() -> None:
    claim = store(
        one_table({"name": "e", "partitioning": {"strategy": "list", "key": ["lower(region)"]}})
    )
    events = table(
        "e", col("region", "text"), partition_strategy="list", partition_key=("lower(region)",)
    )
    assert compare_postgres(claim, observed(events)) == []


# --- strict mode --------------------------------------------------------------------


def strict_world() -> ObservedPostgres:
    users = table(
        "users",
        col("id"),
        col("email", "text"),
        col("extra", "text"),
        constraints=(
            pk("id", name="users_pkey"),
            unique("email", name="users_email_key"),
            fk("users_org_fkey", ("id",), "orgs"),
        ),
        indexes=(
            index("users_pkey", "id", unique=True, primary=True),
            index("users_email_key", "email", unique=True),
            index("users_extra_idx", "extra"),
        ),
    )
    events = table("events", col("id"), partition_strategy="range", partition_key=("id",))
    partition = table("events_2024", col("id"), partition_of="public.events")
    others = (
        table("orgs", col("id")),
        table("flyway_schema_history", col("version", "text")),
        table("active_users", col("id"), kind="view"),
        table("audit_log", col("id"), schema="audit"),
    )
    return observed(users, events, partition, *others, schemas=("audit", "public"))


STRICT_CLAIM = {
    "schemas": [
        {
            "name": "public",
            "tables": [
                {
                    "name": "users",
                    "columns": [{"name": "id"}, {"name": "email"}],
                    "primaryKey": ["id"],
                    "uniques": [["email"]],
                    "foreignKeys": [],
                    "indexes": [],
                },
                {"name": "events", "partitioning": {"strategy": "range", "key": ["id"]}},
            ],
        }
    ]
}


def test_strict_mode_reports_undocumented_tables_columns_indexes_and_foreign_keys() -> None:
    assert brief(compare_postgres(store(STRICT_CLAIM, strict=True), strict_world())) == [
        ("public.users.columns.extra", "unexpected", "warning", None, "text"),
        (
            "public.users.foreignKeys.users_org_fkey",
            "unexpected",
            "warning",
            None,
            "(id) -> public.orgs(id)",
        ),
        ("public.users.indexes.users_extra_idx", "unexpected", "warning", None, "(extra)"),
        ("public.orgs", "unexpected", "warning", None, "table"),
    ]


def test_strict_mode_never_counts_partitions_constraint_indexes_views_or_migration_tables() -> None:
    paths = [f.path for f in compare_postgres(store(STRICT_CLAIM, strict=True), strict_world())]
    # Strict mode did count here: the undocumented table and index beside the ones it skips.
    assert {"public.orgs", "public.users.indexes.users_extra_idx"} <= set(paths)
    for never in (
        "events_2024",
        "users_pkey",
        "users_email_key",
        "flyway_schema_history",
        "active_users",
    ):
        assert not any(never in path for path in paths), never


def test_strict_mode_counts_only_inside_the_named_schemas() -> None:
    paths = [f.path for f in compare_postgres(store(STRICT_CLAIM, strict=True), strict_world())]
    assert "public.orgs" in paths  # an undocumented table of a named schema is counted
    assert not any(path.startswith("audit") for path in paths)


def test_strict_mode_scope_globs_limit_what_counts() -> None:
    found = compare_postgres(store(STRICT_CLAIM, strict=True, scope=["org*"]), strict_world())
    assert brief(found) == [("public.orgs", "unexpected", "warning", None, "table")]
    found = compare_postgres(
        store(STRICT_CLAIM, strict=True, scope=["public.users"]), strict_world()
    )
    assert [f.path for f in found] == [
        "public.users.columns.extra",
        "public.users.foreignKeys.users_org_fkey",
        "public.users.indexes.users_extra_idx",
    ]


def test_without_strict_nothing_is_unexpected() -> None:
    assert compare_postgres(store(STRICT_CLAIM), strict_world()) == []


def test_strict_mode_leaves_alone_what_the_claim_leaves_out() -> None:
    claim = {"schemas": [{"name": "public", "tables": [{"name": "users"}]}, {"name": "audit"}]}
    assert brief(compare_postgres(store(claim, strict=True), strict_world())) == [
        ("public.events", "unexpected", "warning", None, "partitioned table"),  # not its partition
        ("public.orgs", "unexpected", "warning", None, "table"),
    ]


def test_a_unique_index_standing_for_a_documented_unique_is_not_unexpected() -> None:
    claim = store(one_table({"name": "t", "uniques": [["email"]], "indexes": []}), strict=True)
    found = observed(
        table("t", col("email"), indexes=(index("t_email_key", "email", unique=True),))
    )
    assert compare_postgres(claim, found) == []


# --- migrations -----------------------------------------------------------------------


def history(tool: str, *applied: str, **fields: Any) -> PgMigrationHistory:
    return PgMigrationHistory(
        tool=tool, table=f"public.{tool}", found=True, applied=applied, **fields
    )


def migration_findings(
    tool: str, latest: str | None, found: PgMigrationHistory
) -> list[tuple[Any, ...]]:
    claim = store({"migrations": {"tool": tool, **({"latest": latest} if latest else {})}})
    return brief(compare_postgres(claim, observed(migrations=found)))


BEHIND = ("migrations.latest", "missing", "critical")
AHEAD = ("migrations.latest", "different", "warning")

MIGRATION_CASES = [
    # drizzle: created_at (the journal's `when`), its hash, or the tag by journal index
    ("drizzle", "1700000000002", history("drizzle", "1700000000001", "1700000000002"), []),
    ("drizzle", "0001_add_users", history("drizzle", "1700000000001", "1700000000002"), []),
    ("drizzle", "0000_init", history("drizzle", "1700000000001", "1700000000002"), [AHEAD]),
    ("drizzle", "0002_next", history("drizzle", "1700000000001", "1700000000002"), [BEHIND]),
    ("drizzle", "h2", history("drizzle", "1", "2", aliases=(("h1",), ("h2",))), []),
    # flyway: version in any spelling, or the script
    (
        "flyway",
        "2.1",
        history("flyway", "1", "2.1", aliases=(("V1__a.sql",), ("V2_1__b.sql",))),
        [],
    ),
    ("flyway", "2_1", history("flyway", "1", "2.1"), []),
    ("flyway", "2.1.0", history("flyway", "1", "2.1"), []),
    (
        "flyway",
        "V2_1__b.sql",
        history("flyway", "1", "2.1", aliases=(("V1__a.sql",), ("V2_1__b.sql",))),
        [],
    ),
    ("flyway", "3", history("flyway", "1", "2.1"), [BEHIND]),
    ("flyway", "1", history("flyway", "1", "2.1"), [AHEAD]),
    # golang-migrate: the one current version, numerically
    ("golang-migrate", "000006_add_x", history("golang-migrate", "6"), []),
    ("golang-migrate", "20240101120000", history("golang-migrate", "20240101120000"), []),
    ("golang-migrate", "7", history("golang-migrate", "6"), [BEHIND]),
    ("golang-migrate", "5", history("golang-migrate", "6"), [AHEAD]),
    # alembic: one of the current heads
    ("alembic", "ae1027a6acf", history("alembic", "ae1027a6acf"), []),
    ("alembic", "ae1027a6acf", history("alembic", "1975ea83b712", "ae1027a6acf"), []),
    (
        "alembic",
        "1975ea83b712",
        history("alembic", "ae1027a6acf"),
        [("migrations.latest", "different", "critical")],
    ),
    # prisma: migration_name
    ("prisma", "20240102_b", history("prisma", "20240101_a", "20240102_b"), []),
    ("prisma", "20240103_c", history("prisma", "20240101_a", "20240102_b"), [BEHIND]),
    # liquibase: changeset id, filename::id::author, or tag
    (
        "liquibase",
        "2",
        history("liquibase", "1", "2", aliases=(("a.xml::1::me",), ("a.xml::2::me", "v2"))),
        [],
    ),
    (
        "liquibase",
        "v2",
        history("liquibase", "1", "2", aliases=(("a.xml::1::me",), ("a.xml::2::me", "v2"))),
        [],
    ),
    ("liquibase", "1", history("liquibase", "1", "2", aliases=((), ())), [AHEAD]),
    # latest left out: only the history's health is checked
    ("flyway", None, history("flyway", "1"), []),
]


@pytest.mark.parametrize(("tool", "latest", "found", "expected"), MIGRATION_CASES)
def test_migration_latest_per_tool(
    tool: str, latest: str | None, found: PgMigrationHistory, expected: list[tuple[str, str, str]]
) -> None:
    assert [f[:3] for f in migration_findings(tool, latest, found)] == expected


def test_a_missing_history_table_is_critical() -> None:
    found = PgMigrationHistory(tool="flyway", table="public.flyway_schema_history", found=False)
    assert migration_findings("flyway", "1", found) == [
        ("migrations", "missing", "critical", "flyway history", None)
    ]


def test_a_failed_history_is_critical() -> None:
    found = history("flyway", "1", failed=("2",))
    assert migration_findings("flyway", None, found) == [
        ("migrations.failed", "different", "critical", "none", "2")
    ]


def test_a_dirty_history_is_critical() -> None:
    found = history("golang-migrate", "6", dirty=True)
    assert migration_findings("golang-migrate", "6", found) == [
        ("migrations.dirty", "different", "critical", "false", "true at version 6")
    ]


def test_a_rolled_back_prisma_migration_is_not_a_failure() -> None:
    found = history("prisma", "20240101_a", rolled_back=("20240101_a",))
    assert migration_findings("prisma", "20240101_a", found) == []


def test_findings_describe_themselves_in_one_line() -> None:
    (finding,) = column_findings({"type": "int"}, col("c", "bigint"))
    assert finding.describe() == "public.t.columns.c.type: expected integer, observed bigint"


# --- spellings PostgreSQL prints its own way (found against PostgreSQL 15) -----------

REWRITTEN_EXPRESSIONS = [
    # a cast's type is printed in its canonical name
    ("now()::timestamp", "now()::timestamp without time zone"),
    ("(data->>'id')::int", "((data ->> 'id'::text))::integer"),
    ("created::timestamptz", "created::timestamp with time zone"),
    ("name::varchar(10)", "name::character varying(10)"),
    # a typed literal is a cast of the literal
    ("now() + interval '30 days'", "now() + '30 days'::interval"),
    ("created > date '2020-01-01'", "created > '2020-01-01'::date"),
    (
        "created > timestamp with time zone '2020-01-01'",
        "created > '2020-01-01'::timestamp with time zone",
    ),
    # CAST(x AS t) is x::t
    ("CAST(data->>'n' AS integer) > 0", "((data ->> 'n'::text)::integer) > 0"),
    ("char_length(trim(name)) > 0", "char_length(TRIM(BOTH FROM name)) > 0"),
    # BETWEEN is two comparisons, NOT BETWEEN their negation
    (
        "char_length(name) BETWEEN 4 AND 12",
        "char_length(name::text) >= 4 AND char_length(name::text) <= 12",
    ),
    ("qty NOT BETWEEN 1 AND 9", "qty < 1 OR qty > 9"),
    ("qty BETWEEN 1 AND 9 OR free", "qty >= 1 AND qty <= 9 OR free"),
    ("NOT (qty BETWEEN 1 AND 9)", "NOT (qty >= 1 AND qty <= 9)"),
    # pg_get_expr parenthesises nested operators that precedence already orders
    (
        "coalesce(status, 'none') || ':' || qty::text",
        "(COALESCE(status, 'none'::text) || ':'::text) || qty::text",
    ),
    ("price * qty > 100", "(price * qty::numeric) > 100::numeric"),
    ("data->>'kind' = 'a'", "(data ->> 'kind'::text) = 'a'::text"),
    ("a + b * c", "a + b * c"),
    ("a * b + c", "a * b + c"),
    ("NOT (a = b)", "NOT a = b"),
    ("(a + b) IS NOT NULL", "(a + b) IS NOT NULL"),
]

REWRITE_COLUMNS = (
    col("qty"),
    col("a"),
    col("b"),
    col("c"),
    col("price", "numeric"),
    col("status", "text"),
    col("name", "character varying(20)"),
    col("data", "jsonb"),
    col("created", "timestamp with time zone"),
    col("free", "boolean"),
)


@pytest.mark.parametrize(("claim_expression", "definition"), REWRITTEN_EXPRESSIONS)
def test_expressions_postgres_prints_its_own_way_never_differ(
    claim_expression: str, definition: str
) -> None:
    claim = store(
        one_table({"name": "t", "checks": [{"name": "c_check", "expression": claim_expression}]})
    )
    found = observed(table("t", *REWRITE_COLUMNS, constraints=(check("c_check", definition),)))
    assert compare_postgres(claim, found) == []


@pytest.mark.parametrize(
    ("claim_expression", "definition"),
    [
        ("a - (b - c)", "a - b - c"),  # not associative: the parentheses matter
        ("(a + b) * c", "a + b * c"),
        ("a || (b || c)", "(a || b) || c"),
        ("now()::timestamp", "now()::date"),
        ("now() + interval '30 days'", "now() + '31 days'::interval"),
        ("qty BETWEEN 1 AND 9", "qty >= 1 AND qty <= 10"),
        ("NOT (qty BETWEEN 1 AND 9)", "NOT qty >= 1 AND qty <= 9"),
        ("NOT (a = b AND c = 1)", "NOT a = b AND c = 1"),
        ("(data->>'id')::int", "data ->> 'id'::text::integer"),
    ],
)
def test_expressions_that_only_look_alike_still_differ(
    claim_expression: str, definition: str
) -> None:
    claim = store(
        one_table({"name": "t", "checks": [{"name": "c_check", "expression": claim_expression}]})
    )
    found = observed(table("t", *REWRITE_COLUMNS, constraints=(check("c_check", definition),)))
    assert [f.path for f in compare_postgres(claim, found)] == [
        "public.t.checks.c_check.expression"
    ]


@pytest.mark.parametrize(
    ("claim_columns", "observed_columns", "equal"),
    [
        (["created_at DESC"], ("created_at DESC",), True),
        (["created_at desc nulls first"], ("created_at DESC",), True),
        (["created_at ASC"], ("created_at",), True),
        (["created_at NULLS LAST"], ("created_at",), True),
        (["created_at DESC NULLS LAST"], ("created_at DESC NULLS LAST",), True),
        (["created_at NULLS FIRST"], ("created_at NULLS FIRST",), True),
        (['"UserId"', "created_at DESC"], ("UserId", "created_at DESC"), True),
        (['"UserId" DESC'], ('"UserId" DESC',), True),
        (["lower(email) DESC"], ("lower(email) DESC",), True),
        (["created_at"], ("created_at DESC",), False),
        (["created_at DESC"], ("created_at",), False),
        (["created_at DESC"], ("created_at DESC NULLS LAST",), False),
        (["userid DESC"], ('"UserId" DESC',), False),
    ],
)
def test_index_column_ordering_compares_with_its_defaults(
    claim_columns: list[str], observed_columns: tuple[str, ...], equal: bool
) -> None:
    claim = store(
        one_table({"name": "t", "indexes": [{"name": "t_idx", "columns": claim_columns}]})
    )
    columns = (col("created_at", "timestamp with time zone"), col("UserId"), col("email", "text"))
    found = observed(table("t", *columns, indexes=(index("t_idx", *observed_columns),)))
    paths = [f.path for f in compare_postgres(claim, found)]
    assert paths == ([] if equal else ["public.t.indexes.t_idx.columns"])


def test_an_unnamed_index_matches_the_index_that_fits_all_it_states() -> None:
    # A plain index and a partial unique one on the same column, the plain one first by name.
    claim = store(
        one_table(
            {
                "name": "t",
                "indexes": [
                    {"columns": ["email"], "unique": True, "where": "deleted_at IS NULL"},
                    {"columns": ["email"], "unique": False},
                ],
            }
        )
    )
    found = observed(
        table(
            "t",
            col("email", "text"),
            col("deleted_at", "timestamp with time zone"),
            indexes=(
                index("t_email_a", "email"),
                index("t_email_b", "email", unique=True, predicate="deleted_at IS NULL"),
            ),
        )
    )
    assert compare_postgres(claim, found) == []
