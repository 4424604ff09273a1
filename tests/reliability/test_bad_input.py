"""Every class of bad input `datarch verify` may be handed, refused before any store is
touched: exit 2, one line naming the field or the file's problem, no traceback, no
secret, and fast. Each invalid claim is also sent to the API server (a server-side dry
run of a create, nothing stored), which must refuse it naming the same field.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as kube
from kubernetes.client.exceptions import ApiException
from reliability_figures import FIGURES

from conftest import install_crd
from datarch.claims import API_GROUP, API_VERSION, PLURAL

pytestmark = pytest.mark.reliability

CANARY = "canary-bad-input-31f7"
REFUSED: list[str] = []
API_REFUSED: list[str] = []


def _claim(**spec: Any) -> dict[str, Any]:
    stores = spec.pop(
        "stores", [{"name": "cache", "kind": "redis", "connection": {"url": "redis://127.0.0.1:1"}}]
    )
    return {
        "apiVersion": "datarch.io/v1alpha1",
        "kind": "DataArchitectureClaim",
        "metadata": {"name": "platform", "namespace": "data"},
        "spec": {"timeout": "1s", "stores": stores, **spec},
    }


def _yaml(document: dict[str, Any]) -> bytes:
    return yaml.safe_dump(document).encode()


def _s3(bucket: str) -> list[dict[str, Any]]:
    return [{"name": "objects", "kind": "s3", "s3": {"buckets": [{"name": bucket}]}}]


def _secret_store(kind: str, key: str) -> list[dict[str, Any]]:
    return [{"name": "broken", "kind": kind, "connection": {"secretRef": {"name": "bad"}}}]


# (id, file content or a path maker, environment, what stderr must name, exit code)
CASES: list[tuple[str, bytes | Callable[[Path], Path], dict[str, str], str]] = [
    ("binary", bytes(range(256)) * 8, {}, "not UTF-8"),
    ("latin-1", _yaml(_claim()).replace(b"platform", b"plateforme-\xe9t\xe9"), {}, "not UTF-8"),
    ("utf-16", _yaml(_claim()).decode().encode("utf-16"), {}, "not UTF-8"),
    ("deep flow mappings", b"{a: " * 50_000 + b"}" * 50_000, {}, "nested deeper than"),
    ("deep flow sequences", b"[" * 100_000, {}, "nested deeper than"),
    ("endless", lambda _: Path("/dev/zero"), {}, "larger than"),
    ("a directory", lambda tmp: tmp, {}, "while reading"),
    ("missing", lambda tmp: tmp / "missing.yaml", {}, "No such file"),
    ("not a claim", b"- just\n- a list\n", {}, "expected a mapping"),
    ("another kind", b"kind: Deployment\n", {}, "not DataArchitectureClaim"),
    ("bucket ../../etc", _yaml(_claim(stores=_s3("../../etc"))), {}, "buckets[0].name"),
    ("bucket a b", _yaml(_claim(stores=_s3("a b"))), {}, "buckets[0].name"),
    ("bucket UPPER_case", _yaml(_claim(stores=_s3("UPPER_case"))), {}, "buckets[0].name"),
    ("absurd interval", _yaml(_claim(interval="9999999999h")), {}, "spec.interval"),
    ("interval in words", _yaml(_claim(interval="5 minutes")), {}, "spec.interval"),
    ("zero timeout", _yaml(_claim(timeout="0s")), {}, "spec.timeout"),
    ("unknown kind", _yaml(_claim(stores=[{"name": "x", "kind": "oracle"}])), {}, "kind"),
    ("unknown field", _yaml(_claim(colour="blue")), {}, "spec.colour"),
    (
        "malformed NATS URL",
        _yaml(_claim(stores=_secret_store("nats", "url"))),
        {"DATARCH_SECRET_BAD_URL": f"nats://readonly:{CANARY}@[127.0.0.1:notaport"},
        "secret bad key url",
    ),
    (
        "malformed Redis port",
        _yaml(_claim(stores=_secret_store("redis", "url"))),
        {"DATARCH_SECRET_BAD_URL": f"redis://:{CANARY}@127.0.0.1:notaport/0"},
        "secret bad key url",
    ),
    (
        "malformed PostgreSQL DSN",
        _yaml(_claim(stores=_secret_store("postgres", "dsn"))),
        {"DATARCH_SECRET_BAD_DSN": f"host=db password='{CANARY}"},
        "secret bad key dsn",
    ),
    (
        "malformed MongoDB URI",
        _yaml(_claim(stores=_secret_store("mongodb", "uri"))),
        {"DATARCH_SECRET_BAD_URI": f"mongodb://u:{CANARY}@127.0.0.1:notaport/"},
        "secret bad key uri",
    ),
]


@pytest.mark.parametrize(
    ("content", "environ", "named"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_is_refused_in_one_line_naming_what_is_wrong(
    tmp_path: Path,
    *,
    content: bytes | Callable[[Path], Path],
    environ: dict[str, str],
    named: str,
    kube_api: kube.ApiClient,
    kube_namespace: str,
) -> None:
    if isinstance(content, bytes):
        path = tmp_path / "claim.yaml"
        path.write_bytes(content)
    else:
        path = content(tmp_path)
    started = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-m", "datarch", "verify", "-f", str(path), "-o", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", **environ},
    )
    took = time.perf_counter() - started
    assert run.returncode == 2, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    assert CANARY not in run.stdout + run.stderr
    assert named in run.stderr, run.stderr
    if not environ:  # refused before any store: the report is stderr's one line alone
        assert len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert took < 10.0
    if isinstance(content, bytes) and not environ and content.startswith(b"apiVersion"):
        with contextlib.suppress(UnicodeDecodeError):  # text only: the API server takes JSON
            document = yaml.safe_load(content.decode("utf-8"))
            document["metadata"]["namespace"] = kube_namespace
            _refused_by_the_api_server(kube_api, kube_namespace, document, named)
    REFUSED.append(named)
    FIGURES["inputs"] = (
        f"{len(REFUSED)}/{len(CASES)} bad inputs refused "
        f"({len(API_REFUSED)} invalid claims by the API server too)"
    )


def _refused_by_the_api_server(
    api: kube.ApiClient, namespace: str, document: dict[str, Any], named: str
) -> None:
    install_crd(api)
    custom: Any = kube.CustomObjectsApi(api)
    with pytest.raises(ApiException) as refused:
        custom.create_namespaced_custom_object(
            API_GROUP, API_VERSION, namespace, PLURAL, document,
            dry_run="All", field_validation="Strict",
        )  # fmt: skip
    assert refused.value.status in (400, 422), refused.value.body
    body = json.loads(refused.value.body)
    causes = [
        f"{c.get('field')}: {c.get('message')}" for c in body.get("details", {}).get("causes", [])
    ]
    reported = "\n".join([body["message"], *causes])
    assert named in reported, reported
    API_REFUSED.append(named)
