"""Write a datarch claim from a DDL file's text (never from a catalog), in the authors' spelling.

How the corpus claims here were first written; they were then checked by hand. Statements
are split and classified with libpg_query (pglast, not a dependency of datarch: install it
to run this); every type, default, expression and key part is the source text itself, cut
out by token offsets, and ALTER, RENAME and DROP statements are replayed in order.
PL/pgSQL bodies are not read (see river.claim.yaml's note).
Usage: python write_claim.py ddl.sql > claim.yaml
"""

from __future__ import annotations

import json
import sys
from typing import Any

import yaml
from pglast import parser
from pglast.parser import parse_sql_json

STATEMENT = [0]  # where the statement being read starts
STOP_WORDS = {
    "NOT",
    "NULL_P",
    "DEFAULT",
    "CONSTRAINT",
    "PRIMARY",
    "REFERENCES",
    "UNIQUE",
    "CHECK",
    "GENERATED",
    "COLLATE",
}


class _ByteText:
    """Slices by byte offset (libpg_query's locations), returning str."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw

    def __getitem__(self, item: slice) -> str:
        return self.raw[item].decode("utf-8")


class Source:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = parser.scan(text)
        self.by_start = {t.start: i for i, t in enumerate(self.tokens)}

    def index_at(self, offset: int) -> int:
        if offset in self.by_start:
            return self.by_start[offset]
        for i, t in enumerate(self.tokens):
            if t.start >= offset:
                return i
        raise KeyError(offset)

    def span(self, first: int, last: int) -> str:
        text = self.text[self.tokens[first].start : self.tokens[last].end + 1]
        for t in self.tokens[first : last + 1]:  # comments are not part of what is written
            if t.name in ("SQL_COMMENT", "C_COMMENT"):
                text = text.replace(self.text[t.start : t.end + 1], " ")
        return " ".join(text.split()) if "\n" in text else text.strip()

    def until_stop(self, first: int, stops: set[str]) -> int:
        """Index of the last token of the clause starting at `first`."""
        depth = 0
        i = first
        while i < len(self.tokens):
            t = self.tokens[i]
            ch = self.text[t.start : t.end + 1]
            if ch in ("(", "["):
                depth += 1
            elif ch in (")", "]"):
                if depth == 0:
                    return i - 1
                depth -= 1
            elif depth == 0 and (ch in (",", ";") or t.name in stops):
                return i - 1
            i += 1
        return i - 1

    def paren_group(self, opening: int) -> tuple[int, int]:
        """(first, last) inside the parentheses opening at token `opening`."""
        depth = 0
        for i in range(opening, len(self.tokens)):
            ch = self.text[self.tokens[i].start : self.tokens[i].end + 1]
            if ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
                if depth == 0:
                    return opening + 1, i - 1
        raise ValueError

    def split_commas(self, first: int, last: int) -> list[str]:
        parts, depth, start = [], 0, first
        for i in range(first, last + 1):
            ch = self.text[self.tokens[i].start : self.tokens[i].end + 1]
            if ch in "([":
                depth += 1
            elif ch in ")]":
                depth -= 1
            elif ch == "," and depth == 0:
                parts.append(self.span(start, i - 1))
                start = i + 1
        parts.append(self.span(start, last))
        return parts

    def word(self, i: int) -> str:
        return self.text[self.tokens[i].start : self.tokens[i].end + 1]

    def next_word(self, offset: int, word: str) -> int:
        i = self.index_at(offset)
        while self.word(i).upper() != word:
            i += 1
        return i


def name_text(source: Source, location: int) -> str:
    """The identifier at `location` as written (quotes kept)."""
    return source.word(source.index_at(location))


def qualified_words(source: Source, location: int) -> tuple[str | None, str]:
    i = source.index_at(location)
    first = source.word(i)
    if i + 2 < len(source.tokens) and source.word(i + 1) == ".":
        return first, source.word(i + 2)
    return None, first


class Claim:
    def __init__(self, default_schema: str = "public") -> None:
        self.default_schema = default_schema
        self.tables: dict[tuple[str, str], dict[str, Any]] = {}
        self.order: list[str] = []
        self.extensions: list[str] = []
        self.aliases: dict[tuple[str, str], str] = {}  # folded key -> spelled

    def key(self, schema: str | None, name: str) -> tuple[str, str]:
        return (fold(schema) if schema else fold(self.default_schema), fold(name))

    def table(self, schema: str | None, name: str) -> dict[str, Any]:
        key = self.key(schema, name)
        if key not in self.tables:
            self.tables[key] = {"name": name, "columns": []}
        return self.tables[key]


def fold(name: str) -> str:
    return name[1:-1].replace('""', '"') if name.startswith('"') else name.lower()


ACTIONS = {"a": None, "r": "restrict", "c": "cascade", "n": "set null", "d": "set default"}


def constraint_entry(
    source: Source, table: dict[str, Any], con: dict[str, Any], column: str | None
) -> None:
    kind = con["contype"]
    name = con.get("conname")
    location = con["location"]
    spelled_name = None
    if name:
        i = source.index_at(location)
        # CONSTRAINT name ...
        spelled_name = source.word(i + 1) if source.word(i).upper() == "CONSTRAINT" else name
    if kind == "CONSTR_PRIMARY":
        cols = [column] if column else key_names(source, con, "keys", location)
        table["primaryKey"] = cols
        for c in table["columns"]:  # a primary key's columns are NOT NULL
            if fold(c["name"]) in {fold(x) for x in cols}:
                c["nullable"] = False
    elif kind == "CONSTR_UNIQUE":
        cols = [column] if column else key_names(source, con, "keys", location)
        table.setdefault("uniques", []).append(cols)
    elif kind == "CONSTR_FOREIGN":
        cols = [column] if column else key_names(source, con, "fk_attrs", location)
        ref = con["pktable"]
        ref_schema, ref_table = qualified_words(source, ref["location"])
        ref_cols = ref_column_names(source, con, ref["location"])
        key: dict[str, Any] = {}
        if spelled_name:
            key["name"] = spelled_name
        key["columns"] = cols
        key["references"] = {"table": ref_table, "columns": ref_cols}
        if ref_schema:
            key["references"] = {"schema": ref_schema, **key["references"]}
        on_delete = ACTIONS.get(con.get("fk_del_action", "a"))
        on_update = ACTIONS.get(con.get("fk_upd_action", "a"))
        if on_delete:
            key["onDelete"] = on_delete
        if on_update:
            key["onUpdate"] = on_update
        table.setdefault("foreignKeys", []).append(key)
    elif kind == "CONSTR_CHECK":
        i = source.next_word(location, "CHECK")
        first, last = source.paren_group(i + 1)
        expression = source.span(first, last)
        check_name = spelled_name or (
            f"{fold(table['name'])}_{fold(column)}_check" if column else None
        )
        if check_name:
            table.setdefault("checks", []).append({"name": check_name, "expression": expression})


def key_names(source: Source, con: dict[str, Any], field: str, location: int) -> list[str]:
    i = source.index_at(location)
    while source.word(i) != "(":
        i += 1
    first, last = source.paren_group(i)
    return [p.strip() for p in source.split_commas(first, last)]


def ref_column_names(source: Source, con: dict[str, Any], location: int) -> list[str]:
    i = source.index_at(location)
    while i < len(source.tokens) and source.word(i) not in ("(", ",", ";", ")"):
        i += 1
    if source.word(i) != "(":
        return []
    first, last = source.paren_group(i)
    return [p.strip() for p in source.split_commas(first, last)]


def column_entry(source: Source, table: dict[str, Any], col: dict[str, Any]) -> dict[str, Any]:
    name = name_text(source, col["location"])
    type_location = col["typeName"]["location"]
    t0 = source.index_at(type_location)
    t1 = source.until_stop(t0, STOP_WORDS)
    entry: dict[str, Any] = {"name": name, "type": source.span(t0, t1)}
    nullable = True
    for c in col.get("constraints", []):
        con = c["Constraint"]
        kind = con["contype"]
        if kind == "CONSTR_NOTNULL":
            nullable = False
        elif kind == "CONSTR_PRIMARY":
            nullable = False
            constraint_entry(source, table, con, name)
        elif kind == "CONSTR_DEFAULT":
            i = source.next_word(con["location"], "DEFAULT")
            entry["default"] = source.span(i + 1, source.until_stop(i + 1, STOP_WORDS))
        elif kind == "CONSTR_IDENTITY":
            entry["identity"] = "always" if con.get("generated_when") == "a" else "by default"
            nullable = False
        elif kind == "CONSTR_GENERATED":
            i = source.next_word(con["location"], "AS")
            first, last = source.paren_group(i + 1)
            entry["generated"] = source.span(first, last)
        elif kind in ("CONSTR_UNIQUE", "CONSTR_FOREIGN", "CONSTR_CHECK"):
            constraint_entry(source, table, con, name)
    if entry["type"].lower() in ("serial", "bigserial", "smallserial", "serial4", "serial8"):
        nullable = False
    entry["nullable"] = nullable
    return entry


def read(text: str, default_schema: str = "public") -> Claim:
    source = Source(text)
    claim = Claim(default_schema)
    statements = json.loads(parse_sql_json(text))["stmts"]
    chars = [i for i, ch in enumerate(text) for _ in ch.encode("utf-8")] + [len(text)]

    def to_chars(node: Any) -> None:  # libpg_query counts bytes, the scanner characters
        if isinstance(node, dict):
            for k, v in node.items():
                if k in ("location", "stmt_location") and isinstance(v, int) and v >= 0:
                    node[k] = chars[v]
                else:
                    to_chars(v)
        elif isinstance(node, list):
            for v in node:
                to_chars(v)

    to_chars(statements)
    for raw in statements:
        ((kind, stmt),) = raw["stmt"].items()
        STATEMENT[0] = raw.get("stmt_location", 0)
        handle(source, claim, kind, stmt, None)
    return claim


def relation(stmt: dict[str, Any], source: Source, schema: str | None) -> tuple[str | None, str]:
    rel = stmt.get("relation", stmt)
    s, n = qualified_words(source, rel["location"])
    return (s or schema), n


def handle(
    source: Source, claim: Claim, kind: str, stmt: dict[str, Any], schema: str | None
) -> None:
    if kind == "CreateSchemaStmt":
        for element in stmt.get("schemaElts", []):
            ((k, s),) = element.items()
            handle(source, claim, k, s, stmt["schemaname"])
        return
    if kind == "CreateExtensionStmt":
        claim.extensions.append(stmt["extname"])
    elif kind == "CreateStmt":
        if stmt.get("partbound"):
            return  # a partition: not documented on its own
        s, n = relation(stmt, source, schema)
        table = claim.table(s, n)
        for element in stmt.get("tableElts", []):
            ((k, e),) = element.items()
            if k == "ColumnDef":
                table["columns"].append(column_entry(source, table, e))
            elif k == "Constraint":
                constraint_entry(source, table, e, None)
        spec = stmt.get("partspec")
        if spec:
            i = source.next_word(spec["location"], "BY")
            strategy = source.word(i + 1).lower()
            first, last = source.paren_group(i + 2)
            table["partitioning"] = {
                "strategy": strategy,
                "key": [p.strip() for p in source.split_commas(first, last)],
            }
    elif kind == "AlterTableStmt":
        s, n = relation(stmt, source, schema)
        table = claim.table(s, n)
        for cmd in stmt.get("cmds", []):
            c = cmd["AlterTableCmd"]
            sub = c["subtype"]
            if sub == "AT_AddConstraint":
                constraint_entry(source, table, c["def"]["Constraint"], None)
            elif sub == "AT_ColumnDefault":
                col = find_column(table, c["name"])
                if col is not None:
                    if c.get("def"):
                        # the expression after SET DEFAULT, to the end of this command
                        i = source.next_word(locate_cmd(source, c, stmt), "DEFAULT")
                        col["default"] = source.span(i + 1, source.until_stop(i + 1, set()))
                    else:
                        col.pop("default", None)
            elif sub == "AT_SetNotNull":
                col = find_column(table, c["name"])
                if col is not None:
                    col["nullable"] = False
            elif sub == "AT_DropNotNull":
                col = find_column(table, c["name"])
                if col is not None:
                    col["nullable"] = True
            elif sub == "AT_AddColumn":
                table["columns"].append(column_entry(source, table, c["def"]["ColumnDef"]))
            elif sub == "AT_DropColumn":
                table["columns"] = [x for x in table["columns"] if fold(x["name"]) != c["name"]]
            elif sub == "AT_AlterColumnType":
                col = find_column(table, c["name"])
                if col is not None:
                    t = c["def"]["ColumnDef"]["typeName"]["location"]
                    t0 = source.index_at(t)
                    col["type"] = source.span(t0, source.until_stop(t0, {"USING"} | STOP_WORDS))
            elif sub == "AT_DropConstraint":
                drop_constraint(table, c["name"])
            elif sub == "AT_AttachPartition":
                pass
            else:
                print(f"-- unhandled ALTER {sub} on {n}", file=sys.stderr)
    elif kind == "IndexStmt":
        s, n = relation(stmt, source, schema)
        table = claim.table(s, n)
        i = source.index_at(stmt["relation"]["location"])
        while source.word(i) != "(":
            i += 1
        first, last = source.paren_group(i)
        index: dict[str, Any] = {}
        if stmt.get("idxname"):
            j = source.next_word(STATEMENT[0], "INDEX")
            # CREATE [UNIQUE] INDEX [CONCURRENTLY] [IF NOT EXISTS] name ON
            k = j + 1
            while source.word(k).upper() in ("CONCURRENTLY", "IF", "NOT", "EXISTS"):
                k += 1
            index["name"] = source.word(k)
        index["columns"] = [p.strip() for p in source.split_commas(first, last)]
        if stmt.get("unique"):
            index["unique"] = True
        if stmt.get("accessMethod") and stmt["accessMethod"] != "btree":
            index["method"] = stmt["accessMethod"]
        if stmt.get("whereClause"):
            w = source.next_word(source.tokens[last + 1].start, "WHERE")
            index["where"] = source.span(w + 1, source.until_stop(w + 1, set()))
        if "name" not in index:
            return  # an unnamed index: PostgreSQL names it; documented by its columns only
        table.setdefault("indexes", []).append(index)
    elif kind == "RenameStmt":
        rtype = stmt["renameType"]
        if rtype == "OBJECT_COLUMN":
            s, n = relation(stmt, source, schema)
            table = claim.table(s, n)
            col = find_column(table, stmt["subname"])
            if col is not None:
                col["name"] = spelled_at_end(source, stmt)
        elif rtype == "OBJECT_TABLE":
            s, n = relation(stmt, source, schema)
            old = claim.key(s, n)
            table = claim.tables.pop(old)
            table["name"] = spelled_at_end(source, stmt)
            claim.tables[claim.key(s, table["name"])] = table
        elif rtype == "OBJECT_INDEX":
            s, n = relation(stmt, source, schema)
            for table in claim.tables.values():
                for index in table.get("indexes", []):
                    if fold(index["name"]) == fold(n):
                        index["name"] = spelled_at_end(source, stmt)
        elif rtype == "OBJECT_TYPE":
            old = [x["String"]["sval"] for x in stmt["object"]["List"]["items"]][-1]
            i = source.next_word(STATEMENT[0], "TO")
            new = source.word(i + 1)
            for table in claim.tables.values():
                for c in table["columns"]:
                    base = c["type"].rstrip("[]")
                    if fold(base.split(".")[-1]) == old:
                        c["type"] = new + c["type"][len(base) :]
        elif rtype == "OBJECT_TABCONSTRAINT":
            s, n = relation(stmt, source, schema)
            table = claim.table(s, n)
            for key in table.get("foreignKeys", []) + table.get("checks", []):
                if fold(key.get("name", "")) == stmt["subname"]:
                    key["name"] = spelled_at_end(source, stmt)
    elif kind == "DropStmt":
        if stmt["removeType"] == "OBJECT_INDEX":
            for obj in stmt["objects"]:
                names = [x["String"]["sval"] for x in obj["List"]["items"]]
                for table in claim.tables.values():
                    table["indexes"] = [
                        i for i in table.get("indexes", []) if fold(i["name"]) != names[-1]
                    ]
        elif stmt["removeType"] == "OBJECT_TABLE":
            for obj in stmt["objects"]:
                names = [x["String"]["sval"] for x in obj["List"]["items"]]
                key = (names[0], names[1]) if len(names) == 2 else (claim.default_schema, names[0])
                claim.tables.pop(key, None)


def spelled_at_end(source: Source, stmt: dict[str, Any]) -> str:
    i = source.next_word(stmt["relation"]["location"], "TO")
    return source.word(i + 1)


def locate_cmd(source: Source, cmd: dict[str, Any], stmt: dict[str, Any]) -> int:
    """The offset of ALTER COLUMN <name> for this command."""
    i = source.index_at(stmt["relation"]["location"])
    while True:
        if fold(source.word(i)) == cmd["name"] and source.word(i - 1).upper() in (
            "COLUMN",
            "ALTER",
        ):
            return source.tokens[i].start
        i += 1


def find_column(table: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((c for c in table["columns"] if fold(c["name"]) == name), None)


def drop_constraint(table: dict[str, Any], name: str) -> None:
    for field in ("foreignKeys", "checks"):
        table[field] = [x for x in table.get(field, []) if fold(x.get("name", "")) != name]
        if not table[field]:
            table.pop(field)


def main() -> None:
    path = sys.argv[1]
    default_schema = sys.argv[2] if len(sys.argv) > 2 else "public"
    with open(path, encoding="utf-8") as source_file:
        text = source_file.read()
    claim = read(text, default_schema)
    schemas: dict[str, list[dict[str, Any]]] = {}
    for (schema, _), table in claim.tables.items():
        if not table["columns"] and len(table) == 2:
            continue  # only named by an ALTER ... OWNER (a view): nothing to document
        schemas.setdefault(schema, []).append(table)
    for tables in schemas.values():
        for table in tables:
            for field in [k for k, v in table.items() if v == []]:
                del table[field]
    out = {
        "extensions": sorted(set(claim.extensions)),
        "schemas": [
            {"name": s if s == s.lower() else f'"{s}"', "tables": t} for s, t in schemas.items()
        ],
    }
    yaml.safe_dump(out, sys.stdout, sort_keys=False, width=1000, allow_unicode=True)


if __name__ == "__main__":
    main()
