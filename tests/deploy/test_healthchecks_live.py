"""Every health check the images and docker-compose.yml define, run against the live stack.

The local stack runs the same processes on loopback ports; each check runs with the
container's port (its environment variable, or the number in compose's command) pointed at
the stack's, so a wrong path, port variable or module name fails here and not at start-up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from echostats_devstack import LocalStack
from tests.deploy.support import DEMO_ENV, DOCKERFILE, SERVICES, WORKERS, compose_config

# Where the python of the checks comes from: the workspace's, with every member installed.
PYTHON_BIN = str(Path(sys.executable).parent)


def _run(command: list[str], env: dict[str, str]) -> int:
    full_env = {**os.environ, **env, "PATH": f"{PYTHON_BIN}:{os.environ.get('PATH', '')}"}
    if command[0] == "CMD":
        command = command[1:]
    return subprocess.run(command, env=full_env, timeout=30, check=False).returncode


def _dockerfile_healthcheck(target: str) -> list[str]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    stage = text.split(f" AS {target}\n", 1)[1].split("\nFROM ", 1)[0]
    line = next(line for line in stage.splitlines() if line.startswith("HEALTHCHECK "))
    return json.loads(line[line.index("[") :])


def _port(url: str) -> int:
    return int(urlsplit(url).port or 0)


@pytest.fixture(scope="module")
def compose_checks() -> dict[str, list[str]]:
    project = compose_config(env_files=[DEMO_ENV])
    return {
        name: svc["healthcheck"]["test"]
        for name, svc in project["services"].items()
        if "healthcheck" in svc
    }


def _with_port(command: list[str], container_port: int, port: int) -> list[str]:
    replaced = [part.replace(f":{container_port}/", f":{port}/") for part in command]
    assert replaced != command, f"port {container_port} not in {command}"
    return replaced


def test_image_healthchecks_pass_against_live_processes(stack: LocalStack):
    grpc = _dockerfile_healthcheck("service")
    for service in SERVICES:
        port = stack.service_addrs[service].rsplit(":", 1)[1]
        assert _run(grpc, {"ECHOSTATS_GRPC_PORT": port}) == 0, service
    gateway = _dockerfile_healthcheck("gateway")
    assert _run(gateway, {"ECHOSTATS_GATEWAY_PORT": str(_port(stack.gateway_url))}) == 0
    simulator = _dockerfile_healthcheck("simulator")
    assert _run(simulator, {"SIMULATOR_PORT": str(_port(stack.simulator_url))}) == 0


def test_compose_healthchecks_pass_against_live_processes(stack: LocalStack, compose_checks):
    for service in SERVICES:
        port = stack.service_addrs[service].rsplit(":", 1)[1]
        # The image's ENV supplies the port in a container.
        assert _run(compose_checks[service], {"ECHOSTATS_GRPC_PORT": port}) == 0, service
    for worker in WORKERS:
        check = _with_port(compose_checks[worker], 9090, stack.ports.metrics[worker])
        assert _run(check, {}) == 0, worker
    gateway = _with_port(compose_checks["gateway"], 8000, _port(stack.gateway_url))
    assert _run(gateway, {}) == 0
    simulator = _with_port(compose_checks["simulator"], 8090, _port(stack.simulator_url))
    assert _run(simulator, {}) == 0


def test_a_healthcheck_fails_where_nothing_serves(stack: LocalStack, compose_checks):
    gateway = _with_port(compose_checks["gateway"], 8000, 1)
    assert _run(gateway, {}) != 0
    assert _run(_dockerfile_healthcheck("service"), {"ECHOSTATS_GRPC_PORT": "1"}) != 0
