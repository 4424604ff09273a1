"""The Helm chart: it lints, its three kinds of install are accepted by a real API server,
and its RBAC is enough for the operator and no more.

The RBAC proof installs the chart's rendered ServiceAccount, roles and bindings for real,
asks the TokenRequest API for that ServiceAccount's token, and then acts with it: every
read and write the operator makes succeeds, and what it was not granted is refused.
Finally the operator itself runs on that token against a claim.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as kube
from kubernetes import config as kube_config
from kubernetes.client.exceptions import ApiException
from prometheus_client.parser import text_string_to_metric_families

from conftest import (
    RedisDb,
    delete_namespace,
    env,
    free_port,
    install_crd,
    tool,
    unique_name,
)

REPO = Path(__file__).parents[2]
CHART = REPO / "helm" / "datarch"
CRD_FILE = "datarch.io_dataarchitectureclaims.yaml"
GROUP, VERSION, PLURAL = "datarch.io", "v1alpha1", "dataarchitectureclaims"

# Every test here, the ones that only render the chart too: they live beside the installs
# they share value sets and rendering with.
pytestmark = pytest.mark.e2e


def run(*argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, check=False, input=stdin, capture_output=True, text=True, timeout=120
    )


# --------------------------------------------------------------------------- value sets


def value_sets(watched: list[str], other: str) -> dict[str, dict[str, Any]]:
    """The three installs the chart supports: as it comes, namespaced, and every option on."""
    return {
        "defaults": {},
        "namespaced": {"watchNamespaces": watched, "rbac": {"namespaced": True}},
        "everything": {
            "image": {
                "repository": "registry.example/datarch",
                "tag": "0.1.0-test",
                "pullPolicy": "Always",
            },
            "imagePullSecrets": [{"name": "regcred"}],
            "watchNamespaces": watched,
            "serviceAccount": {"annotations": {"example.com/role": "datarch"}},
            "extraEnv": [{"name": "DATARCH_MAX_CONCURRENT_CLAIMS", "value": "4"}],
            "logLevel": "DEBUG",
            "metricsPort": 9090,
            "healthPort": 9091,
            "podAnnotations": {"example.com/scrape": "true"},
            "podLabels": {"team": "platform"},
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "tolerations": [
                {"key": "dedicated", "operator": "Equal", "value": "ops", "effect": "NoSchedule"}
            ],
            "affinity": {
                "nodeAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [
                        {
                            "weight": 1,
                            "preference": {
                                "matchExpressions": [
                                    {
                                        "key": "kubernetes.io/arch",
                                        "operator": "In",
                                        "values": ["amd64"],
                                    }
                                ]
                            },
                        }
                    ]
                }
            },
            "service": {"annotations": {"example.com/metrics": "true"}, "port": 9090},
            "serviceMonitor": {"enabled": True, "interval": "1m", "labels": {"release": "prom"}},
            "prometheusRule": {
                "enabled": True,
                "labels": {"release": "prom"},
                "additionalAlertLabels": {"team": "platform"},
            },
            "grafanaDashboard": {
                "enabled": True,
                "namespace": other,
                "annotations": {"grafana_folder": "Data"},
            },
        },
    }


def render(release: str, namespace: str, values: dict[str, Any], tmp: Path) -> list[dict[str, Any]]:
    values_file = tmp / f"{release}-values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    result = run(
        tool("helm"),
        "template",
        release,
        str(CHART),
        "--namespace",
        namespace,
        "--values",
        str(values_file),
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def kinds(documents: list[dict[str, Any]]) -> list[str]:
    return sorted(doc["kind"] for doc in documents)


# --------------------------------------------------------------------------- without a cluster


def test_the_chart_carries_the_generated_crd_byte_for_byte() -> None:
    assert (CHART / "crds" / CRD_FILE).read_bytes() == (REPO / "crds" / CRD_FILE).read_bytes()
    assert [p.name for p in (CHART / "crds").iterdir()] == [CRD_FILE]


@pytest.mark.parametrize("value_set", ["defaults", "namespaced", "everything"])
def test_helm_lint_passes_strictly(value_set: str, tmp_path: Path) -> None:
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(value_sets(["team-a", "team-b"], "grafana")[value_set]))
    result = run(tool("helm"), "lint", "--strict", str(CHART), "--values", str(values_file))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout


def test_the_rbac_never_uses_a_wildcard(tmp_path: Path) -> None:
    for values in value_sets(["team-a", "team-b"], "grafana").values():
        for doc in render("datarch", "ops", values, tmp_path):
            for rule in doc.get("rules", []):
                words = [*rule["apiGroups"], *rule["resources"], *rule["verbs"]]
                assert "*" not in words, (doc["kind"], rule)


def secret_rules(documents: list[dict[str, Any]]) -> list[tuple[str, str | None, list[str]]]:
    """(kind, namespace, verbs) of every rule on secrets."""
    return [
        (doc["kind"], doc["metadata"].get("namespace"), rule["verbs"])
        for doc in documents
        for rule in doc.get("rules", [])
        if "secrets" in rule["resources"]
    ]


def test_secrets_are_readable_only_in_the_watched_namespaces(tmp_path: Path) -> None:
    sets = value_sets(["team-a", "team-b"], "grafana")
    every_namespace = render("datarch", "ops", sets["defaults"], tmp_path)
    assert secret_rules(every_namespace) == [("ClusterRole", None, ["get"])]
    namespaced = render("datarch", "ops", sets["namespaced"], tmp_path)
    assert secret_rules(namespaced) == [("Role", "team-a", ["get"]), ("Role", "team-b", ["get"])]
    assert not {"ClusterRole", "ClusterRoleBinding"} & set(kinds(namespaced))
    cluster_with_namespaces = render("datarch", "ops", {"watchNamespaces": ["team-a"]}, tmp_path)
    assert secret_rules(cluster_with_namespaces) == [("Role", "team-a", ["get"])]


def test_the_operator_runs_locked_down_with_probes_and_the_values_arguments(
    tmp_path: Path,
) -> None:
    sets = value_sets(["team-a", "team-b"], "grafana")
    documents = render("datarch", "ops", sets["namespaced"], tmp_path)
    deployment = next(doc for doc in documents if doc["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["args"] == [
        "--namespace=team-a",
        "--namespace=team-b",
        "--metrics-port=8080",
        "--health-port=8081",
    ]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {
        "metrics": 8080,
        "health": 8081,
    }
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]


def test_the_dashboard_configmap_carries_the_dashboard_and_the_sidecar_label(
    tmp_path: Path,
) -> None:
    sets = value_sets(["team-a"], "grafana")
    documents = render("datarch", "ops", sets["everything"], tmp_path)
    config_map = next(doc for doc in documents if doc["kind"] == "ConfigMap")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["namespace"] == "grafana"
    shipped = json.loads((CHART / "files" / "dashboard.json").read_text())
    assert json.loads(config_map["data"]["datarch.json"]) == shipped
    relabelled = render(
        "datarch",
        "ops",
        {"grafanaDashboard": {"enabled": True, "label": "dashboards", "labelValue": "datarch"}},
        tmp_path,
    )
    labels = next(d for d in relabelled if d["kind"] == "ConfigMap")["metadata"]["labels"]
    assert labels["dashboards"] == "datarch" and "grafana_dashboard" not in labels


def test_values_that_cannot_work_together_fail_the_render(tmp_path: Path) -> None:
    for values, message in [
        ({"rbac": {"namespaced": True}}, "rbac.namespaced: true needs watchNamespaces"),
        ({"watchNamespaces": ["team-*"]}, "exact names only"),
    ]:
        values_file = tmp_path / "values.yaml"
        values_file.write_text(yaml.safe_dump(values))
        result = run(tool("helm"), "template", "datarch", str(CHART), "--values", str(values_file))
        assert result.returncode != 0 and message in result.stderr, result.stderr


def test_the_run_on_a_cluster_steps_match_the_kind_config() -> None:
    config = yaml.safe_load((REPO / "kind-config.yaml").read_text())
    assert (config["apiVersion"], config["kind"]) == ("kind.x-k8s.io/v1alpha4", "Cluster")
    section = (
        (REPO / "README.md").read_text().split("## Run on a cluster", 1)[1].split("\n## ", 1)[0]
    )
    for step in (
        "kind create cluster --config kind-config.yaml",
        f"kind load docker-image datarch:0.1.0 --name {config['name']}",
        "helm install datarch helm/datarch",
        "kubectl apply -f examples/",
    ):
        assert step in section, step
    # What is and is not run here: the chart on a real node, not the kind commands.
    assert "kind commands\nthemselves are not run here" in section
    assert "`make test-node`" in section


# --------------------------------------------------------------------------- on the API server

# Minimal copies of prometheus-operator's CRDs, shaped like upstream's (names, scope, the
# fields the chart sets, typed as upstream types them), the rest preserved unchecked.
DURATION = (
    "^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
)
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}


def monitoring_crd(kind: str, plural: str, short: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.monitoring.coreos.com"},
        "spec": {
            "group": "monitoring.coreos.com",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": [short],
                "categories": ["prometheus-operator"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec,
                            },
                        }
                    },
                }
            ],
        },
    }


SERVICE_MONITOR_CRD = monitoring_crd(
    "ServiceMonitor",
    "servicemonitors",
    "smon",
    {
        "type": "object",
        "required": ["selector"],
        "x-kubernetes-preserve-unknown-fields": True,
        "properties": {
            "selector": {
                "type": "object",
                "x-kubernetes-map-type": "atomic",
                "properties": {"matchLabels": STRING_MAP},
                "x-kubernetes-preserve-unknown-fields": True,
            },
            "namespaceSelector": {
                "type": "object",
                "properties": {
                    "any": {"type": "boolean"},
                    "matchNames": {"type": "array", "items": {"type": "string"}},
                },
            },
            "endpoints": {
                "type": "array",
                "items": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": True,
                    "properties": {
                        "port": {"type": "string"},
                        "path": {"type": "string"},
                        "interval": {"type": "string", "pattern": DURATION},
                        "scrapeTimeout": {"type": "string", "pattern": DURATION},
                    },
                },
            },
        },
    },
)
PROMETHEUS_RULE_CRD = monitoring_crd(
    "PrometheusRule",
    "prometheusrules",
    "promrule",
    {
        "type": "object",
        "properties": {
            "groups": {
                "type": "array",
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "x-kubernetes-preserve-unknown-fields": True,
                    "properties": {
                        "name": {"type": "string", "minLength": 1},
                        "interval": {"type": "string", "pattern": DURATION},
                        "rules": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["expr"],
                                "properties": {
                                    "alert": {"type": "string"},
                                    "record": {"type": "string"},
                                    "expr": {
                                        "anyOf": [{"type": "integer"}, {"type": "string"}],
                                        "x-kubernetes-int-or-string": True,
                                    },
                                    "for": {"type": "string", "pattern": DURATION},
                                    "keep_firing_for": {
                                        "type": "string",
                                        "minLength": 1,
                                        "pattern": DURATION,
                                    },
                                    "labels": STRING_MAP,
                                    "annotations": STRING_MAP,
                                },
                            },
                        },
                    },
                },
            }
        },
    },
)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.25)


@pytest.fixture(scope="module")
def crds(kube_api: kube.ApiClient) -> None:
    # The claims CRD as the chart ships it; the monitoring ones only if nobody installed them.
    install_crd(kube_api, yaml.safe_load((CHART / "crds" / CRD_FILE).read_text()), replace=True)
    install_crd(kube_api, SERVICE_MONITOR_CRD, replace=False)
    install_crd(kube_api, PROMETHEUS_RULE_CRD, replace=False)


@pytest.fixture(scope="module")
def namespaces(kube_api: kube.ApiClient) -> Iterator[dict[str, str]]:
    """The operator's namespace, two watched ones and one it must not see."""
    names = {role: unique_name(f"t-{role}-") for role in ("ops", "watched", "watched2", "other")}
    core = kube.CoreV1Api(kube_api)
    try:
        for name in names.values():
            core.create_namespace(kube.V1Namespace(metadata=kube.V1ObjectMeta(name=name)))
        yield names
    finally:
        for name in names.values():
            delete_namespace(kube_api, name)


