"""The operator SIGKILLed at random moments, then restarted, several times over: no claim
lost, none stuck (no finalizer, no kopf annotation), no Event posted twice, and the
status never goes back to an older generation. Against the shared kube-apiserver, in a
namespace of the test's own; the operator process is the only thing killed (by PID).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as kube
from reliability_figures import FIGURES

from conftest import free_port, install_crd
from datarch.claims import API_GROUP, API_VERSION, PLURAL

pytestmark = pytest.mark.reliability

KILLS = 6


def _operator(namespace: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                sys.executable, "-m", "datarch", "operator", "--namespace", namespace,
                "--metrics-port", str(free_port()), "--health-port", str(free_port()),
            ],
            stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, "DATARCH_METRICS_HOST": "127.0.0.1",
                 "DATARCH_HEALTH_HOST": "127.0.0.1"},
        )  # fmt: skip


def _claim(name: str, interval: str, port: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": "DataArchitectureClaim",
        "metadata": {"name": name},
        "spec": {
            "interval": interval,
            "timeout": "1s",
            # Nothing listens: StoresReachable False, a transition and its Event on the
            # first pass, then the same verdict every pass (any second Event is a duplicate).
            "stores": [
                {
                    "name": "cache",
                    "kind": "redis",
                    "connection": {"url": f"redis://127.0.0.1:{port}"},
                }
            ],
        },
    }


def test_sigkill_at_random_moments_loses_nothing_and_duplicates_no_event(
    kube_api: kube.ApiClient, kube_namespace: str, tmp_path: Path
) -> None:
    install_crd(kube_api)
    custom: Any = kube.CustomObjectsApi(kube_api)
    names = [f"claim-{i}" for i in range(3)]
    for name in names:
        custom.create_namespaced_custom_object(
            API_GROUP, API_VERSION, kube_namespace, PLURAL, _claim(name, "1s", free_port())
        )
    log = tmp_path / "operator.log"
    generations: dict[str, list[int]] = {name: [] for name in names}
    rng = random.Random(int(os.environ.get("DATARCH_RELIABILITY_SEED", "11")))

    def observe() -> dict[str, dict[str, Any]]:
        found = {}
        for name in names:
            claim = custom.get_namespaced_custom_object(
                API_GROUP, API_VERSION, kube_namespace, PLURAL, name
            )
            found[name] = claim
            seen = (claim.get("status") or {}).get("observedGeneration")
            if seen is not None:
                generations[name].append(seen)
        return found

    for kill in range(KILLS):
        if kill == KILLS // 2:  # a spec change while the operator is down or starting
            for name in names:
                custom.patch_namespaced_custom_object(
                    API_GROUP,
                    API_VERSION,
                    kube_namespace,
                    PLURAL,
                    name,
                    {"spec": {"interval": "2s"}},
                )
        operator = _operator(kube_namespace, log)
        time.sleep(rng.uniform(0.5, 4.0))  # start-up, the first list, a pass, a patch: any
        os.kill(operator.pid, signal.SIGKILL)
        operator.wait(10)
        observe()

    operator = _operator(kube_namespace, log)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            claims = observe()
            if all(
                (c.get("status") or {}).get("observedGeneration") == c["metadata"]["generation"]
                for c in claims.values()
            ):
                break
            time.sleep(0.5)
        time.sleep(2)  # the Events of the last pass, if any, follow its patch
        claims = observe()
    finally:
        operator.terminate()
        operator.wait(20)
    events = kube.CoreV1Api(kube_api).list_namespaced_event(kube_namespace).items
    posted = Counter(
        (e.involved_object.name, e.reason, e.message) for e in events if e.involved_object.name
    )
    duplicated = {key: n for key, n in posted.items() if n > 1}
    duplicated |= {
        (e.involved_object.name, e.reason, e.message): e.count for e in events if (e.count or 1) > 1
    }
    regressions = [name for name, seen in generations.items() if seen != sorted(seen)]
    FIGURES["kills"] = (
        f"{KILLS} operator SIGKILLs: 0 claims lost, {len(duplicated)} duplicated Events"
    )

    assert set(claims) == set(names), "a claim was lost"
    for name, claim in claims.items():
        metadata = claim["metadata"]
        assert not metadata.get("finalizers"), name
        assert not any(k.startswith("kopf") for k in metadata.get("annotations") or {}), name
        status = claim["status"]
        assert status["observedGeneration"] == metadata["generation"], name
        reachable = next(c for c in status["conditions"] if c["type"] == "StoresReachable")
        assert reachable["status"] == "False", name
    assert posted, "no Event at all: the duplicate check would pass vacuously"
    assert not duplicated, duplicated
    assert not regressions, {name: generations[name] for name in regressions}
