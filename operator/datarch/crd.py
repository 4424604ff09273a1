"""The CRD, generated from the pydantic models in claims.py (the single source of truth).

Turns pydantic's JSON Schema into a structural OpenAPI v3 schema: references
inlined, optional fields flattened, free-form maps marked, CEL rules kept.
"""

from __future__ import annotations

from typing import Any

import yaml

from datarch.claims import (
    API_GROUP,
    API_VERSION,
    KIND,
    PLURAL,
    SHORT_NAME,
    ClaimSpec,
    ClaimStatus,
)

PRINTER_COLUMNS = [
    {
        "name": "Ready",
        "type": "string",
        "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
    },
    {"name": "Findings", "type": "integer", "jsonPath": ".status.summary.findings"},
    {
        "name": "Stores",
        "type": "string",
        "jsonPath": ".status.summary.stores",
        "description": "Stores reachable of total",
    },
    {
        "name": "Backups",
        "type": "string",
        "jsonPath": ".status.summary.backups",
        "description": "Backups fresh of total",
    },
    {"name": "Last Verified", "type": "date", "jsonPath": ".status.lastVerifiedAt"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]

# Keys of JSON Schema that a structural OpenAPI v3 schema does not carry.
_DROPPED = {"title", "$defs", "discriminator", "const"}


def _structural(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_structural(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    if "$ref" in node:
        referenced = defs[node.pop("$ref").rsplit("/", 1)[-1]]
        node = {**referenced, **node}
    if "anyOf" in node:
        options = [o for o in node.pop("anyOf") if o.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"unions other than Optional[X] cannot be structural: {options}")
        if node.get("default", ...) is None:
            del node["default"]
        node = {**_structural(options[0], defs), **node}
    if "const" in node:
        node["enum"] = [node["const"]]
    if "enum" in node and "type" not in node:
        kinds = {type(v) for v in node["enum"]}
        node["type"] = "integer" if kinds == {int} else "string"
    result: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED:
            continue
        if key == "properties":
            result[key] = {name: _structural(prop, defs) for name, prop in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            result[key] = _structural(value, defs)
        else:
            result[key] = value
    if result.get("type") == "object" and "properties" not in result:
        extra = result.get("additionalProperties")
        if extra is True or extra == {} or extra is None:
            # A free-form document (a Mongo validator, a partial filter): kept as written.
            result.pop("additionalProperties", None)
            result["x-kubernetes-preserve-unknown-fields"] = True
    if "properties" in result and result.get("additionalProperties") is False:
        # Structural schemas forbid both; unknown fields are refused by strict field validation.
        del result["additionalProperties"]
    if result.get("default") is None:
        result.pop("default", None)
    return result


def openapi_schema(model: type[ClaimSpec] | type[ClaimStatus], mode: str) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True, mode=mode)  # type: ignore[arg-type]
    defs = schema.pop("$defs", {})
    structural: dict[str, Any] = _structural(schema, defs)
    return structural


def crd() -> dict[str, Any]:
    spec = openapi_schema(ClaimSpec, "validation")
    spec["description"] = "What the docs say about the platform's data stores and backups."
    status = openapi_schema(ClaimStatus, "serialization")
    status["description"] = "What the last verification found."
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{API_GROUP}"},
        "spec": {
            "group": API_GROUP,
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": KIND.lower(),
                "shortNames": [SHORT_NAME],
                "categories": ["datarch"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": API_VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "A platform's documented data architecture, verified "
                            "continuously against the live stores.",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec,
                                "status": status,
                            },
                        }
                    },
                }
            ],
        },
    }


def crd_yaml() -> str:
    return yaml.safe_dump(crd(), sort_keys=False, allow_unicode=True, width=100)