@pytest.mark.parametrize("value_set", ["defaults", "namespaced", "everything"])
def test_the_api_server_accepts_every_rendered_object(
    value_set: str,
    crds: None,
    namespaces: dict[str, str],
    tmp_path: Path,
) -> None:
    sets = value_sets([namespaces["watched"], namespaces["watched2"]], namespaces["other"])
    release = unique_name("r")
    documents = render(release, namespaces["ops"], sets[value_set], tmp_path)
    result = run(
        tool("kubectl"),
        "apply",
        "--dry-run=server",
        "-o",
        "json",
        "-f",
        "-",
        stdin=yaml.safe_dump_all(documents),
    )
    assert result.returncode == 0, result.stderr
    accepted = json.loads(result.stdout)
    accepted_items = accepted["items"] if accepted["kind"] == "List" else [accepted]
    assert kinds(accepted_items) == kinds(documents)
    expected_optional = {"ServiceMonitor", "PrometheusRule", "ConfigMap"}
    if value_set == "everything":
        assert expected_optional <= set(kinds(documents))
    else:
        assert not expected_optional & set(kinds(documents))


# --------------------------------------------------------------------------- RBAC, for real


@dataclass(frozen=True)
class Installed:
    """The chart's RBAC installed in one mode, and clients acting as its ServiceAccount."""

    mode: str
    seed: str  # the name of the claim, Secret and CronJob seeded for it
    namespaces: dict[str, str]
    operator: kube.ApiClient  # authenticated with the ServiceAccount's token
    kubeconfig: Path  # the same token, for a subprocess


