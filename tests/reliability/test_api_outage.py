"""The operator while its API server is away: one log line when the outage starts, one
when it is back (not dozens of retry warnings), and claims verified again afterwards.

The operator reaches the shared kube-apiserver through a FaultProxy (its TLS name,
127.0.0.1, is the proxy's too). The outage is the proxy's port closing: every
connection refused, as when the API server process is gone. The shared server itself
is never stopped.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from fault_proxy import FaultProxy
from kubernetes import client as kube
from reliability_figures import FIGURES

from conftest import env, free_port, install_crd
from datarch.claims import API_GROUP, API_VERSION, PLURAL

pytestmark = pytest.mark.reliability

OUTAGE = 20.0


def _wait(check: Any, what: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture
def proxied_kubeconfig(tmp_path: Path) -> Iterator[tuple[Path, FaultProxy]]:
    config = yaml.safe_load(Path(env("KUBECONFIG")).read_text())
    server = urlsplit(config["clusters"][0]["cluster"]["server"])
    assert server.hostname and server.port
    proxy = FaultProxy(server.hostname, server.port)
    for cluster in config["clusters"]:
        cluster["cluster"]["server"] = f"https://127.0.0.1:{proxy.port}"
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    try:
        yield path, proxy
    finally:
        proxy.close()


def test_an_api_server_outage_is_one_line_and_one_when_it_is_back(
    kube_api: kube.ApiClient,
    kube_namespace: str,
    proxied_kubeconfig: tuple[Path, FaultProxy],
    tmp_path: Path,
) -> None:
    kubeconfig, proxy = proxied_kubeconfig
    install_crd(kube_api)
    custom: Any = kube.CustomObjectsApi(kube_api)
    custom.create_namespaced_custom_object(
        API_GROUP,
        API_VERSION,
        kube_namespace,
        PLURAL,
        {
            "apiVersion": f"{API_GROUP}/{API_VERSION}",
            "kind": "DataArchitectureClaim",
            "metadata": {"name": "platform"},
            "spec": {
                "interval": "1s",
                "stores": [
                    {
                        "name": "cache",
                        "kind": "redis",
                        "absent": True,
                        # A Secret to read every pass: during the outage each pass fails
                        # to read it, so the status changes and every patch is refused.
                        "connection": {"secretRef": {"name": "cache"}},
                    }
                ],
            },
        },
    )

    def observed_generation() -> int | None:
        claim = custom.get_namespaced_custom_object(
            API_GROUP, API_VERSION, kube_namespace, PLURAL, "platform"
        )
        return (claim.get("status") or {}).get("observedGeneration")

    kube.CoreV1Api(kube_api).create_namespaced_secret(
        kube_namespace,
        kube.V1Secret(
            metadata=kube.V1ObjectMeta(name="cache"),
            string_data={"url": f"redis://127.0.0.1:{free_port()}/0"},
        ),
    )
    log_path = tmp_path / "operator.log"
    with log_path.open("ab") as log:
        operator = subprocess.Popen(
            [
                sys.executable, "-m", "datarch", "operator", "--namespace", kube_namespace,
                "--metrics-port", str(free_port()), "--health-port", str(free_port()),
            ],
            stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "KUBECONFIG": str(kubeconfig), "DATARCH_METRICS_HOST": "127.0.0.1",
                 "DATARCH_HEALTH_HOST": "127.0.0.1"},
        )  # fmt: skip
    try:
        _wait(lambda: observed_generation() == 1, "a first verification", 60)
        before = log_path.read_text(errors="replace").count("\n")

        proxy.go_away()
        time.sleep(OUTAGE)
        during = log_path.read_text(errors="replace").splitlines()[before:]
        proxy.come_back()
        back_at = time.monotonic()
        # Status is patched only when something moved: a spec change shows a pass at once.
        custom.patch_namespaced_custom_object(
            API_GROUP, API_VERSION, kube_namespace, PLURAL, "platform", {"spec": {"interval": "2s"}}
        )
        _wait(lambda: observed_generation() == 2, "a verification after the outage", 60)
        recovered = time.monotonic() - back_at
        time.sleep(2)
        after = log_path.read_text(errors="replace").splitlines()[before + len(during) :]
    finally:
        operator.terminate()
        try:
            operator.wait(20)
        except subprocess.TimeoutExpired:
            operator.kill()
            operator.wait(10)
    text = "\n".join(during + after)
    assert operator.returncode == 0, text
    warnings = [line for line in during if re.search(r"WARNING|ERROR|Traceback", line)]
    print(f"during a {OUTAGE:g}s outage: {len(during)} log lines; recovered in {recovered:.1f}s")
    print(text[-4000:])
    FIGURES["outage"] = (
        f"API outage {OUTAGE:g}s: {len(during)} log line(s), verified again {recovered:.1f}s after"
    )
    assert len(during) <= 2, "\n".join(during)
    assert len(warnings) == 1, "\n".join(during)
    assert "API server does not answer" in warnings[0]
    assert any("API server answers again" in line for line in after), "\n".join(after)
