"""The Helm chart on a real node: the image built from the Dockerfile, run by containerd
under the chart's securityContext, probed by the kubelet, scheduled, routed by kube-proxy.

The cluster is the one `make env-node` runs (dev/node.py); `make test` and
`make test-node` bring it up. The dev stores reach the pods as a cluster reaches an
external database: each has a Service in the `dev-stores` namespace whose
EndpointSlice points at the node's address, where dev/node.py forwards to the store.
No DNS runs on the node, so Secrets name the Services by ClusterIP.

The tests of the cluster-mode release run in file order, as one install's life:
install with the default values, verify the demo's claim, a CronJob's real Job,
Prometheus scraping the chart's Service with the chart's alerts, upgrade, uninstall.
Then the namespaced values, on their own.

The demo's platform (dev/demo.py's seeding, the fixed names examples/platform-claim.yaml
documents) is seeded in the shared dev stores, as `make demo` does.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import env, free_port, tool

pytestmark = [pytest.mark.node, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "datarch"
EXAMPLES = REPO / "examples"
# What this cluster needs beyond the default values: nothing. The image is already in
# containerd, which pullPolicy IfNotPresent (the default) uses without a registry.
LOCAL: list[str] = []
sys.path.insert(0, str(REPO / "dev"))
import demo  # noqa: E402  (dev/demo.py: the demo's platform, seeded the same way)

# --------------------------------------------------------------------------- the cluster


class Cluster:
    """kubectl and helm on the node's cluster and nothing else: every call names the
    node's kubeconfig, since KUBECONFIG is the bare dev control plane's."""

    def __init__(self, kubeconfig: str) -> None:
        self.kubeconfig = kubeconfig

    def run(self, argv: list[str], stdin: str | None = None, check: bool = True) -> str:
        done = subprocess.run(
            argv, input=stdin, capture_output=True, text=True, timeout=300, check=False
        )
        if check and done.returncode != 0:
            pytest.fail(f"`{' '.join(argv[3:8])} ...` failed:\n{done.stderr.strip()}")
        return done.stdout

    def kubectl(self, *argv: str, stdin: str | None = None, check: bool = True) -> str:
        return self.run([tool("kubectl"), "--kubeconfig", self.kubeconfig, *argv], stdin, check)

    def helm(self, *argv: str) -> str:
        return self.run([tool("helm"), "--kubeconfig", self.kubeconfig, *argv])

    def install(self, *argv: str) -> None:
        """`helm install|upgrade ... --wait`; when the pods never become Ready, the
        failure shows them and their last log (a crash at start-up, say)."""
        helm = [tool("helm"), "--kubeconfig", self.kubeconfig, *argv, "--wait", "--timeout", "240s"]
        done = subprocess.run(helm, capture_output=True, text=True, timeout=300, check=False)
        if done.returncode != 0:
            namespace = argv[argv.index("-n") + 1]
            pods = self.kubectl("get", "pods", "-n", namespace, check=False)
            logs = self.kubectl(
                "logs", "-n", namespace, "--all-containers", "--previous", "--tail=15",
                "-l", f"app.kubernetes.io/instance={argv[1]}", check=False,
            )  # fmt: skip
            pytest.fail(f"helm {argv[0]} failed: {done.stderr.strip()}\n{pods}\n{logs}")

    def get(self, *argv: str) -> Any:
        return json.loads(self.kubectl("get", *argv, "-o", "json"))

    def apply(self, namespace: str, documents: list[dict[str, Any]]) -> None:
        body = json.dumps({"apiVersion": "v1", "kind": "List", "items": documents})
        self.kubectl("apply", "-n", namespace, "-f", "-", stdin=body)


def eventually(check: Callable[[], Any], what: str, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(1)
    pytest.fail(f"within {timeout:g}s: {what} (last seen: {last!r})")


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    """The node's cluster, or a failure naming what is down."""
    status = subprocess.run(
        [sys.executable, str(REPO / "dev" / "node.py"), "status"],
        capture_output=True,
        text=True,
        check=False,
    )
    if status.returncode != 0:
        down = [
            r.split()[0] for r in status.stdout.splitlines() if " down " in r or "NotReady" in r
        ]
        pytest.fail(
            f"the node is not up ({', '.join(down)}): start it with `make env-node`"
            " (`make test` and `make test-node` do)",
            pytrace=False,
        )
    return Cluster(env("DATARCH_NODE_KUBECONFIG"))


@pytest.fixture(scope="session")
def stores(cluster: Cluster) -> dict[str, str]:
    """Each dev store's Service address (ClusterIP:port), as pods reach it."""
    namespace = env("DATARCH_NODE_STORES_NAMESPACE")
    return {
        s["metadata"]["name"]: f"{s['spec']['clusterIP']}:{s['spec']['ports'][0]['port']}"
        for s in cluster.get("services", "-n", namespace)["items"]
    }