def token_kubeconfig(token: str, path: Path) -> Path:
    admin = yaml.safe_load(Path(env("KUBECONFIG")).read_text())
    context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])
    cluster = next(c for c in admin["clusters"] if c["name"] == context["context"]["cluster"])
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "local", "cluster": cluster["cluster"]}],
                "users": [{"name": "datarch", "user": {"token": token}}],
                "contexts": [
                    {"name": "datarch", "context": {"cluster": "local", "user": "datarch"}}
                ],
                "current-context": "datarch",
            }
        )
    )
    path.chmod(0o600)
    return path


def claim(
    name: str,
    stores: list[dict[str, Any]],
    backups: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"interval": "1m", "timeout": "10s", "stores": stores}
    if backups:
        spec["backups"] = backups
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "DataArchitectureClaim",
        "metadata": {"name": name},
        "spec": spec,
    }


def create_cron_job(api: kube.ApiClient, namespace: str, name: str) -> None:
    """A backup CronJob; nothing runs it here (no controller-manager), so it has no Jobs."""
    container = kube.V1Container(name="backup", image="busybox")
    pod = kube.V1PodTemplateSpec(
        spec=kube.V1PodSpec(restart_policy="Never", containers=[container])
    )
    kube.BatchV1Api(api).create_namespaced_cron_job(
        namespace,
        kube.V1CronJob(
            metadata=kube.V1ObjectMeta(name=name),
            spec=kube.V1CronJobSpec(
                schedule="0 2 * * *",
                job_template=kube.V1JobTemplateSpec(spec=kube.V1JobSpec(template=pod)),
            ),
        ),
    )


