"""The CRD is generated from the claim models, structurally, and the repo carries exactly it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datarch.crd import crd, crd_yaml

REPO = Path(__file__).parents[2]
CRD_FILE = "datarch.io_dataarchitectureclaims.yaml"


def test_crds_folder_carries_exactly_what_datarch_crd_prints() -> None:
    assert (REPO / "crds" / CRD_FILE).read_text() == crd_yaml(), "crds/ is stale: run `make crds`"


def test_the_helm_chart_carries_the_same_crd() -> None:
    assert (REPO / "helm" / "datarch" / "crds" / CRD_FILE).read_text() == crd_yaml()


def _walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    if not isinstance(node, dict):
        return []
    found = [(path, node)]
    for name, child in (node.get("properties") or {}).items():
        found += _walk(child, f"{path}.{name}")
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            found += _walk(node[key], f"{path}[]")
    return found


def test_the_schema_is_structural_every_node_typed_and_no_unions_or_references() -> None:
    schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema):
        assert not {"$ref", "anyOf", "oneOf", "allOf", "title"} & node.keys(), path
        assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), path
        assert not ("properties" in node and "additionalProperties" in node), path


def test_every_spec_and_status_field_is_described_for_kubectl_explain() -> None:
    root = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
    for part in ("spec", "status"):
        undescribed = [
            path
            for path, node in _walk(root[part])[1:]
            if not path.endswith("[]") and "description" not in node
        ]
        assert undescribed == [], part