@pytest.fixture(scope="session")
def seeded() -> None:
    """The demo's platform in the dev stores: tables, collections, the lagging stream,
    buckets (with a fresh PostgreSQL dump), a Redis key."""
    demo.seed_postgres()
    demo.seed_mongo()
    asyncio.run(demo.seed_nats())
    demo.seed_s3()
    demo.seed_redis()


def through(url: str, address: str) -> str:
    """`url` with its host:port replaced by a Service's address."""
    parts = urllib.parse.urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    netloc = f"{credentials}@{address}" if credentials else address
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def demo_values(stores: dict[str, str]) -> dict[str, str]:
    """examples/platform-*.yaml's placeholders, every store reached through its Service."""
    pg_ro = env("DATARCH_PG_RO_DSN")
    return {
        "DATARCH_PG_RO_DSN_DEMO": through(
            f"{pg_ro.rsplit('/', 1)[0]}/{demo.PG_DATABASE}", stores["postgres"]
        ),
        "DATARCH_MONGO_URI": through(env("DATARCH_MONGO_URI"), stores["mongo"]),
        "DATARCH_NATS_RO_URL": through(env("DATARCH_NATS_RO_URL"), stores["nats"]),
        "DATARCH_S3_RO_ACCESS_KEY": env("DATARCH_S3_RO_ACCESS_KEY"),
        "DATARCH_S3_RO_SECRET_KEY": env("DATARCH_S3_RO_SECRET_KEY"),
        "DATARCH_REDIS_URL": through(env("DATARCH_REDIS_URL"), stores["redis"]),
        "DATARCH_S3_ENDPOINT": stores["s3"],
    }


def apply_demo(cluster: Cluster, namespace: str, stores: dict[str, str], interval: str) -> None:
    """The example Secrets and claim, filled in; the claim checks every `interval`, and
    documents the schedule its pg-backup CronJob really has here (every minute)."""
    values = demo_values(stores)
    secrets = list(
        yaml.safe_load_all(demo.fill((EXAMPLES / "platform-secrets.yaml").read_text(), values))
    )
    claim = yaml.safe_load(demo.fill((EXAMPLES / "platform-claim.yaml").read_text(), values))
    claim["spec"]["interval"] = interval
    claim["spec"]["backups"][0]["schedule"] = "* * * * *"
    cluster.apply(namespace, [*secrets, claim])


def backup_cronjobs(namespace: str) -> list[dict[str, Any]]:
    """pg-backup runs every minute and succeeds; mongo-backup is nightly and never ran."""

    def cronjob(name: str, schedule: str) -> dict[str, Any]:
        container = {
            "name": "backup",
            "image": env("DATARCH_NODE_IMAGE"),
            "imagePullPolicy": "Never",
            "command": ["python", "-c", f"print('{name} done')"],
            "securityContext": {"runAsUser": 65532, "runAsNonRoot": True},
        }
        return {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "schedule": schedule,
                "successfulJobsHistoryLimit": 3,
                "jobTemplate": {
                    "spec": {
                        "backoffLimit": 0,
                        "template": {"spec": {"restartPolicy": "Never", "containers": [container]}},
                    }
                },
            },
        }

    return [cronjob("pg-backup", "* * * * *"), cronjob("mongo-backup", "30 2 * * *")]


def verdict(cluster: Cluster, namespace: str) -> dict[str, Any] | None:
    """The claim's status once the operator has verified its current generation."""
    claim = cluster.get("dac", "platform", "-n", namespace)
    status = claim.get("status") or {}
    observed = status.get("observedGeneration") == claim["metadata"]["generation"]
    return status if observed and status.get("conditions") else None


def conditions(status: dict[str, Any]) -> dict[str, str]:
    return {c["type"]: c["status"] for c in status["conditions"]}


def operator_pods(cluster: Cluster, namespace: str, release: str) -> list[dict[str, Any]]:
    selector = f"app.kubernetes.io/instance={release}"
    pods: list[dict[str, Any]] = cluster.get("pods", "-n", namespace, "-l", selector)["items"]
    return pods


def ready(pod: dict[str, Any]) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in pod.get("status", {}).get("conditions", [])
    )


# --------------------------------------------------------------------------- cluster mode


