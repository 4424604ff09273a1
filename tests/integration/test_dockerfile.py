"""The Dockerfile's recipe, run without Docker: its stages are replayed in clean
virtualenvs, then the operator starts from the result against the local control plane.

No Docker engine runs where the tests do, so this reads the Dockerfile itself: each
stage's WORKDIR, ENV, COPY and RUN (with its bind mounts) is carried out under a
directory standing in for that stage's root filesystem, and the stage's Python is a
fresh virtualenv of the base image's Python version. What the image would run is what
is tested, and an edit to the Dockerfile changes what this test does.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from kubernetes import client as kube
from kubernetes.client.exceptions import ApiException

from conftest import env, free_port

pytestmark = pytest.mark.integration

REPO = Path(__file__).parents[2]
DOCKERFILE = REPO / "Dockerfile"
CRD = REPO / "crds" / "datarch.io_dataarchitectureclaims.yaml"


# --------------------------------------------------------------------------- reading it


@dataclass
class Instruction:
    keyword: str
    arguments: str


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [i.arguments for i in self.instructions if i.keyword == keyword]

    def environment(self) -> dict[str, str]:
        variables: dict[str, str] = {}
        for arguments in self.all("ENV"):
            for word in shlex.split(arguments):
                name, _, value = word.partition("=")
                variables[name] = value
        return variables


def parse_dockerfile(text: str) -> list[Stage]:
    """Stages and their instructions, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):  # a comment inside a continued instruction
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    stages: list[Stage] = []
    for line in logical:
        keyword, _, arguments = line.partition(" ")
        keyword, arguments = keyword.upper(), arguments.strip()
        if keyword == "FROM":
            match = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", arguments, re.IGNORECASE)
            assert match, f"FROM {arguments}"
            stages.append(Stage(base=match.group(1), name=match.group(2)))
        else:
            assert stages, f"{keyword} before the first FROM"
            stages[-1].instructions.append(Instruction(keyword, arguments))
    return stages


STAGES = parse_dockerfile(DOCKERFILE.read_text())


def test_the_image_builds_in_one_stage_and_runs_in_a_slim_other() -> None:
    assert [stage.base for stage in STAGES] == ["python:3.11-slim", "python:3.11-slim"]
    assert STAGES[0].name == "build"


def test_the_image_runs_datarch_operator_as_a_numeric_non_root_user() -> None:
    final = STAGES[-1]
    assert final.all("USER") == ["65532:65532"]
    assert [json.loads(entrypoint) for entrypoint in final.all("ENTRYPOINT")] == [
        ["datarch", "operator"]
    ]


def test_the_image_writes_nothing_outside_tmp_at_run_time() -> None:
    environment = STAGES[-1].environment()
    assert environment["HOME"] == "/tmp"
    assert environment["PYTHONDONTWRITEBYTECODE"] == "1"
    assert STAGES[-1].all("WORKDIR") == ["/tmp"]


def test_every_install_step_runs_the_shared_script() -> None:
    # A RUN that did something else would escape this test: keep them all in the script.
    runs = [run for stage in STAGES for run in stage.all("RUN")]
    assert len(runs) == 2
    assert all(re.search(r"\bsh \S*install\.sh (wheels|install) ", run) for run in runs), runs
    assert STAGES[-1].all("COPY") == [], "the runtime stage takes files only through mounts"


def test_the_build_context_lets_in_what_the_dockerfile_copies() -> None:
    # .dockerignore excludes everything ("*") and lets in paths one by one.
    allowed = [
        line[1:].rstrip("/")
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    ]
    sources = [word for copy in STAGES[0].all("COPY") for word in shlex.split(copy)[:-1]]
    assert sources
    for source in sources:
        path = Path(source.rstrip("/"))
        assert any(Path(a) == path or Path(a) in path.parents for a in allowed), source


# --------------------------------------------------------------------------- replaying it


@dataclass
class Built:
    roots: dict[str, Path]  # stage name -> the directory standing in for its root
    python: Path  # the runtime stage's virtualenv
    environment: dict[str, str]  # the runtime stage's ENV, paths mapped into its root
    workdir: Path


