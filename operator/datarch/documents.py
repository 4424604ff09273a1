"""Reading a YAML document from a file a user handed over: bounded in size and nesting, UTF-8.

Hostile or accidental input (a binary, a Latin-1 or UTF-16 file, /dev/zero, 100,000
nested brackets) is refused with one line before the YAML parser sees it: the
parser's own errors are multi-line, and deep flow nesting costs it minutes of CPU.
It returns parsed data and never validates a claim (claims.py does).
"""

from __future__ import annotations

import re
from itertools import accumulate
from pathlib import Path
from typing import Any

from datarch.errors import ClaimInvalid

# The largest real claims (a whole database's catalog) are a few MB; etcd holds 1.5 MB.
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024
# A claim nests about 13 levels (spec.stores[].postgres.schemas[].tables[].foreignKeys[]...);
# written wholly in flow style (JSON) every one of them is a bracket.
MAX_NESTING = 64

_BRACKETS = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def read_document_bytes(path: Path) -> bytes:
    """At most MAX_DOCUMENT_BYTES of `path` (a FIFO or /dev/zero included), or ClaimInvalid."""
    try:
        with path.open("rb") as file:
            data = file.read(MAX_DOCUMENT_BYTES + 1)
    except OSError as error:
        raise ClaimInvalid(f"while reading {path}: {error.strerror or error}") from error
    if len(data) > MAX_DOCUMENT_BYTES:
        raise ClaimInvalid(
            f"while reading {path}: it is larger than {MAX_DOCUMENT_BYTES // 2**20} MiB"
        )
    return data


def decode_document(data: bytes, source: str) -> str:
    """UTF-8 text (a byte order mark is dropped); anything else is named by its first bad byte."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        offset, bad = error.start, data[error.start : error.start + 1].hex()
    else:
        # UTF-16 without a byte order mark decodes as UTF-8, one NUL after each letter.
        offset = text.find("\0")
        if offset < 0:
            return text
        bad = "00"
    raise ClaimInvalid(
        f"while reading {source}: it is not UTF-8 text (byte 0x{bad} at offset {offset}); "
        "save it as UTF-8"
    )


def check_nesting(text: str, source: str) -> None:
    """Refuse flow collections nested deeper than MAX_NESTING, in linear time.

    Brackets inside quoted strings count too: an over-estimate that only a claim
    with dozens of unbalanced brackets in its strings could ever reach.
    """
    brackets = _BRACKETS.sub("", text)
    if len(brackets) <= MAX_NESTING:
        return
    deepest = max(accumulate(map(_STEP.__getitem__, brackets)))
    if deepest > MAX_NESTING:
        raise ClaimInvalid(f"while reading {source}: it is nested deeper than {MAX_NESTING} levels")


def load_yaml(text: str) -> Any:
    """The Rust YAML parser when installed: PyYAML alone needs seconds for a 2 MB claim."""
    try:
        import ryaml  # noqa: PLC0415  (optional accelerator)
    except ImportError:  # pragma: no cover - ryaml is a declared dependency
        import yaml  # noqa: PLC0415

        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return ryaml.loads(text)  # type: ignore[attr-defined]


def read_yaml_file(path: Path) -> Any:
    """The parsed document in `path`; ClaimInvalid, one line, for anything unreadable."""
    text = decode_document(read_document_bytes(path), str(path))
    check_nesting(text, str(path))
    try:
        return load_yaml(text)
    except Exception as error:  # each YAML parser raises its own type
        cause = " ".join(str(error).split())
        raise ClaimInvalid(f"while parsing {path}: {cause}") from error