SEED_CLAIM = claim("seed", [{"name": "cache", "kind": "redis", "absent": True}])


# namespaced: Roles only; cluster: a ClusterRole plus a Role for secrets in the watched
# namespace; everywhere: the defaults, one ClusterRole for every namespace, secrets too.
MODES = {
    "namespaced": lambda watched: {"watchNamespaces": [watched], "rbac": {"namespaced": True}},
    "cluster": lambda watched: {"watchNamespaces": [watched]},
    "everywhere": lambda watched: {},
}


@pytest.fixture(scope="module", params=list(MODES))
def installed(
    request: pytest.FixtureRequest,
    kube_api: kube.ApiClient,
    crds: None,
    namespaces: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Installed]:
    mode: str = request.param
    tmp = tmp_path_factory.mktemp(f"rbac-{mode}")
    values: dict[str, Any] = MODES[mode](namespaces["watched"])
    release = unique_name("r")
    seed = f"seed-{release}"
    rbac_kinds = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
    rbac = [d for d in render(release, namespaces["ops"], values, tmp) if d["kind"] in rbac_kinds]
    applied = run(tool("kubectl"), "apply", "-f", "-", stdin=yaml.safe_dump_all(rbac))
    assert applied.returncode == 0, applied.stderr

    core = kube.CoreV1Api(kube_api)
    objects = kube.CustomObjectsApi(kube_api)
    for namespace in (namespaces["watched"], namespaces["other"]):
        core.create_namespaced_secret(
            namespace,
            kube.V1Secret(metadata=kube.V1ObjectMeta(name=seed), string_data={"url": "redis://x"}),
        )
        objects.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, {**SEED_CLAIM, "metadata": {"name": seed}}
        )
    create_cron_job(kube_api, namespaces["watched"], seed)

    service_account = next(d for d in rbac if d["kind"] == "ServiceAccount")["metadata"]["name"]
    token = core.create_namespaced_service_account_token(
        service_account,
        namespaces["ops"],
        kube.AuthenticationV1TokenRequest(
            spec=kube.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
        ),
    ).status.token
    kubeconfig = token_kubeconfig(token, tmp / "kubeconfig")
    operator = kube_config.new_client_from_config(config_file=str(kubeconfig))
    try:
        yield Installed(mode, seed, namespaces, operator, kubeconfig)
    finally:
        operator.close()
        for doc in reversed(rbac):
            if doc["kind"] in ("ClusterRole", "ClusterRoleBinding"):
                run(
                    tool("kubectl"),
                    "delete",
                    doc["kind"],
                    doc["metadata"]["name"],
                    "--ignore-not-found",
                )


