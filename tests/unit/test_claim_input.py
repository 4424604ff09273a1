"""Reading a claim file as a user may hand it over: not UTF-8, huge, deeply nested, not a file.

Each is refused with one line naming what is wrong, before any store is touched,
and fast: a hostile file must not cost the CLI a minute of CPU.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest

from datarch.claims import load_claim
from datarch.documents import MAX_DOCUMENT_BYTES, MAX_NESTING
from datarch.errors import ClaimInvalid, SecretUnavailable
from datarch.secrets import LocalSecrets

CLAIM = """\
apiVersion: datarch.io/v1alpha1
kind: DataArchitectureClaim
metadata: {name: platform, namespace: data}
spec:
  stores:
    - {name: cache, kind: redis, absent: true, connection: {url: "redis://127.0.0.1:1/0"}}
"""


def _refused(path: Path) -> str:
    with pytest.raises(ClaimInvalid) as caught:
        load_claim(path)
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("binary", bytes(range(256)) * 4),
        ("latin-1", CLAIM.replace("platform", "plateforme-\u00e9t\u00e9").encode("latin-1")),
        ("utf-16", CLAIM.encode("utf-16")),
        ("utf-16-le", CLAIM.encode("utf-16-le")),
    ],
)
def test_a_claim_that_is_not_utf8_is_refused_naming_the_offset(
    tmp_path: Path, name: str, content: bytes
) -> None:
    path = tmp_path / f"{name}.yaml"
    path.write_bytes(content)
    message = _refused(path)
    assert "not UTF-8" in message
    assert str(path) in message


def test_a_utf8_claim_with_a_byte_order_mark_reads_like_one_without(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + CLAIM.encode())
    assert load_claim(path).metadata.name == "platform"


@pytest.mark.parametrize(
    "content",
    [
        "[" * 100_000 + "]" * 100_000,
        "{a: " * 50_000 + "}" * 50_000,
        "spec: " + "{" * 100_000,
    ],
    ids=["sequences", "mappings", "unclosed"],
)
def test_deeply_nested_yaml_is_refused_at_once(tmp_path: Path, content: str) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text(content)
    started = time.perf_counter()
    message = _refused(path)
    assert f"nested deeper than {MAX_NESTING} levels" in message
    # Unbounded, the {a: case took the YAML parser about a minute of CPU.
    assert time.perf_counter() - started < 1.0


def test_a_claim_nested_as_deep_as_a_real_one_in_flow_style_still_loads(tmp_path: Path) -> None:
    """JSON is YAML: a claim written entirely in flow style nests every level in brackets."""
    fk = '{"columns": ["org_id"], "references": {"table": "orgs", "columns": ["id"]}}'
    table = f'{{"name": "users", "foreignKeys": [{fk}]}}'
    store = (
        '{"name": "main", "kind": "postgres", "postgres": '
        f'{{"schemas": [{{"name": "public", "tables": [{table}]}}]}}}}'
    )
    path = tmp_path / "claim.json"
    path.write_text(
        '{"apiVersion": "datarch.io/v1alpha1", "kind": "DataArchitectureClaim", '
        f'"metadata": {{"name": "platform"}}, "spec": {{"stores": [{store}]}}}}'
    )
    assert load_claim(path).spec.stores[0].name == "main"


def test_a_claim_larger_than_the_bound_is_refused_without_being_read_whole(
    tmp_path: Path,
) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as file:
        file.write(CLAIM.encode())
        file.truncate(MAX_DOCUMENT_BYTES + 1)
    message = _refused(path)
    assert "larger than" in message


def test_an_endless_input_is_refused_by_its_size() -> None:
    started = time.perf_counter()
    message = _refused(Path("/dev/zero"))
    assert "larger than" in message
    assert time.perf_counter() - started < 5.0


def test_a_directory_or_a_missing_file_is_one_line(tmp_path: Path) -> None:
    assert "while reading" in _refused(tmp_path)
    assert "No such file" in _refused(tmp_path / "missing.yaml")


def test_the_cli_exits_two_with_one_line_for_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "claim.yaml"
    path.write_bytes(CLAIM.encode("utf-16"))
    run = subprocess.run(
        [sys.executable, "-m", "datarch", "verify", "-f", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
    assert "not UTF-8" in run.stderr


def test_a_secret_file_that_is_not_utf8_is_that_stores_problem_without_its_bytes(
    tmp_path: Path,
) -> None:
    (tmp_path / "pg").mkdir()
    (tmp_path / "pg" / "dsn").write_bytes("postgresql://u:g\u00e9heim@db/app".encode("latin-1"))
    with pytest.raises(SecretUnavailable) as caught:
        asyncio.run(LocalSecrets(tmp_path).read("pg", "dsn"))
    assert "not UTF-8" in str(caught.value)
    assert "heim" not in str(caught.value)
    assert caught.value.__cause__ is None
