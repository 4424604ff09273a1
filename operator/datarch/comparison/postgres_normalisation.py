"""How PostgreSQL spellings are made comparable: types, identifiers and expressions. Pure.

Two spellings are made equal only where PostgreSQL itself reads them as the same
thing (an alias, a default typmod, a cast it inserts implicitly, a rewrite its
parser does). A false finding is the worst outcome, but so is hiding a real
one: where equality cannot be shown, the normalised texts are compared and
differ.
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


def key_part(text: str, columns: ColumnTypes = ()) -> str:
    """One element of an index or partition key: a column name, or a normalised expression."""
    text = text.strip()
    return pg_identifier(text) if is_identifier(text) else normalise_expression(text, columns)


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


def implicit_cast(source: str, target: str) -> bool:
    """Whether PostgreSQL casts `source` to `target` without being asked."""
    left, right = parse_type(source), parse_type(target)
    if left.array or right.array:
        return False
    return right.name in _IMPLICIT_CASTS.get(left.name, ()) or (
        left.name == right.name and not right.modifiers
    )


@lru_cache(maxsize=65536)
def normalise_expression(text: str, columns: ColumnTypes = ()) -> str:
    """A canonical spelling of an SQL expression, for comparing a claim with pg_get_expr.

    Folds unquoted words; drops quotes a plain lower-case name does not need;
    drops casts of literals (`'x'::text` is `'x'`, `'-1'::integer` is `-1`) and
    the text casts PostgreSQL adds to varchar columns (`(email)::text`);
    rewrites `IN (a, b)` to `= ANY (ARRAY[a, b])`, `!=` to `<>`, LIKE to `~~`,
    and CURRENT_TIMESTAMP to now(); drops parentheses around a single token and
    around the whole expression. With the table's `columns`, a cast of a column
    to a type it reaches implicitly (integer to numeric) is dropped too.
    """
    tokens = _tokens(text)
    tokens = _rewrite_in_lists(tokens)
    tokens = _rewrite_like(tokens)
    tokens = _rewrite_now(tokens)
    tokens = _drop_casts(tokens, dict(columns))
    tokens = _drop_single_parentheses(tokens)
    tokens = _drop_operand_parentheses(tokens)
    tokens = _unquote_numbers(tokens)
    tokens = _strip_outer_parentheses(tokens)
    return " ".join(tokens)


def expressions_equal(expected: str, observed: str, columns: ColumnTypes = ()) -> bool:
    return normalise_expression(expected, columns) == normalise_expression(observed, columns)


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
            operand = _operand(out)
            if operand is not None and (
                _is_literal(operand) or _is_implicit(operand, target, columns)
            ):
                position = end
                continue
        out.append(token)
        position += 1
    return out


def _is_implicit(operand: str, target: str, columns: dict[str, str]) -> bool:
    if not _is_name(operand):
        return False
    source = columns.get(pg_identifier(operand))
    if source is None:
        # Without the column's type, only the text casts varchar columns always get.
        return target in _TEXT_CASTS
    return implicit_cast(source, target)


def _operand(out: list[str]) -> str | None:
    """The single token a cast applies to: `x` in `x::t`, `x` in `(x)::t`."""
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
    """`(a > 0) AND (b > 0)` -> `a > 0 AND b > 0`: a comparison binds tighter than AND and OR.

    Parentheses that are an operand of AND/OR (or the whole) go when precedence
    makes them redundant; `(a OR b) AND c` and `NOT (a AND b)` keep theirs.
    """
    out = list(tokens)
    position = 0
    while position < len(out):
        if out[position] == "(" and not (
            position and (_is_name(out[position - 1]) or out[position - 1] in (")", "]"))
        ):
            end = _closing(out, position)
            before = out[position - 1] if position else "("
            after = out[end + 1] if end + 1 < len(out) else ")"
            inner = out[position + 1 : end]
            if inner and _redundant(inner, before, after):
                out = out[:position] + inner + out[end + 1 :]
                continue
        position += 1
    return out


def _redundant(inner: list[str], before: str, after: str) -> bool:
    """Whether parentheses around `inner` change nothing: AND binds tighter than OR,
    comparisons tighter than both, and chains of one of them are flattened by the parser."""
    neighbours = {before, after} - {"(", ")"}
    if _has_top_level(inner, ("or",)):
        return neighbours <= {"or"}
    return neighbours <= {"and", "or"}


def _has_top_level(tokens: list[str], words: tuple[str, ...]) -> bool:
    depth = 0
    for token in tokens:
        depth += {"(": 1, "[": 1, ")": -1, "]": -1}.get(token, 0)
        if depth == 0 and token in words:
            return True
    return False


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