Action = Callable[[kube.ApiClient, Installed], object]


def _claims(api: kube.ApiClient) -> kube.CustomObjectsApi:
    return kube.CustomObjectsApi(api)


def _event(installed: Installed, namespace: str) -> kube.CoreV1Event:
    return kube.CoreV1Event(
        metadata=kube.V1ObjectMeta(generate_name="datarch-"),
        involved_object=kube.V1ObjectReference(
            api_version=f"{GROUP}/{VERSION}",
            kind="DataArchitectureClaim",
            name=installed.seed,
            namespace=namespace,
        ),
        reason="Conforming",
        message="rbac test",
        type="Normal",
        reporting_component="datarch",
        reporting_instance="test",
    )


def _events_k8s_event(installed: Installed, namespace: str) -> kube.EventsV1Event:
    return kube.EventsV1Event(
        metadata=kube.V1ObjectMeta(generate_name="datarch-"),
        event_time=datetime.now(UTC),
        regarding=kube.V1ObjectReference(
            api_version=f"{GROUP}/{VERSION}",
            kind="DataArchitectureClaim",
            name=installed.seed,
            namespace=namespace,
        ),
        reason="Conforming",
        note="rbac test",
        type="Normal",
        action="Verified",
        reporting_controller="datarch.io/operator",
        reporting_instance="test",
    )


def watched(installed: Installed) -> str:
    return installed.namespaces["watched"]


def other(installed: Installed) -> str:
    return installed.namespaces["other"]


GRANTED: dict[str, Action] = {
    "list claims": lambda api, i: _claims(api).list_namespaced_custom_object(
        GROUP, VERSION, watched(i), PLURAL
    ),
    "watch claims": lambda api, i: (
        _claims(api)
        .list_namespaced_custom_object(
            GROUP,
            VERSION,
            watched(i),
            PLURAL,
            watch=True,
            timeout_seconds=1,
            _preload_content=False,
        )
        .read()
    ),
    "get a claim": lambda api, i: _claims(api).get_namespaced_custom_object(
        GROUP, VERSION, watched(i), PLURAL, i.seed
    ),
    "patch a claim's status": lambda api, i: _claims(api).patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        watched(i),
        PLURAL,
        i.seed,
        {"status": {"lastVerifiedAt": "2026-01-01T00:00:00Z"}},
    ),
    "get a secret in a watched namespace": lambda api, i: kube.CoreV1Api(
        api
    ).read_namespaced_secret(i.seed, watched(i)),
    "get a cronjob": lambda api, i: kube.BatchV1Api(api).read_namespaced_cron_job(
        i.seed, watched(i)
    ),
    "list cronjobs": lambda api, i: kube.BatchV1Api(api).list_namespaced_cron_job(watched(i)),
    "list jobs": lambda api, i: kube.BatchV1Api(api).list_namespaced_job(watched(i)),
    "create an event": lambda api, i: kube.CoreV1Api(api).create_namespaced_event(
        watched(i), _event(i, watched(i))
    ),
}

