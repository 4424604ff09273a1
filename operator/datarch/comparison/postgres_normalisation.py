"""How PostgreSQL spellings are made comparable: types, identifiers and expressions. Pure.

Two spellings are made equal only where PostgreSQL itself reads them as the same
thing (an alias, a default typmod, a cast it inserts implicitly, a rewrite its
parser does). A false finding is the worst outcome, but so is hiding a real
one: where equality cannot be shown, the normalised texts are compared and
differ.

Why not libpg_query (pglast) parse trees: a raw parse tree is the text's
grammar, not what PostgreSQL stores. Of the 487 expression pairs in the
corpus (tests/corpus/postgres) that this module shows equal, 62 still differ
as parse trees: parse analysis adds implicit casts (`upper(persontype::text)`),
expands BETWEEN and IN (`= ANY (ARRAY[...])`), and the catalog qualifies names
(`public.uuid_generate_v1()`). Those rules would have to be rewritten on trees;
the parser would only replace the tokenizer, which is not where the cost or the
risk lies (bench/postgres_verify.py: comparison alone 0.07x pg_dump).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from datarch.claims import pg_identifier

# --- types --------------------------------------------------------------------

_TYPE_ALIASES = {
    "int": "integer",
    "int4": "integer",
    "integer": "integer",
    "int8": "bigint",
    "bigint": "bigint",
    "int2": "smallint",
    "smallint": "smallint",
    "bool": "boolean",
    "boolean": "boolean",
    "float8": "double precision",
    "double precision": "double precision",
    "float4": "real",
    "real": "real",
    "varchar": "character varying",
    "character varying": "character varying",
    "char varying": "character varying",
    "char": "character",
    "character": "character",
    "bpchar": "character",
    "decimal": "numeric",
    "numeric": "numeric",
    "timestamptz": "timestamp with time zone",
    "timestamp with time zone": "timestamp with time zone",
    "timestamp": "timestamp without time zone",
    "timestamp without time zone": "timestamp without time zone",
    "timetz": "time with time zone",
    "time with time zone": "time with time zone",
    "time": "time without time zone",
    "time without time zone": "time without time zone",
    "varbit": "bit varying",
    "bit varying": "bit varying",
}

# serial is integer with a sequence default: the type compares as its integer.
_SERIALS = {
    "serial": "integer",
    "serial4": "integer",
    "bigserial": "bigint",
    "serial8": "bigint",
    "smallserial": "smallint",
    "serial2": "smallint",
}

# 6 is the largest (and the unstated) fractional-second precision: (6) adds nothing.
_TIME_TYPES = {
    "timestamp with time zone",
    "timestamp without time zone",
    "time with time zone",
    "time without time zone",
    "interval",
}


@dataclass(frozen=True, slots=True)
class PgType:
    """A type as PostgreSQL resolves it: canonical name, modifiers, array-ness."""

    name: str  # canonical, e.g. "character varying", "public.status", "\"Role\""
    modifiers: tuple[str, ...] = ()
    array: bool = False
    serial: bool = False  # written as serial/bigserial/smallserial

    @property
    def schema(self) -> str | None:
        head, dot, _ = _split_qualified(self.name)
        return head if dot else None

    @property
    def unqualified(self) -> str:
        _, dot, tail = _split_qualified(self.name)
        return tail if dot else self.name

    def __str__(self) -> str:
        text = self.name
        if self.modifiers:
            modifiers = f"({','.join(self.modifiers)})"
            # The modifier sits before "with/without time zone", as format_type writes it.
            for zone in (" with time zone", " without time zone"):
                if text.endswith(zone):
                    text = text[: -len(zone)] + modifiers + zone
                    break
            else:
                text += modifiers
        return text + ("[]" if self.array else "")


def _split_qualified(name: str) -> tuple[str, str, str]:
    """`schema.type` -> (schema, ".", type), dots inside quotes left alone."""
    in_quotes = False
    for position, char in enumerate(name):
        if char == '"':
            in_quotes = not in_quotes
        elif char == "." and not in_quotes:
            return name[:position], ".", name[position + 1 :]
    return name, "", ""


_ARRAY_SUFFIX = re.compile(r"(\s*\[\s*\d*\s*\]|\s+array(\s*\[\s*\d*\s*\])?)$")


@lru_cache(maxsize=4096)
def parse_type(text: str) -> PgType:
    """Parse a type as written in DDL or printed by format_type."""
    rest = text.strip()
    array = False
    while True:
        match = _ARRAY_SUFFIX.search(_fold_outside_quotes(rest))
        if not match:
            break
        array = True
        rest = rest[: match.start()].rstrip()
    modifiers: tuple[str, ...] = ()
    folded = _fold_outside_quotes(rest)
    if "(" in folded and not folded.startswith('"'):
        start, end = folded.index("("), folded.rindex(")")
        modifiers = tuple(m.strip() for m in folded[start + 1 : end].split(",") if m.strip())
        folded = folded[:start] + " " + folded[end + 1 :]
    name = " ".join(folded.split())
    if name.startswith("pg_catalog."):
        name = name[len("pg_catalog.") :]
    if name.startswith("_") and not array:  # the catalog's own array names: _int4, _text
        name, array = name[1:], True
    serial = name in _SERIALS
    name = _SERIALS.get(name) or _TYPE_ALIASES.get(name, name)
    if name == "float":  # float(p): real up to 24 binary digits, else double precision
        digits = int(modifiers[0]) if modifiers and modifiers[0].isdigit() else 53
        name, modifiers = ("real" if digits <= 24 else "double precision"), ()
    elif name == "numeric" and len(modifiers) == 1:
        modifiers = (modifiers[0], "0")
    elif name in ("character", "bit") and not modifiers and not _is_bare_bpchar(folded):
        modifiers = ("1",)  # char and bit mean length 1 in DDL
    elif name in _TIME_TYPES and modifiers == ("6",):
        modifiers = ()
    return PgType(name=name, modifiers=modifiers, array=array, serial=serial)


def _is_bare_bpchar(folded: str) -> bool:
    # `bpchar` (format_type of an unconstrained blank-padded char) has no length.
    return folded.strip() == "bpchar"


@lru_cache(maxsize=4096)
def types_equal(expected: str, observed: str) -> bool:
    """Equal when both resolve to the same type; an unqualified name matches a qualified one."""
    left, right = parse_type(expected), parse_type(observed)
    if (left.modifiers, left.array) != (right.modifiers, right.array):
        return False
    if left.name == right.name:
        return True
    if left.schema is None or right.schema is None:
        return left.unqualified == right.unqualified
    return False


def _fold_outside_quotes(text: str) -> str:
    """Lower-case the text except inside double quotes, as PostgreSQL folds identifiers."""
    if '"' not in text:
        return text.lower()
    parts = text.split('"')
    return '"'.join(part if i % 2 else part.lower() for i, part in enumerate(parts))


# --- identifiers --------------------------------------------------------------

_IDENTIFIER = re.compile(r'^(?:[A-Za-z_][A-Za-z0-9_$]*|"(?:[^"]|"")+")$')


def is_identifier(text: str) -> bool:
    """A bare or quoted identifier, as opposed to an expression such as `lower(email)`."""
    return bool(_IDENTIFIER.match(text.strip()))


def quote_identifier(name: str) -> str:
    """A raw name as PostgreSQL's quote_ident writes it: `email`, `"isActive"`, `"user"`."""
    if re.fullmatch(r"[a-z_][a-z0-9_$]*", name) and name not in _RESERVED:
        return name
    return '"' + name.replace('"', '""') + '"'