def base_python(base: str) -> str:
    version = re.fullmatch(r"python:(\d+\.\d+)-slim", base)
    assert version, base
    found = shutil.which(f"python{version.group(1)}")
    if found is None:
        pytest.fail(
            f"python{version.group(1)} (the image's Python) is not installed", pytrace=False
        )
    return found


def in_root(root: Path, path: str) -> Path:
    return root / path.lstrip("/")


def split_mounts(arguments: str) -> tuple[dict[str, tuple[str, str]], str]:
    """RUN's --mount=type=bind flags ({target: (from stage, source)}) and its command."""
    mounts: dict[str, tuple[str, str]] = {}
    words = arguments.split(" ")
    while words and words[0].startswith("--mount="):
        options = dict(item.split("=", 1) for item in words.pop(0)[len("--mount=") :].split(","))
        assert options["type"] == "bind", options
        mounts[options["target"]] = (options["from"], options["source"])
        while words and not words[0]:
            words.pop(0)
    return mounts, " ".join(words).strip()


def replay(
    stage: Stage, root: Path, python: Path, roots: dict[str, Path]
) -> tuple[Path, dict[str, str]]:
    """Carry out one stage under `root` with `python` as its interpreter."""
    workdir = root
    environment: dict[str, str] = {}
    for instruction in stage.instructions:
        keyword, arguments = instruction.keyword, instruction.arguments
        if keyword == "WORKDIR":
            workdir = in_root(root, arguments)
            workdir.mkdir(parents=True, exist_ok=True)
        elif keyword == "ENV":
            environment.update(
                (name, str(in_root(root, value)) if value.startswith("/") else value)
                for name, value in Stage("", None, [instruction]).environment().items()
            )
        elif keyword == "COPY":
            *sources, destination = shlex.split(arguments)
            target = (
                workdir / destination
                if not destination.startswith("/")
                else in_root(root, destination)
            )
            for source in sources:
                origin = REPO / source
                if origin.is_dir():
                    shutil.copytree(
                        origin,
                        target,
                        dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
                    )
                else:
                    place = target / origin.name if destination.endswith("/") else target
                    place.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(origin, place)
        elif keyword == "RUN":
            mounts, command = split_mounts(arguments)
            words = []
            for word in shlex.split(command):
                if word in mounts:
                    origin_stage, source = mounts[word]
                    words.append(str(in_root(roots[origin_stage], source)))
                elif word.startswith("/"):
                    words.append(str(in_root(root, word)))
                else:
                    words.append(word)
            run_env = {
                **os.environ,
                **environment,
                "PATH": f"{python / 'bin'}{os.pathsep}{os.environ['PATH']}",
                "VIRTUAL_ENV": str(python),
            }
            # Speed only: the image turns pip's cache off to keep it out of its layers.
            run_env.pop("PIP_NO_CACHE_DIR", None)
            result = subprocess.run(
                shlex.join(words),
                shell=True,
                cwd=workdir,
                env=run_env,
                capture_output=True,
                text=True,
                timeout=900,
                check=False,
            )
            assert result.returncode == 0, f"RUN {command}\n{result.stdout}\n{result.stderr}"
    return workdir, environment


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    tmp = tmp_path_factory.mktemp("image")
    roots: dict[str, Path] = {}
    result: tuple[Path, dict[str, str]] | None = None
    python = tmp / "none"
    for index, stage in enumerate(STAGES):
        name = stage.name or str(index)
        roots[name] = tmp / f"root-{name}"
        roots[name].mkdir()
        python = tmp / f"python-{name}"
        subprocess.run([base_python(stage.base), "-m", "venv", str(python)], check=True)
        result = replay(stage, roots[name], python, roots)
    assert result is not None
    workdir, environment = result
    return Built(roots=roots, python=python, environment=environment, workdir=workdir)


def test_the_installed_image_prints_the_crd_the_repository_ships(built: Built) -> None:
    datarch = built.python / "bin" / "datarch"
    printed = subprocess.run(
        [str(datarch), "crd"],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": str(built.python / "bin"), **built.environment},
    )
    assert printed.stdout == CRD.read_text()