REFUSED: dict[str, Action] = {
    "list claims in another namespace": lambda api, i: _claims(api).list_namespaced_custom_object(
        GROUP, VERSION, other(i), PLURAL
    ),
    "list claims in every namespace": lambda api, i: _claims(api).list_cluster_custom_object(
        GROUP, VERSION, PLURAL
    ),
    "patch a claim's annotations": lambda api, i: _claims(api).patch_namespaced_custom_object(
        GROUP,
        VERSION,
        watched(i),
        PLURAL,
        i.seed,
        {"metadata": {"annotations": {"datarch.io/test": "1"}}},
    ),
    "create an events.k8s.io event": lambda api, i: kube.EventsV1Api(api).create_namespaced_event(
        watched(i), _events_k8s_event(i, watched(i))
    ),
    "update a claim's status": lambda api, i: _claims(api).replace_namespaced_custom_object_status(
        GROUP,
        VERSION,
        watched(i),
        PLURAL,
        i.seed,
        _claims(api).get_namespaced_custom_object(GROUP, VERSION, watched(i), PLURAL, i.seed),
    ),
    "delete a claim": lambda api, i: _claims(api).delete_namespaced_custom_object(
        GROUP, VERSION, watched(i), PLURAL, i.seed
    ),
    "create a claim": lambda api, i: _claims(api).create_namespaced_custom_object(
        GROUP, VERSION, watched(i), PLURAL, {**SEED_CLAIM, "metadata": {"name": "intruder"}}
    ),
    "replace a claim's spec": lambda api, i: _claims(api).replace_namespaced_custom_object(
        GROUP,
        VERSION,
        watched(i),
        PLURAL,
        i.seed,
        {
            **_claims(api).get_namespaced_custom_object(GROUP, VERSION, watched(i), PLURAL, i.seed),
            "spec": SEED_CLAIM["spec"],
        },
    ),
    "list secrets in a watched namespace": lambda api, i: kube.CoreV1Api(
        api
    ).list_namespaced_secret(watched(i)),
    "get a secret in another namespace": lambda api, i: kube.CoreV1Api(api).read_namespaced_secret(
        i.seed, other(i)
    ),
    "list secrets in another namespace": lambda api, i: kube.CoreV1Api(api).list_namespaced_secret(
        other(i)
    ),
    "create a secret": lambda api, i: kube.CoreV1Api(api).create_namespaced_secret(
        watched(i), kube.V1Secret(metadata=kube.V1ObjectMeta(name="intruder"))
    ),
    "delete a cronjob": lambda api, i: kube.BatchV1Api(api).delete_collection_namespaced_cron_job(
        watched(i)
    ),
    "list pods": lambda api, i: kube.CoreV1Api(api).list_namespaced_pod(watched(i)),
}

# Only cluster mode may read claims outside the watched namespaces (its ClusterRole).
# Refused, except in the modes named: what a broader install grants by design.
ALLOWED_IN: dict[str, set[str]] = {
    "list claims in another namespace": {"cluster", "everywhere"},
    "list claims in every namespace": {"cluster", "everywhere"},
    "get a secret in another namespace": {"everywhere"},
}


@pytest.mark.parametrize("action", list(GRANTED))
def test_the_service_account_may_do_what_the_operator_does(
    installed: Installed,
    action: str,
) -> None:
    GRANTED[action](installed.operator, installed)


