"""PostgreSQL names and index key parts as a claim writes them and as findings print them. Pure.

A key part is `expression [COLLATE collation] [opclass] [ASC|DESC] [NULLS FIRST|LAST]`,
as CREATE INDEX takes it. The claim's collation and operator class are split off
here and compared on their own; a part that leaves them out does not check them.
Names are printed as PostgreSQL writes them, quoted only where needed, so that
expected and observed read alike (`"isActive"` on both sides).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from datarch.claims import pg_identifier
from datarch.comparison.postgres_normalisation import (
    Schemas,
    is_identifier,
    quote_identifier,
    split_ordering,
)

_IDENT = r'(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)'
_QUALIFIED = rf"{_IDENT}(?:\.{_IDENT})?"
_TRAILING_NAME = re.compile(rf"\s+(?P<name>{_QUALIFIED})\s*$")
_COLLATE = re.compile(rf"\s+collate\s+(?P<name>{_QUALIFIED})\s*$", re.IGNORECASE)


def quote_qualified(name: str) -> str:
    """`schema.name` of raw names, each part quoted where needed."""
    schema, dot, rest = name.partition(".")
    return f"{quote_identifier(schema)}.{quote_identifier(rest)}" if dot else quote_identifier(name)


@dataclass(frozen=True, slots=True)
class KeyPart:
    """One part of a claim's index key: what it orders by and the options it names."""

    body: str  # the column or expression with its ordering, as written
    collation: str | None  # as written, e.g. `"C"`
    opclass: str | None  # as written, e.g. `gin_trgm_ops`, `public.gin_trgm_ops`


def split_key_part(text: str) -> KeyPart:
    """`"title" gin_trgm_ops` -> ("title", None, "gin_trgm_ops");
    `name COLLATE "C" DESC` -> ("name DESC", '"C"', None)."""
    body, ordering = split_ordering(text)
    opclass = collation = None
    match = _TRAILING_NAME.search(body)
    if match is not None:
        before = body[: match.start()].rstrip()
        # An operator class follows a whole operand: a name or a bracketed expression.
        if not before.lower().endswith(" collate") and (
            before.endswith(")") or is_identifier(before) or _COLLATE.search(before)
        ):
            opclass, body = match.group("name"), before
    match = _COLLATE.search(body)
    if match is not None:
        collation, body = match.group("name"), body[: match.start()].rstrip()
    return KeyPart(f"{body} {ordering}" if ordering else body, collation, opclass)


def names_equal(expected: str, observed: str, schemas: Schemas) -> bool:
    """A claim's possibly qualified name against the catalog's (qualified outside pg_catalog):
    an unqualified name is read in `schemas`, then pg_catalog."""
    left, right = _parts(expected), _parts(observed)
    if left == right:
        return True
    resolved = (*schemas, "pg_catalog")
    if len(left) == 1 and len(right) == 2:
        return left[0] == right[1] and right[0] in resolved
    if len(left) == 2 and len(right) == 1:  # the catalog leaves pg_catalog out
        return left == ("pg_catalog", right[0])
    return False


def _parts(name: str) -> tuple[str, ...]:
    match = re.fullmatch(rf"(?P<first>{_IDENT})(?:\.(?P<second>{_IDENT}))?", name.strip())
    if match is None:
        return (name.strip(),)
    first, second = match.group("first"), match.group("second")
    return (pg_identifier(first), pg_identifier(second)) if second else (pg_identifier(first),)


def collations_equal(expected: str, observed: str | None, schemas: Schemas) -> bool:
    """None observed: the column's own collation, which a claim names as `"default"`."""
    if observed is None:
        return _parts(expected) in (("default",), ("pg_catalog", "default"))
    return names_equal(expected, observed, schemas)


def render_part(body: str, collation: str | None, opclass: str | None) -> str:
    """A key part printed as pg_get_indexdef writes it: name quoted where needed, then
    COLLATE, operator class and ordering."""
    expression, ordering = split_ordering(body)
    if is_identifier(expression):
        expression = quote_identifier(pg_identifier(expression))
    parts = [expression]
    if collation:
        parts.append(f"COLLATE {collation}")
    if opclass:
        parts.append(opclass)
    if ordering:
        parts.append(ordering.upper())
    return " ".join(parts)