def key_part(text: str, columns: ColumnTypes = (), schemas: Schemas = ()) -> str:
    """One element of an index or partition key: a column name, or a normalised expression,
    followed by its ordering where that is not the default (`created_at DESC`, as
    pg_get_indexdef writes it: ASC, NULLS LAST after ASC and NULLS FIRST after DESC
    are the defaults and say nothing)."""
    body, ordering = split_ordering(text)
    body = (
        pg_identifier(body) if is_identifier(body) else normalise_expression(body, columns, schemas)
    )
    return f"{body} {ordering}" if ordering else body


_ORDERING = re.compile(
    r"\s+(?:(?P<direction>asc|desc)(?:\s+nulls\s+(?P<nulls1>first|last))?"
    r"|nulls\s+(?P<nulls2>first|last))\s*$",
    re.IGNORECASE,
)


def split_ordering(text: str) -> tuple[str, str]:
    """`created_at DESC NULLS LAST` -> ("created_at", "desc nulls last"); the defaults
    (ASC, NULLS LAST when ascending, NULLS FIRST when descending) give ""."""
    text = text.strip()
    match = _ORDERING.search(text)
    if match is None:
        return text, ""
    descending = (match.group("direction") or "asc").lower() == "desc"
    nulls = (match.group("nulls1") or match.group("nulls2") or "").lower()
    parts = ["desc"] if descending else []
    if nulls == ("last" if descending else "first"):
        parts.append(f"nulls {nulls}")
    return text[: match.start()].strip(), " ".join(parts)