@pytest.mark.parametrize("action", list(REFUSED))
def test_the_service_account_is_refused_what_its_mode_does_not_grant(
    installed: Installed,
    action: str,
) -> None:
    if installed.mode in ALLOWED_IN.get(action, set()):
        REFUSED[action](installed.operator, installed)
        return
    with pytest.raises(ApiException) as refusal:
        REFUSED[action](installed.operator, installed)
    assert refusal.value.status == 403, refusal.value.body


# --------------------------------------------------------------------------- the operator on it


# The cluster mode's grants are the union of the other two's; two runs cover them.
@pytest.mark.parametrize("installed", ["namespaced", "everywhere"], indirect=True)
def test_the_operator_verifies_a_claim_with_only_the_charts_rbac(
    installed: Installed,
    kube_api: kube.ApiClient,
    redis_db: RedisDb,
    tmp_path: Path,
) -> None:
    namespace = watched(installed)
    name = f"cache-{installed.mode}"
    core = kube.CoreV1Api(kube_api)
    objects = kube.CustomObjectsApi(kube_api)
    core.create_namespaced_secret(
        namespace,
        kube.V1Secret(
            metadata=kube.V1ObjectMeta(name=f"redis-{installed.mode}"),
            string_data={"url": redis_db.url},
        ),
    )
    create_cron_job(kube_api, namespace, f"backup-{installed.mode}")
    objects.create_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        claim(
            name,
            [
                {
                    "name": "cache",
                    "kind": "redis",
                    "connection": {"secretRef": {"name": f"redis-{installed.mode}", "key": "url"}},
                    "redis": {"role": "master"},
                }
            ],
            [
                {
                    "name": "nightly",
                    "store": "cache",
                    "cronJob": {"name": f"backup-{installed.mode}"},
                    "schedule": "0 2 * * *",
                }
            ],
        ),
    )

    health, metrics = free_port(), free_port()
    log = tmp_path / "operator.log"
    environ = {**os.environ, "KUBECONFIG": str(installed.kubeconfig)}
    with open(log, "w") as output:
        operator = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "datarch",
                "operator",
                "--namespace",
                namespace,
                "--metrics-port",
                str(metrics),
                "--health-port",
                str(health),
            ],
            env=environ,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:

        def verified() -> bool:
            assert operator.poll() is None, f"the operator exited:\n{log.read_text()}"
            status = (
                objects.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name).get(
                    "status"
                )
                or {}
            )
            return bool(status.get("lastVerifiedAt"))

        wait_for(verified, f"the claim to be verified; operator log:\n{log.read_text()}", 90)
        status = objects.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)[
            "status"
        ]
        conditions = {c["type"]: c for c in status["conditions"]}
        # It read the Secret (a `get`) and reached the store with it.
        assert conditions["StoresReachable"]["status"] == "True", status
        assert status["stores"][0]["reachable"] is True
        # It read the CronJob and its Jobs; nothing it did was forbidden.
        assert [b["name"] for b in status["backups"]] == ["nightly"]
        assert "forbidden" not in json.dumps(status).lower(), status
        with urllib.request.urlopen(f"http://127.0.0.1:{health}/healthz", timeout=5) as page:
            assert page.status == 200

        def event_posted() -> bool:
            # The Events of the first transitions follow the status patch (an Event `create`).
            events = core.list_namespaced_event(namespace).items
            return any(e.involved_object.name == name for e in events)

        wait_for(event_posted, f"an Event about the claim; operator log:\n{log.read_text()}", 30)
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=5) as page:
            exposition = page.read().decode()
        samples = {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(exposition)
            for sample in family.samples
        }
        labels = {"claim_namespace": namespace, "claim": name, "store": "cache", "kind": "redis"}
        assert samples.get(("datarch_store_up", tuple(sorted(labels.items())))) == 1.0, exposition
    finally:
        operator.send_signal(signal.SIGTERM)
        try:
            operator.wait(timeout=30)
        except subprocess.TimeoutExpired:
            operator.kill()
            operator.wait()
            pytest.fail(f"the operator ignored SIGTERM:\n{log.read_text()}")
    text = log.read_text()
    assert operator.returncode == 0, text
    denied = [line for line in text.splitlines() if "forbidden" in line.lower()]
    assert not denied, "\n".join(denied)