@pytest.fixture(scope="module")
def release(cluster: Cluster, stores: dict[str, str], seeded: None) -> Iterator[tuple[str, str]]:
    """`helm install` with the default values; the demo's claim and backups beside it."""
    namespace, name = f"node-{uuid.uuid4().hex[:8]}", f"datarch-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", namespace)
    try:
        cluster.install("install", name, str(CHART), "-n", namespace, *LOCAL)
        yield namespace, name
    finally:
        cluster.run(
            [
                tool("helm"),
                "--kubeconfig",
                cluster.kubeconfig,
                "uninstall",
                name,
                "-n",
                namespace,
                "--wait",
            ],
            check=False,
        )
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_the_default_install_runs_the_image_ready_as_uid_65532_on_a_read_only_root(
    cluster: Cluster, release: tuple[str, str]
) -> None:
    namespace, name = release
    [pod] = operator_pods(cluster, namespace, name)
    assert ready(pod), pod["status"]
    [state] = pod["status"]["containerStatuses"]
    assert state["restartCount"] == 0, "the operator restarted: " + cluster.kubectl(
        "logs", "-n", namespace, pod["metadata"]["name"], "--previous", check=False
    )
    pod_name = pod["metadata"]["name"]
    probe = (
        "import os, urllib.request\n"
        "print(os.getuid(), os.getgid())\n"
        "try:\n    open('/written-by-the-test', 'w')\nexcept OSError as e:\n    print(e.strerror)\n"
        "print(urllib.request.urlopen('http://127.0.0.1:8081/healthz').status)\n"
    )
    output = cluster.kubectl("exec", "-n", namespace, pod_name, "--", "python", "-c", probe)
    assert output.splitlines() == ["65532 65532", "Read-only file system", "200"]


def test_the_demo_claim_is_verified_against_the_stores_through_their_services(
    cluster: Cluster, release: tuple[str, str], stores: dict[str, str]
) -> None:
    namespace, _ = release
    cluster.apply(namespace, backup_cronjobs(namespace))
    apply_demo(cluster, namespace, stores, interval="5s")
    status = eventually(lambda: verdict(cluster, namespace), "a verdict on the demo's claim")
    assert status["summary"]["stores"] == "5/5", status
    assert conditions(status)["StoresReachable"] == "True"
    assert conditions(status)["Conforming"] == "False"
    found = [f["path"] for f in status["findings"]]
    # The demo's deliberate mistakes, found in the stores through the pod network.
    for store, fragment in (
        ("main", "users.columns.email"),
        ("main", "users_created_idx"),
        ("runtime", "sessions"),
        ("events", "worker"),
        ("objects", "demo-uploads"),
    ):
        assert any(p.startswith(f"{store}/") and fragment in p for p in found), (fragment, found)


def test_a_cronjobs_real_job_succeeds_and_the_backup_turns_fresh(
    cluster: Cluster, release: tuple[str, str]
) -> None:
    namespace, _ = release

    def succeeded_job() -> list[str]:
        jobs = cluster.get("jobs", "-n", namespace)["items"]
        return [
            j["metadata"]["name"]
            for j in jobs
            if (j["metadata"].get("ownerReferences") or [{}])[0].get("name") == "pg-backup"
            and j.get("status", {}).get("succeeded") == 1
        ]

    [job, *_] = eventually(succeeded_job, "a Job of CronJob pg-backup that succeeded", timeout=150)
    logs = cluster.kubectl("logs", "-n", namespace, f"job/{job}")
    assert logs.strip() == "pg-backup done"

    def backups() -> dict[str, Any] | None:
        status = verdict(cluster, namespace) or {}
        by_name = {b["name"]: b for b in status.get("backups", [])}
        return by_name if by_name.get("main-nightly", {}).get("fresh") else None

    by_name = eventually(backups, "main-nightly fresh after the Job", timeout=60)
    assert by_name["runtime-nightly"]["fresh"] is False
    assert "never succeeded" in by_name["runtime-nightly"]["message"]


