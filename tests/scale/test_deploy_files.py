"""The deployment files say what the code does: parsed and cross-checked, since none can run here.

There is no Docker engine and no Kubernetes cluster on the machine these were written on, so
the Dockerfile is not built and the manifests are not applied. What can be checked is: the YAML
parses, every path they copy or mount exists in the repository, the commands they run are real
CLI commands, and the numbers that must agree with the worker (health port, drain time, load
threshold, metric name, Sentinel names) do.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from frontdesk.workflows.definition import load_workflow
from frontdesk.workflows.worker import (
    PROMETHEUS_PORT_ENV,
    SHUTDOWN_PROCESS_TIMEOUT,
    build_worker_options,
    prometheus_port,
)

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
FRONTDESK = Path(sys.executable).with_name("frontdesk")


def _yaml(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) of deploy/Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, rest = line.partition(" ")
            out.append((instruction.upper(), rest.strip()))
    return out


def _worker_drain_seconds() -> float:
    options = build_worker_options(load_workflow(ROOT / "config.toml"))
    return float(options.drain_timeout) + SHUTDOWN_PROCESS_TIMEOUT


@pytest.mark.parametrize(
    "path",
    [
        "compose.yaml",
        "livekit.yaml",
        "k8s/worker-deployment.yaml",
        "k8s/worker-hpa.yaml",
        "k8s/redis-values.yaml",
        "k8s/kustomization.yaml",
    ],
)
def test_every_yaml_file_parses(path: str) -> None:
    assert _yaml(DEPLOY / path)


def test_the_dockerfile_copies_only_paths_that_exist_and_runs_as_a_non_root_user() -> None:
    instructions = _dockerfile()
    copies = [args for name, args in instructions if name == "COPY" and "--from=" not in args]
    assert copies
    for args in copies:
        parts = [p for p in shlex.split(args) if not p.startswith("--")]
        for source in parts[:-1]:
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
    # A symlink inside a copied folder must point at something copied too (the embedded default
    # config is a link to ./config.toml): otherwise `pip install .` packages a dangling link.
    second_stage = [i for i, (name, _) in enumerate(instructions) if name == "FROM"][1]
    build_copies = [
        args for name, args in instructions[:second_stage] if name == "COPY"
    ]  # the stage that runs `pip install .`
    copied = {
        (ROOT / source).resolve()
        for args in build_copies
        for source in [p for p in shlex.split(args) if not p.startswith("--")][:-1]
    }
    for folder in list(copied):
        if folder.is_dir():
            for link in (p for p in folder.rglob("*") if p.is_symlink()):
                target = link.resolve()
                assert any(target == c or c in target.parents for c in copied), (
                    f"{link.relative_to(ROOT)} -> {target}: not copied into the image"
                )
    froms = [args for name, args in instructions if name == "FROM"]
    assert all("slim" in image for image in froms), froms
    users = [args for name, args in instructions if name == "USER"]
    assert users and users[-1].split(":")[0] not in {"0", "root"}
    # pyproject's packages are all copied, so `pip install .` in the image has its sources.
    for package_dir in ("frontdesk", "agents", "workflows", "state"):
        assert any(package_dir in args for args in copies), package_dir


def test_the_dockerfile_entrypoint_is_a_real_cli_command() -> None:
    instructions = dict(_dockerfile())
    command = json.loads(instructions["ENTRYPOINT"]) + json.loads(instructions["CMD"])
    assert command[:3] == ["frontdesk", "worker", "start"]
    done = subprocess.run(
        [str(FRONTDESK), *command[1:], "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    healthcheck = instructions["HEALTHCHECK"]
    # LiveKit's worker answers GET / on its HTTP port, 8081 in production mode.
    port = build_worker_options(load_workflow(ROOT / "config.toml")).port
    assert f"127.0.0.1:{port.prod_default}/" in healthcheck  # type: ignore[union-attr]
    env = instructions["ENV"]
    assert f"{PROMETHEUS_PORT_ENV}=9100" in env


def test_compose_builds_the_worker_from_this_repository_and_waits_out_its_drain() -> None:
    (compose,) = _yaml(DEPLOY / "compose.yaml")
    services = compose["services"]
    assert set(services) == {"livekit", "redis", "worker"}
    worker = services["worker"]
    context = (DEPLOY / worker["build"]["context"]).resolve()
    assert context == ROOT
    assert (context / worker["build"]["dockerfile"]).exists()
    assert worker["command"] == ["start"]
    env = worker["environment"]
    (livekit_conf,) = _yaml(DEPLOY / "livekit.yaml")
    assert livekit_conf["keys"] == {env["LIVEKIT_API_KEY"]: env["LIVEKIT_API_SECRET"]}
    assert env["LIVEKIT_URL"] == f"ws://livekit:{livekit_conf['port']}"
    assert env["FRONTDESK_REDIS_URL"].startswith("redis://redis:6379")
    for volume in services["livekit"]["volumes"]:
        source = volume.split(":")[0]
        assert (DEPLOY / source).exists(), source
    grace = float(worker["stop_grace_period"].rstrip("s"))
    assert grace >= _worker_drain_seconds()


def test_the_deployment_drains_on_sigterm_for_as_long_as_the_worker_does() -> None:
    (deployment,) = _yaml(DEPLOY / "k8s" / "worker-deployment.yaml")
    spec = deployment["spec"]["template"]["spec"]
    assert spec["terminationGracePeriodSeconds"] >= _worker_drain_seconds()
    assert spec["securityContext"]["runAsNonRoot"] is True
    (container,) = spec["containers"]
    args = container["args"]
    assert args[-1] == "start"
    assert args[:2] == ["--config", "/etc/frontdesk/config.toml"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["health"] == 8081
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert int(env[PROMETHEUS_PORT_ENV]) == ports["metrics"]
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert int(annotations["prometheus.io/port"]) == ports["metrics"]
    assert prometheus_port({PROMETHEUS_PORT_ENV: env[PROMETHEUS_PORT_ENV]}) == ports["metrics"]
    # The mounted config is a real, valid workflow, set up for the chart's Sentinels.
    mount = container["volumeMounts"][0]["mountPath"]
    assert args[1].startswith(mount)
    workflow = load_workflow(DEPLOY / "k8s" / "config.toml")
    state = workflow.config.state
    assert state.mode == "sentinel"
    (values,) = _yaml(DEPLOY / "k8s" / "redis-values.yaml")
    assert values["sentinel"]["enabled"] is True
    assert state.sentinel_service == values["sentinel"]["masterSet"]
    assert state.sentinels == ("frontdesk-redis:26379",)
    assert env["FRONTDESK_REDIS_URL"].endswith("@frontdesk-redis:6379/0")
    assert state.durability == "replica"
    assert values["replica"]["replicaCount"] >= 2  # a replica is left after a failover


def test_the_hpa_scales_the_deployment_on_the_load_livekit_exports() -> None:
    from livekit.agents.telemetry import metrics as livekit_metrics

    (hpa,) = _yaml(DEPLOY / "k8s" / "worker-hpa.yaml")
    (deployment,) = _yaml(DEPLOY / "k8s" / "worker-deployment.yaml")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    (metric,) = hpa["spec"]["metrics"]
    name = metric["pods"]["metric"]["name"]
    assert name in Path(livekit_metrics.__file__).read_text()
    target = metric["pods"]["target"]["averageValue"]
    value = int(target[:-1]) / 1000 if target.endswith("m") else float(target)
    threshold = load_workflow(ROOT / "config.toml").config.worker.load_threshold
    assert 0 < value < threshold, "scale out before workers stop taking jobs"
    (kustomization,) = _yaml(DEPLOY / "k8s" / "kustomization.yaml")
    for resource in kustomization["resources"]:
        assert (DEPLOY / "k8s" / resource).exists()


def test_a_bad_prometheus_port_is_refused_with_the_variable_named() -> None:
    from frontdesk.errors import WorkerSetupError

    assert prometheus_port({}) is None
    with pytest.raises(WorkerSetupError, match=PROMETHEUS_PORT_ENV):
        prometheus_port({PROMETHEUS_PORT_ENV: "http"})
    with pytest.raises(WorkerSetupError, match="1-65535"):
        prometheus_port({PROMETHEUS_PORT_ENV: "70000"})


def test_readme_documents_every_deployment_file() -> None:
    readme = (ROOT / "README.md").read_text()
    for path in sorted(DEPLOY.rglob("*")):
        if path.is_file():
            assert str(path.relative_to(ROOT)) in readme, f"README does not mention {path}"