# --- expressions ----------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>[EeBbXxNn]?'(?:[^']|'')*')
  | (?P<quoted>"(?:[^"]|"")*")
  | (?P<number>\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|\.\d+)
  | (?P<word>[A-Za-z_][A-Za-z0-9_$]*)
  | (?P<cast>::)
  | (?P<operator>[-+*/<>=~!@#%^&|`?]+)
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)

# Words that stay quoted when quoted: "user" is a column, user is CURRENT_USER.
_RESERVED = frozenset(
    [
        "all",
        "analyse",
        "analyze",
        "and",
        "any",
        "array",
        "as",
        "asc",
        "asymmetric",
        "both",
        "case",
        "cast",
        "check",
        "collate",
        "column",
        "constraint",
        "create",
        "current_catalog",
        "current_date",
        "current_role",
        "current_time",
        "current_timestamp",
        "current_user",
        "default",
        "deferrable",
        "desc",
        "distinct",
        "do",
        "else",
        "end",
        "except",
        "false",
        "fetch",
        "for",
        "foreign",
        "from",
        "grant",
        "group",
        "having",
        "in",
        "initially",
        "intersect",
        "into",
        "lateral",
        "leading",
        "limit",
        "localtime",
        "localtimestamp",
        "not",
        "null",
        "offset",
        "on",
        "only",
        "or",
        "order",
        "placing",
        "primary",
        "references",
        "returning",
        "select",
        "session_user",
        "some",
        "symmetric",
        "table",
        "then",
        "to",
        "trailing",
        "true",
        "union",
        "unique",
        "user",
        "using",
        "variadic",
        "when",
        "where",
        "window",
        "with",
    ]
)

# Words that continue a type name after `::`.
_TYPE_WORDS = frozenset({"varying", "precision", "with", "without", "time", "zone"})

# Parser rewrites: the claim may write what the catalog prints differently.
_OPERATOR_SYNONYMS = {"!=": "<>"}
_WORD_OPERATORS = {"like": "~~", "ilike": "~~*"}
_NEGATED_WORD_OPERATORS = {"like": "!~~", "ilike": "!~~*"}
# now(), CURRENT_TIMESTAMP and transaction_timestamp() are one function (PostgreSQL docs 9.9.5).
_NOW_SPELLINGS = ("current_timestamp", "transaction_timestamp")
_TEXT_CASTS = {"text", "character varying", "varchar"}
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


# Casts PostgreSQL inserts by itself (pg_cast's implicit ones): `price * qty` on an
# integer qty reads back as `price * qty::numeric`, so a claim may leave them out.
_IMPLICIT_CASTS = {
    "smallint": {"integer", "bigint", "numeric", "real", "double precision"},
    "integer": {"bigint", "numeric", "real", "double precision"},
    "bigint": {"numeric", "real", "double precision"},
    "numeric": {"real", "double precision"},
    "real": {"double precision"},
    "character varying": {"text", "character"},
    "character": {"text", "character varying"},
    "text": {"character varying", "character"},
    "date": {"timestamp without time zone", "timestamp with time zone"},
    "timestamp without time zone": {"timestamp with time zone"},
}

ColumnTypes = tuple[tuple[str, str], ...]  # (column name, format_type), hashable for caching
# The schemas an unqualified name in a claim is read in: the table's own, then public
# (pg_catalog always). The probe renders every other name schema-qualified.
Schemas = tuple[str, ...]


def implicit_cast(source: str, target: str) -> bool:
    """Whether PostgreSQL casts `source` to `target` without being asked."""
    left, right = parse_type(source), parse_type(target)
    if left.array or right.array:
        return False
    return right.name in _IMPLICIT_CASTS.get(left.name, ()) or (
        left.name == right.name and not right.modifiers
    )


@lru_cache(maxsize=65536)
def normalise_expression(text: str, columns: ColumnTypes = (), schemas: Schemas = ()) -> str:
    """A canonical spelling of an SQL expression, for comparing a claim with pg_get_expr.

    Folds unquoted words; drops quotes a plain lower-case name does not need;
    drops casts of literals (`'x'::text` is `'x'`, `'-1'::integer` is `-1`,
    `interval '1 day'` is `'1 day'`) and the text casts PostgreSQL adds to
    varchar columns (`(email)::text`); names a cast's type canonically (`::int`
    is `::integer`); rewrites `CAST(x AS t)` to `x::t`, `IN (a, b)` to
    `= ANY (ARRAY[a, b])`, `x BETWEEN a AND b` to `x >= a AND x <= b`, `!=` to
    `<>`, LIKE to `~~`, and CURRENT_TIMESTAMP to now(); drops the parentheses
    that operator precedence makes redundant (pg_get_expr prints
    `(a || b) || c` and `(price * qty) > 0`). With the table's `columns`, a cast
    of a column to a type it reaches implicitly (integer to numeric) is dropped too.
    A name qualified with one of `schemas` (or pg_catalog) is the unqualified name:
    `public.items_id_seq` and `items_id_seq` name one sequence for a table in public.
    An array of literals cast as a whole (`ARRAY['a']::kind[]`, as Prisma writes it)
    is the array of cast literals PostgreSQL stores (`ARRAY['a'::kind]`).
    """
    tokens = _drop_qualifiers(_tokens(text), frozenset(schemas) | {"pg_catalog"})
    tokens = _rewrite_typed_literals(tokens)
    tokens = _rewrite_cast_calls(tokens)
    tokens = _rewrite_in_lists(tokens)
    tokens = _rewrite_between(tokens)
    tokens = _rewrite_like(tokens)
    tokens = _rewrite_now(tokens)
    tokens = _drop_casts(tokens, dict(columns))
    tokens = _drop_single_parentheses(tokens)
    tokens = _drop_operand_parentheses(tokens)
    tokens = _unquote_numbers(tokens)
    tokens = _strip_outer_parentheses(tokens)
    return " ".join(tokens)


def expressions_equal(
    expected: str, observed: str, columns: ColumnTypes = (), schemas: Schemas = ()
) -> bool:
    return normalise_expression(expected, columns, schemas) == normalise_expression(
        observed, columns, schemas
    )


_QUALIFIED_LITERAL = re.compile(r"""^'(?P<schema>"(?:[^"]|"")+"|[^".']+)\.(?P<rest>.+)'$""")


def _drop_qualifiers(tokens: list[str], schemas: frozenset[str]) -> list[str]:
    """`public . f` -> `f` and `'public.s'::regclass` -> `'s'::regclass` for the given schemas."""
    out: list[str] = []
    position = 0
    while position < len(tokens):
        token = tokens[position]
        following = tokens[position + 1 : position + 3]
        if (
            len(following) == 2
            and following[0] == "."
            and _is_name(following[1])
            and (not out or out[-1] != ".")
            and _is_name(token)
            and pg_identifier(token) in schemas
        ):
            position += 2
            continue
        if token.startswith("'") and tokens[position + 1 : position + 3] == ["::", "regclass"]:
            match = _QUALIFIED_LITERAL.match(token)
            if match and pg_identifier(match.group("schema")) in schemas:
                token = "'" + match.group("rest") + "'"
        out.append(token)
        position += 1
    return out


def _tokens(text: str) -> list[str]:
    tokens = []
    for match in _TOKEN.finditer(text):
        kind, value = match.lastgroup, match.group()
        if kind == "space":
            continue
        if kind == "word":
            value = value.lower()
        elif kind == "quoted":
            inner = value[1:-1].replace('""', '"')
            if re.fullmatch(r"[a-z_][a-z0-9_$]*", inner) and inner not in _RESERVED:
                value = inner
        elif kind == "operator":
            value = _OPERATOR_SYNONYMS.get(value, value)
        tokens.append(value)
    return tokens


def _is_literal(token: str) -> bool:
    return token.startswith("'") or bool(_NUMBER.match(token))


def _is_name(token: str) -> bool:
    return bool(token) and (token[0].isalpha() or token[0] in '_"') and token not in _RESERVED


def _cast_end(tokens: list[str], start: int) -> int:
    """Index just past the type after a `::` at tokens[start]."""
    position = start + 1
    if position >= len(tokens):
        return position
    position += 1  # the type's first word
    while position + 1 < len(tokens) and tokens[position] == "." and _is_name(tokens[position + 1]):
        position += 2  # schema-qualified
    while position < len(tokens) and tokens[position] in _TYPE_WORDS:
        position += 1
    if position < len(tokens) and tokens[position] == "(":
        depth = 0
        while position < len(tokens):
            depth += {"(": 1, ")": -1}.get(tokens[position], 0)
            position += 1
            if depth == 0:
                break
        while position < len(tokens) and tokens[position] in _TYPE_WORDS:
            position += 1
    while position + 1 < len(tokens) and tokens[position] == "[" and tokens[position + 1] == "]":
        position += 2
    return position


def _drop_casts(tokens: list[str], columns: dict[str, str]) -> list[str]:
    """Drop `::type` after a literal, and implicit casts after a column name."""
    out: list[str] = []
    position = 0
    while position < len(tokens):
        token = tokens[position]
        if token == "::" and out:
            end = _cast_end(tokens, position)
            target = " ".join(tokens[position + 1 : end])
            target = _canonical_type(tokens[position + 1 : end])
            operand = _operand(out)
            if operand is not None and (
                _is_literal(operand) or _is_implicit(operand, target, columns)
            ):
                position = end
                continue
            out += ["::", target]
            position = end
            continue
        out.append(token)
        position += 1
    return out


def _canonical_type(tokens: list[str]) -> str:
    """A cast's type tokens as one canonical name: `int` -> `integer`, `varchar ( 10 )` ->
    `character varying(10)`, `timestamp` -> `timestamp without time zone`."""
    text = ""
    for token in tokens:
        text += token if token == "." or text.endswith(".") or not text else " " + token
    return str(parse_type(text)) if text else text


def _is_implicit(operand: str, target: str, columns: dict[str, str]) -> bool:
    if not _is_name(operand):
        return False
    source = columns.get(pg_identifier(operand))
    if source is None:
        # Without the column's type, only the text casts varchar columns always get.
        return target in _TEXT_CASTS
    return implicit_cast(source, target)


def _operand(out: list[str]) -> str | None:
    """The single token a cast applies to: `x` in `x::t`, `x` in `(x)::t`; an array of
    literals counts as one literal (its cast, PostgreSQL moves onto each element)."""
    if out[-1] == "]":
        return _literal_array(out)
    if (
        len(out) >= 3
        and out[-1] == ")"
        and out[-3] == "("
        and (len(out) == 3 or not _is_name(out[-4]))
    ):
        return out[-2]
    if out[-1] not in (")", "]"):
        return out[-1]
    return None


def _literal_array(out: list[str]) -> str | None:
    """`'a'` for `array [ 'a' , 'b' ]` at the end of `out`: a non-empty array of literals."""
    try:
        opening = len(out) - 1 - out[::-1].index("[")
    except ValueError:
        return None
    elements = out[opening + 1 : -1]
    if opening == 0 or out[opening - 1] != "array" or not elements:
        return None
    if all(_is_literal(e) for e in elements[::2]) and all(c == "," for c in elements[1::2]):
        return elements[0]
    return None


def _drop_single_parentheses(tokens: list[str]) -> list[str]:
    """`(x)` -> `x` when the parentheses are not a call's: `lower((email))` -> `lower(email)`."""
    changed = True
    while changed:
        changed = False
        out: list[str] = []
        position = 0
        while position < len(tokens):
            if (
                tokens[position] == "("
                and position + 2 < len(tokens)
                and tokens[position + 2] == ")"
                and tokens[position + 1] not in ("(", ")", "*")
                and not (out and (_is_name(out[-1]) or out[-1] in (")", "]")))
            ):
                out.append(tokens[position + 1])
                position += 3
                changed = True
                continue
            out.append(tokens[position])
            position += 1
        tokens = out
    return tokens


def _drop_operand_parentheses(tokens: list[str]) -> list[str]:
    """Drop the parentheses operator precedence makes redundant, as PostgreSQL's parser does.

    `(a > 0) AND (b > 0)` is `a > 0 AND b > 0`, `(a || b) || c` is `a || b || c`
    (left-associative), `(price * qty) > 0` is `price * qty > 0`; `(a OR b) AND c`,
    `a - (b - c)`, `NOT (a AND b)` and `(x ->> 'k')::int` keep theirs. What is
    left is the fewest parentheses that parse to the same tree, so two spellings
    of one expression meet, and two expressions never do.
    """
    out = list(tokens)
    position = 0
    while position < len(out):
        if out[position] == "(" and not (
            position and (_is_name(out[position - 1]) or out[position - 1] in (")", "]"))
        ):
            end = _closing(out, position)
            inner = out[position + 1 : end]
            if inner and end < len(out) and out[end] == ")" and _redundant(out, position, end):
                out = out[:position] + inner + out[end + 1 :]
                continue
        position += 1
    return out


# PostgreSQL's operator precedence, lowest first (the documentation's table 4.2): the
# parentheses around an operand may go when what is inside binds tighter than both
# neighbours, or as tight as the one on its right (every binary operator is
# left-associative), or as tight as AND/OR chains, which the parser flattens.
_OR, _AND, _NOT, _IS, _COMPARISON, _LIKE, _OTHER, _ADD, _MULTIPLY, _POWER = range(1, 11)
_AT_TIME_ZONE, _COLLATE, _UNARY, _CAST, _SUBSCRIPT, _ATOM = 11, 12, 13, 14, 15, 99
_WORD_PRECEDENCE = {
    "or": _OR,
    "and": _AND,
    "is": _IS,
    "isnull": _IS,
    "notnull": _IS,
    "between": _LIKE,
    "in": _LIKE,
    "like": _LIKE,
    "ilike": _LIKE,
    "similar": _LIKE,
    "at": _AT_TIME_ZONE,
    "collate": _COLLATE,
}
_COMPARISONS = frozenset({"<", ">", "=", "<=", ">=", "<>"})
_OPERATOR = re.compile(r"^[-+*/<>=~!@#%^&|`?]+$")
# Tokens that end or start an operand without being an operator: precedence 0.
_SEPARATORS = frozenset({"(", ")", ",", "[", "]", "then", "else", "when", "end", "case"})


def _binary_precedence(token: str) -> int | None:
    if token in _WORD_PRECEDENCE:
        return _WORD_PRECEDENCE[token]
    if token == "::":
        return _CAST
    if not _OPERATOR.match(token):
        return None
    if token in _COMPARISONS:
        return _COMPARISON
    if token in ("+", "-"):
        return _ADD
    if token in ("*", "/", "%"):
        return _MULTIPLY
    if token == "^":
        return _POWER
    return _OTHER


def _ends_operand(token: str | None) -> bool:
    """Whether an operator after `token` is binary (token ends an operand)."""
    if token is None or token in _SEPARATORS - {")", "]", "end"} or token == "not":
        return False
    return _binary_precedence(token) is None


def _lowest_precedence(tokens: list[str]) -> int:
    """The precedence of the loosest-binding operator outside any parentheses."""
    lowest = _ATOM
    depth = 0
    previous: str | None = None
    for token in tokens:
        if token in ("(", "[", "case"):
            depth += 1
        elif token in (")", "]", "end"):
            depth -= 1
        elif depth == 0:
            if token == "not":
                if previous != "is":
                    lowest = min(lowest, _LIKE if _ends_operand(previous) else _NOT)
            elif token == ".":
                lowest = min(lowest, _SUBSCRIPT)
            elif _OPERATOR.match(token) and not _ends_operand(previous):
                lowest = min(lowest, _UNARY)
            else:
                precedence = _binary_precedence(token)
                if precedence is not None:
                    lowest = min(lowest, precedence)
        previous = token
    return lowest


def _redundant(tokens: list[str], opening: int, closing: int) -> bool:
    """Whether the parentheses at tokens[opening] and tokens[closing] change nothing."""
    inner = _lowest_precedence(tokens[opening + 1 : closing])
    before = tokens[opening - 1] if opening else None
    after = tokens[closing + 1] if closing + 1 < len(tokens) else None
    if before is None or before in _SEPARATORS:
        left = 0
    elif before == "not":
        left = _NOT
    elif _OPERATOR.match(before) and not _ends_operand(
        tokens[opening - 2] if opening > 1 else None
    ):
        left = _UNARY
    else:
        found = _binary_precedence(before)
        if found is None:
            return False  # a keyword whose parentheses are its own (ANY, EXISTS, ARRAY, IN)
        left = found
    if after is None or after in _SEPARATORS or after in ("asc", "desc", "nulls"):
        right = 0
    elif after in {"[", "."}:
        right = _SUBSCRIPT
    elif after == "not":
        right = _LIKE  # NOT LIKE, NOT BETWEEN, NOT IN, NOT SIMILAR
    else:
        found = _binary_precedence(after)
        if found is None:
            return False
        right = found
    associative = inner in (_OR, _AND)
    return (inner > left or (inner == left and associative)) and inner >= right


def _unquote_numbers(tokens: list[str]) -> list[str]:
    """`'-1'` -> `- 1`: once its cast is gone, a quoted number is the number (as tokens)."""
    out: list[str] = []
    for token in tokens:
        if token.startswith("'") and _NUMBER.match(token[1:-1]):
            number = token[1:-1]
            out += ["-", number[1:]] if number.startswith("-") else [number]
        else:
            out.append(token)
    return out


def _strip_outer_parentheses(tokens: list[str]) -> list[str]:
    while len(tokens) >= 2 and tokens[0] == "(" and tokens[-1] == ")":
        depth = 0
        for position, token in enumerate(tokens):
            depth += {"(": 1, ")": -1}.get(token, 0)
            if depth == 0 and position < len(tokens) - 1:
                return tokens  # the first parenthesis closes before the end
        tokens = tokens[1:-1]
    return tokens


# Type names a string literal may follow (`interval '1 day'`, `date '2020-01-01'`): the
# parser reads that as a cast of the literal, and pg_get_expr prints `'1 day'::interval`.
_LITERAL_TYPES = frozenset(
    {
        "interval",
        "date",
        "time",
        "timestamp",
        "timestamptz",
        "timetz",
        "text",
        "varchar",
        "char",
        "character",
        "bpchar",
        "json",
        "jsonb",
        "uuid",
        "numeric",
        "decimal",
        "int",
        "integer",
        "int2",
        "int4",
        "int8",
        "bigint",
        "smallint",
        "boolean",
        "bool",
        "bytea",
        "inet",
        "cidr",
        "real",
        "float4",
        "float8",
        "money",
        "xml",
        "point",
        "tsquery",
        "tsvector",
        "regclass",
    }
)
_LITERAL_TYPE_PHRASES = (
    ("timestamp", "with", "time", "zone"),
    ("timestamp", "without", "time", "zone"),
    ("time", "with", "time", "zone"),
    ("time", "without", "time", "zone"),
    ("double", "precision"),
    ("character", "varying"),
)


def _rewrite_typed_literals(tokens: list[str]) -> list[str]:
    """`interval '1 day'` -> `'1 day'`: a typed literal is a cast of the literal, and a
    literal's cast is dropped anyway (the literal's own text is what is compared)."""
    out: list[str] = []
    for token in tokens:
        if token.startswith("'") and out:
            for phrase in _LITERAL_TYPE_PHRASES:
                if tuple(out[-len(phrase) :]) == phrase and _starts_operand(out, len(phrase)):
                    del out[-len(phrase) :]
                    break
            else:
                if out[-1] in _LITERAL_TYPES and _starts_operand(out, 1):
                    out.pop()
        out.append(token)
    return out


def _starts_operand(out: list[str], words: int) -> bool:
    """Whether the last `words` tokens of `out` stand where an operand starts."""
    before = out[-words - 1] if len(out) > words else None
    return before not in ("::", ".", "at") and not (
        before is not None and _is_name(before) and before not in _WORD_PRECEDENCE
    )


def _rewrite_cast_calls(tokens: list[str]) -> list[str]:
    """`CAST(x AS t)` -> `(x)::t` and `TRIM(BOTH FROM x)` -> `trim(x)`, as pg_get_expr
    prints the one and the claim may write the other."""
    out: list[str] = []
    position = 0
    while position < len(tokens):
        if tokens[position : position + 4] == ["trim", "(", "both", "from"]:
            out += ["trim", "("]  # trim(x) is printed TRIM(BOTH FROM x)
            position += 4
            continue
        if tokens[position] == "cast" and tokens[position + 1 : position + 2] == ["("]:
            end = _closing(tokens, position + 1)
            inner = tokens[position + 2 : end]
            depth, split = 0, None
            for index, token in enumerate(inner):
                depth += {"(": 1, "[": 1, ")": -1, "]": -1}.get(token, 0)
                if depth == 0 and token == "as":
                    split = index
            if split is not None and end < len(tokens) and tokens[end] == ")":
                out += ["(", *inner[:split], ")", "::", *inner[split + 1 :]]
                position = end + 1
                continue
        out.append(tokens[position])
        position += 1
    return out


# Where an operand of BETWEEN ends: at an operator binding as loosely as BETWEEN or looser.
_BETWEEN_STOPS = frozenset({"and", "or", "not", "is", "between", "like", "ilike", "similar"})


def _operand_stop(token: str) -> bool:
    if token in _BETWEEN_STOPS or token in _SEPARATORS:
        return True
    precedence = _binary_precedence(token)
    return precedence is not None and precedence <= _LIKE and token != "::"


def _rewrite_between(tokens: list[str]) -> list[str]:
    """`x BETWEEN a AND b` -> `(x >= a AND x <= b)`, NOT BETWEEN -> `(x < a OR x > b)`:
    the parser's own rewrite. BETWEEN SYMMETRIC is left as written."""
    position = 0
    tokens = list(tokens)
    while position < len(tokens):
        if tokens[position] != "between":
            position += 1
            continue
        negated = position > 0 and tokens[position - 1] == "not"
        head = position - 1 if negated else position
        # the left operand: back to the loosest operator, at this depth
        start, depth = head, 0
        while start > 0:
            token = tokens[start - 1]
            if token in (")", "]"):
                depth += 1
            elif token in ("(", "["):
                if depth == 0:
                    break
                depth -= 1
            elif depth == 0 and _operand_stop(token):
                break
            start -= 1
        low_start = position + 1
        if low_start < len(tokens) and tokens[low_start] == "asymmetric":
            low_start += 1
        if low_start >= len(tokens) or tokens[low_start] == "symmetric" or start == head:
            position += 1
            continue
        low_end = _scan_operand(tokens, low_start)
        if low_end >= len(tokens) or tokens[low_end] != "and":
            position += 1
            continue
        high_end = _scan_operand(tokens, low_end + 1)
        left = tokens[start:head]
        low, high = tokens[low_start:low_end], tokens[low_end + 1 : high_end]
        if negated:
            rewritten = ["(", *left, "<", *low, "or", *left, ">", *high, ")"]
        else:
            rewritten = ["(", *left, ">=", *low, "and", *left, "<=", *high, ")"]
        tokens = tokens[:start] + rewritten + tokens[high_end:]
        position = start + len(rewritten)
    return tokens


def _scan_operand(tokens: list[str], start: int) -> int:
    """Index just past an operand starting at `start`: up to a loose operator at its depth."""
    position, depth = start, 0
    while position < len(tokens):
        token = tokens[position]
        if token in ("(", "[", "case"):
            depth += 1
        elif token in (")", "]", "end"):
            if depth == 0:
                break
            depth -= 1
        elif depth == 0 and _operand_stop(token) and position > start:
            break
        position += 1
    return position


def _rewrite_in_lists(tokens: list[str]) -> list[str]:
    """`x IN (a, b)` -> `x = ANY (ARRAY[a, b])`; one element -> `x = a`; NOT IN -> `<> ALL`."""
    out: list[str] = []
    position = 0
    while position < len(tokens):
        token = tokens[position]
        if token == "in" and position + 1 < len(tokens) and tokens[position + 1] == "(":
            negated = bool(out) and out[-1] == "not"
            end = _closing(tokens, position + 1)
            elements = _split_commas(tokens[position + 2 : end])
            if elements and not any(e and e[0] == "select" for e in elements):
                if negated:
                    out.pop()
                if len(elements) == 1:
                    out += ["<>" if negated else "=", *elements[0]]
                else:
                    joined: list[str] = []
                    for element in elements:
                        joined += [*([","] if joined else []), *element]
                    out += ["<>" if negated else "=", "all" if negated else "any"]
                    out += ["(", "array", "[", *joined, "]", ")"]
                position = end + 1
                continue
        out.append(token)
        position += 1
    return out


def _closing(tokens: list[str], opening: int) -> int:
    depth = 0
    for position in range(opening, len(tokens)):
        depth += {"(": 1, "[": 1, ")": -1, "]": -1}.get(tokens[position], 0)
        if depth == 0:
            return position
    return len(tokens) - 1


def _split_commas(tokens: list[str]) -> list[list[str]]:
    parts: list[list[str]] = [[]]
    depth = 0
    for token in tokens:
        if token == "," and depth == 0:
            parts.append([])
            continue
        depth += {"(": 1, "[": 1, ")": -1, "]": -1}.get(token, 0)
        parts[-1].append(token)
    return [part for part in parts if part]


def _rewrite_like(tokens: list[str]) -> list[str]:
    out: list[str] = []
    for token in tokens:
        if token in _WORD_OPERATORS:
            if out and out[-1] == "not":
                out[-1] = _NEGATED_WORD_OPERATORS[token]
            else:
                out.append(_WORD_OPERATORS[token])
            continue
        out.append(token)
    return out


def _rewrite_now(tokens: list[str]) -> list[str]:
    out: list[str] = []
    position = 0
    while position < len(tokens):
        token = tokens[position]
        following = tokens[position + 1] if position + 1 < len(tokens) else ""
        if token == "current_timestamp" and following != "(":
            out += ["now", "(", ")"]
            position += 1
            continue
        if (
            token in _NOW_SPELLINGS
            and following == "("
            and position + 2 < len(tokens)
            and tokens[position + 2] == ")"
        ):
            out += ["now", "(", ")"]
            position += 3
            continue
        out.append(token)
        position += 1
    return out


def is_nextval(expression: str | None) -> bool:
    """A sequence default, as serial columns have: nextval('..._seq'::regclass)."""
    return expression is not None and normalise_expression(expression).startswith("nextval (")