def test_the_runtime_holds_only_what_was_built(built: Built) -> None:
    # Installed with --no-index from the build stage's wheels: no source tree, no dev tools.
    listing = subprocess.run(
        [str(built.python / "bin" / "python"), "-m", "pip", "list", "--format=json"],
        capture_output=True,
        text=True,
        check=True,
    )
    installed = {package["name"].lower() for package in json.loads(listing.stdout)}
    assert "datarch" in installed and "kopf" in installed
    assert not {"pytest", "ruff", "mypy"} & installed
    assert not list(built.roots[STAGES[-1].name or "1"].rglob("pyproject.toml"))


def test_every_wheel_installs_on_the_slim_base_without_a_compiler(built: Built) -> None:
    # The slim image has no compiler: a wheel built here from an sdist (plain linux_x86_64
    # tag) would have needed one there.
    wheels = sorted(p.name for p in built.roots[STAGES[0].name or "0"].rglob("*.whl"))
    assert any(name.startswith("datarch-") for name in wheels)
    assert not [name for name in wheels if name.endswith("-linux_x86_64.whl")], wheels


# --------------------------------------------------------------------------- running it


def snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    return {
        str(path): (path.stat().st_mtime_ns, path.stat().st_size)
        for path in directory.rglob("*")
        if path.is_file() and not path.is_symlink()
    }


@pytest.fixture
def claims_crd(kube_api: kube.ApiClient) -> Iterator[None]:
    document = yaml.safe_load(CRD.read_text())
    extensions = kube.ApiextensionsV1Api(kube_api)
    try:
        extensions.create_custom_resource_definition(document)
    except ApiException as error:
        if error.status != 409:
            raise
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        conditions = (
            extensions.read_custom_resource_definition(
                document["metadata"]["name"]
            ).status.conditions
            or []
        )
        if any(c.type == "Established" and c.status == "True" for c in conditions):
            break
        time.sleep(0.2)
    else:
        pytest.fail("the CRD never became Established")
    yield


@pytest.mark.e2e
def test_the_image_starts_answers_healthz_and_stops_cleanly_on_sigterm(
    built: Built,
    claims_crd: None,
    kube_namespace: str,
    tmp_path: Path,
) -> None:
    final = STAGES[-1]
    entrypoint: list[str] = json.loads(final.all("ENTRYPOINT")[0])
    health, metrics = free_port(), free_port()
    # The container's environment: its ENV, its PATH, and a kubeconfig in place of the
    # in-cluster ServiceAccount; nothing of this test process leaks in.
    environment = {
        **built.environment,
        "PATH": f"{built.python / 'bin'}{os.pathsep}/usr/bin:/bin",
        "KUBECONFIG": env("KUBECONFIG"),
    }
    Path(environment["HOME"]).mkdir(parents=True, exist_ok=True)
    before = snapshot(built.python)
    log = tmp_path / "operator.log"
    with open(log, "w") as output:
        operator = subprocess.Popen(
            [
                *entrypoint,
                "--namespace",
                kube_namespace,
                "--metrics-port",
                str(metrics),
                "--health-port",
                str(health),
            ],
            cwd=built.workdir,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        status = None
        while status != 200:
            assert operator.poll() is None, f"the operator exited:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"/healthz never answered:\n{log.read_text()}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{health}/healthz", timeout=2) as r:
                    status = r.status
            except (urllib.error.URLError, OSError):
                time.sleep(0.3)
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=5) as page:
            assert b"# TYPE datarch_store_up gauge" in page.read()
    finally:
        operator.send_signal(signal.SIGTERM)
        try:
            operator.wait(timeout=30)
        except subprocess.TimeoutExpired:
            operator.kill()
            operator.wait()
            pytest.fail(f"the operator ignored SIGTERM:\n{log.read_text()}")
    assert operator.returncode == 0, log.read_text()
    # A read-only root filesystem: nothing under the installed tree was written.
    assert snapshot(built.python) == before