@pytest.fixture
def prometheus(cluster: Cluster, release: tuple[str, str], tmp_path: Path) -> Iterator[str]:
    """Debian's Prometheus scraping the chart's Service (by ClusterIP: Debian builds it
    without kubernetes_sd), with the chart's alert rules, evaluated every 2s."""
    namespace, name = release
    rendered = cluster.helm(
        "template", name, str(CHART), "-n", namespace,
        "--set", "prometheusRule.enabled=true", "--show-only", "templates/prometheusrule.yaml",
    )  # fmt: skip
    rule = yaml.safe_load(rendered)
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    service = cluster.get("service", f"{name}-metrics", "-n", namespace)
    target = f"{service['spec']['clusterIP']}:{service['spec']['ports'][0]['port']}"
    config = {
        "global": {"scrape_interval": "2s", "evaluation_interval": "2s"},
        "rule_files": [str(tmp_path / "rules.yaml")],
        "scrape_configs": [{"job_name": "datarch", "static_configs": [{"targets": [target]}]}],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            env("DATARCH_PROMETHEUS"),
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
        log.close()


def query(prometheus: str, expression: str) -> list[dict[str, Any]]:
    url = f"{prometheus}/api/v1/query?{urllib.parse.urlencode({'query': expression})}"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            result: list[dict[str, Any]] = json.load(response)["data"]["result"]
            return result
    except OSError:
        return []


def test_prometheus_scrapes_the_service_and_the_charts_alerts_fire_on_its_data(
    release: tuple[str, str], prometheus: str
) -> None:
    namespace, _ = release
    claim = f'claim_namespace="{namespace}",claim="platform"'
    [target] = eventually(
        lambda: query(prometheus, 'up{job="datarch"} == 1'), "the Service scraped"
    )
    assert target["value"][1] == "1"
    conforming = eventually(
        lambda: query(prometheus, f"datarch_claim_conforming{{{claim}}}"), "a verdict"
    )
    assert conforming[0]["value"][1] == "0"
    stores_up = query(prometheus, f"datarch_store_up{{{claim}}}")
    assert sorted(s["metric"]["store"] for s in stores_up if s["value"][1] == "1") == [
        "cache", "events", "main", "objects", "runtime",
    ]  # fmt: skip
    # The chart's rules, on this data: pending until their `for` has passed.
    alerts = eventually(
        lambda: query(prometheus, f'ALERTS{{{claim},alertstate="pending"}}'), "pending alerts"
    )
    names = {a["metric"]["alertname"] for a in alerts}
    assert {"DatarchClaimNotConforming", "DatarchBackupNeverSucceeded"} <= names, names
    assert "DatarchStoreUnreachable" not in names


def test_helm_upgrade_with_a_changed_value_replaces_the_operator(
    cluster: Cluster, release: tuple[str, str]
) -> None:
    namespace, name = release
    [before] = operator_pods(cluster, namespace, name)
    cluster.install("upgrade", name, str(CHART), "-n", namespace, *LOCAL, "--set", "logLevel=DEBUG")
    pods = eventually(
        lambda: [p for p in operator_pods(cluster, namespace, name) if ready(p)], "a Ready pod"
    )
    [after] = pods
    assert after["metadata"]["name"] != before["metadata"]["name"]
    [container] = after["spec"]["containers"]
    assert {"name": "DATARCH_LOG_LEVEL", "value": "DEBUG"} in container["env"]
    logs = lambda: cluster.kubectl("logs", "-n", namespace, after["metadata"]["name"])  # noqa: E731
    assert re.search(r" DEBUG ", eventually(logs, "the new operator's log")), logs()[-2000:]


def test_helm_uninstall_leaves_nothing_of_the_release(
    cluster: Cluster, release: tuple[str, str]
) -> None:
    namespace, name = release
    cluster.helm("uninstall", name, "-n", namespace, "--wait", "--timeout", "120s")
    selector = f"app.kubernetes.io/instance={name}"
    kinds = "deployments,replicasets,pods,services,serviceaccounts,roles,rolebindings,configmaps"

    # The pod goes last: the garbage collector deletes it after its ReplicaSet, and the
    # kubelet stops its container within the grace period.
    def remaining() -> list[str]:
        items = cluster.get(kinds, "-n", namespace, "-l", selector)["items"]
        return [f"{o['kind']}/{o['metadata']['name']}" for o in items]

    eventually(lambda: not remaining(), "every namespaced object of the release gone")
    assert remaining() == []
    assert cluster.get("clusterroles,clusterrolebindings", "-l", selector)["items"] == []
    secrets = cluster.get("secrets", "-n", namespace)["items"]
    assert not any(s["type"] == "helm.sh/release.v1" for s in secrets)


# --------------------------------------------------------------------------- namespaced


def test_the_namespaced_values_verify_a_claim_in_the_watched_namespace_only(
    cluster: Cluster, stores: dict[str, str], seeded: None
) -> None:
    namespace, name = f"node-{uuid.uuid4().hex[:8]}", f"datarch-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", namespace)
    try:
        cluster.install(
            "install", name, str(CHART), "-n", namespace, *LOCAL,
            "--set", "rbac.namespaced=true", "--set", f"watchNamespaces={{{namespace}}}",
        )  # fmt: skip
        selector = f"app.kubernetes.io/instance={name}"
        assert cluster.get("clusterroles,clusterrolebindings", "-l", selector)["items"] == []
        cluster.apply(namespace, backup_cronjobs(namespace))
        apply_demo(cluster, namespace, stores, interval="5s")
        status = eventually(lambda: verdict(cluster, namespace), "a verdict, with namespaced RBAC")
        assert status["summary"]["stores"] == "5/5", status
        assert conditions(status)["StoresReachable"] == "True"
    finally:
        cluster.run(
            [
                tool("helm"),
                "--kubeconfig",
                cluster.kubeconfig,
                "uninstall",
                name,
                "-n",
                namespace,
                "--wait",
            ],
            check=False,
        )
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
