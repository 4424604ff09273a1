"""The generated CRD on the real kube-apiserver: it installs, explains itself, and refuses bad claims."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from datarch.claims import API_GROUP, API_VERSION, PLURAL

pytestmark = pytest.mark.e2e

CRD_FILE = Path(__file__).parents[2] / "crds" / "datarch.io_dataarchitectureclaims.yaml"


@pytest.fixture(scope="module")
def claims_crd(kube_api: client.ApiClient) -> None:
    """Installs the CRD from crds/ (the file users apply) and waits until it is Established."""
    document = yaml.safe_load(CRD_FILE.read_text())
    extensions = client.ApiextensionsV1Api(kube_api)
    try:
        extensions.create_custom_resource_definition(document)
    except ApiException as error:
        if error.status != 409:
            raise
        current = extensions.read_custom_resource_definition(document["metadata"]["name"])
        document["metadata"]["resourceVersion"] = current.metadata.resource_version
        extensions.replace_custom_resource_definition(document["metadata"]["name"], document)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        crd = extensions.read_custom_resource_definition(document["metadata"]["name"])
        conditions = {c.type: c.status for c in (crd.status.conditions or [])}
        if conditions.get("Established") == "True":
            return
        time.sleep(0.2)
    pytest.fail("the CRD never became Established")


VALID: dict[str, Any] = {
    "interval": "5m",
    "stores": [
        {
            "name": "main",
            "kind": "postgres",
            "connection": {"secretRef": {"name": "pg", "key": "dsn"}},
            "postgres": {"schemas": [{"name": "public", "tables": [{"name": "users"}]}]},
        },
        {
            "name": "events",
            "kind": "nats",
            "nats": {
                "streams": [
                    {
                        "name": "EVENTS",
                        "maxAge": "168h",
                        "consumers": [{"name": "worker", "lag": {"maxPending": 10}}],
                    }
                ]
            },
        },
        {
            "name": "objects",
            "kind": "s3",
            "s3": {"buckets": [{"name": "uploads", "versioning": "enabled"}]},
        },
        {"name": "cache", "kind": "redis", "absent": True},
    ],
    "backups": [
        {
            "name": "nightly",
            "store": "main",
            "cronJob": {"name": "pg-backup"},
            "artifact": {"store": "objects", "bucket": "backups"},
        }
    ],
}


def _mutated(path: list[Any], value: Any) -> dict[str, Any]:
    """VALID with one value replaced (or removed, for value None)."""
    spec = copy.deepcopy(VALID)
    node: Any = spec
    for key in path[:-1]:
        node = node[key]
    if value is None:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return spec


INVALID = [
    (_mutated(["stores"], None), "spec.stores: Required value"),
    (_mutated(["stores"], []), "spec.stores"),
    (_mutated(["stores", 0, "kind"], "oracle"), "spec.stores[0].kind"),
    (_mutated(["interval"], "5 minutes"), "spec.interval"),
    (
        _mutated(["stores", 1, "nats", "streams", 0, "maxAge"], "a week"),
        "spec.stores[1].nats.streams[0].maxAge",
    ),
    (_mutated(["stores", 1, "name"], "main"), "store names must be unique"),
    (_mutated(["backups", 0, "store"], "elsewhere"), "spec.backups"),
    (
        _mutated(["backups", 0, "artifact", "store"], "main"),
        "artifact's store must name an s3 store",
    ),
    (_mutated(["stores", 3, "postgres"], {}), "spec.stores[3].postgres"),
    (_mutated(["stores", 3, "version"], ">=7"), "spec.stores[3].absent"),
    (_mutated(["stores", 0, "colour"], "blue"), "spec.stores[0].colour"),
    (_mutated(["stores", 0, "name"], "Main!"), "spec.stores[0].name"),
    (
        _mutated(["stores", 1, "nats", "streams", 0, "consumers", 0, "lag", "maxPending"], -1),
        "spec.stores[1].nats.streams[0].consumers[0].lag.maxPending",
    ),
    (
        _mutated(["stores", 2, "s3", "buckets", 0, "versioning"], "on"),
        "spec.stores[2].s3.buckets[0].versioning",
    ),
    *(
        (
            _mutated(["stores", 2, "s3", "buckets", 0, "name"], name),
            "spec.stores[2].s3.buckets[0].name",
        )
        for name in ("../../etc", "a b", "UPPER_case", "a..b", "ab")
    ),
    (
        _mutated(["backups", 0, "artifact", "bucket"], "../../etc"),
        "spec.backups[0].artifact.bucket",
    ),
    (_mutated(["timeout"], "30"), "spec.timeout"),
    (_mutated(["interval"], "0s"), "spec.interval: must be at least 1s"),
    (_mutated(["timeout"], "0s"), "spec.timeout: must be at least 100ms"),
    # CEL's duration() overflows past ~292 years: "type conversion error" said nothing useful.
    (_mutated(["interval"], "9999999999h"), "spec.interval: must be at most"),
    (_mutated(["timeout"], "3000000h"), "spec.timeout: must be at most"),
    (
        _mutated(["backups", 0, "maxAge"], "99999999999999s"),
        "spec.backups[0].maxAge: must be at most",
    ),
]


def _create(kube_api: client.ApiClient, namespace: str, name: str, spec: dict[str, Any]) -> Any:
    body = {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": "DataArchitectureClaim",
        "metadata": {"name": name},
        "spec": spec,
    }
    return client.CustomObjectsApi(kube_api).create_namespaced_custom_object(
        API_GROUP, API_VERSION, namespace, PLURAL, body, field_validation="Strict"
    )


def test_a_valid_claim_is_accepted_by_the_api_server(
    claims_crd: None, kube_api: client.ApiClient, kube_namespace: str
) -> None:
    created = _create(kube_api, kube_namespace, "valid", VALID)
    assert created["spec"]["stores"][0]["name"] == "main"


@pytest.mark.parametrize(("spec", "named"), INVALID, ids=[named for _, named in INVALID])
def test_an_invalid_claim_is_rejected_by_the_api_server_naming_the_field(
    claims_crd: None,
    kube_api: client.ApiClient,
    kube_namespace: str,
    spec: dict[str, Any],
    named: str,
) -> None:
    with pytest.raises(ApiException) as error:
        _create(kube_api, kube_namespace, "invalid", spec)
    assert error.value.status == 422 or (
        error.value.status == 400 and "unknown field" in error.value.body
    )
    status = json.loads(error.value.body)
    causes = [
        f"{c.get('field')}: {c.get('message')}" for c in status.get("details", {}).get("causes", [])
    ]
    reported = "\n".join([status["message"], *causes])
    # A CEL rule's cause reads `Invalid value: "0s": must be ...`; compare without the value.
    assert named in reported or named in re.sub(r'Invalid value: "[^"]*": ', "", reported)


def test_kubectl_explain_reads_the_field_descriptions(claims_crd: None) -> None:
    explained = subprocess.run(
        ["kubectl", "explain", "dac.spec.stores"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert explained.returncode == 0, explained.stderr
    assert "Unique within the claim" in explained.stdout
    assert "postgres | mongodb | nats | s3 | redis" in explained.stdout
