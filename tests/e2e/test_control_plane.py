"""The local control plane serves custom resources: a CRD becomes Established and
objects of it can be created in a namespace. Nothing else runs (no controller-manager,
no scheduler), so this is as far as the API server alone goes."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from kubernetes import client as kube
from kubernetes.client.exceptions import ApiException

pytestmark = pytest.mark.e2e

GROUP = "test.datarch.io"


def widget_crd(plural: str, kind: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": plural[:-1], "kind": kind},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {"size": {"type": "integer", "minimum": 1}},
                                    "required": ["size"],
                                }
                            },
                        }
                    },
                }
            ],
        },
    }


def wait_for(condition: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)


def test_crd_established_and_object_created(kube_api: kube.ApiClient, kube_namespace: str) -> None:
    extensions = kube.ApiextensionsV1Api(kube_api)
    objects = kube.CustomObjectsApi(kube_api)
    # A kind of its own per run: CRDs are cluster-wide and runs may overlap.
    suffix = uuid.uuid4().hex[:8]
    plural, kind = f"widgets{suffix}", f"Widget{suffix}"
    crd_name = f"{plural}.{GROUP}"

    def established() -> bool:
        crd = extensions.read_custom_resource_definition(crd_name)
        conditions = (crd.status and crd.status.conditions) or []
        return any(c.type == "Established" and c.status == "True" for c in conditions)

    def crd_gone() -> bool:
        try:
            extensions.read_custom_resource_definition(crd_name)
        except ApiException as exc:
            if exc.status == 404:
                return True
            raise
        return False

    extensions.create_custom_resource_definition(widget_crd(plural, kind))
    try:
        wait_for(established, f"CRD {crd_name} to be Established")
        widget = {
            "apiVersion": f"{GROUP}/v1",
            "kind": kind,
            "metadata": {"name": "sample"},
            "spec": {"size": 3},
        }
        objects.create_namespaced_custom_object(GROUP, "v1", kube_namespace, plural, widget)
        stored = objects.get_namespaced_custom_object(GROUP, "v1", kube_namespace, plural, "sample")
        assert stored["spec"] == {"size": 3}
        assert stored["metadata"]["namespace"] == kube_namespace
    finally:
        extensions.delete_custom_resource_definition(crd_name)
        wait_for(crd_gone, f"CRD {crd_name} to be deleted")
