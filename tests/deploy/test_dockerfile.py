"""deploy/docker/Dockerfile: lint (hadolint), image rules, and its install step for real."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.deploy.support import DOCKERFILE, LOCAL_BIN, ROOT

FINAL_TARGETS = ("service", "gateway", "simulator")


def _stages(text: str) -> dict[str, list[str]]:
    """Instructions (continuation lines joined) by stage name."""
    joined = re.sub(r"\\\n", " ", text)
    stages: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, re.IGNORECASE)
        if match:
            current = stages.setdefault(match.group(2) or match.group(1), [])
            current.append(line)
        elif current is not None:
            current.append(line)
    return stages


def _inherited(stages: dict[str, list[str]], name: str) -> list[str]:
    """A stage's instructions after those of the stages it is built FROM."""
    base = stages[name][0].split()[1]
    return (_inherited(stages, base) if base in stages else []) + stages[name]


@pytest.fixture(scope="module")
def stages() -> dict[str, list[str]]:
    return _stages(DOCKERFILE.read_text())


def test_hadolint_finds_nothing():
    hadolint = LOCAL_BIN / "hadolint"
    if not hadolint.exists():
        pytest.fail("hadolint missing: run `make deploy-tools`")
    result = subprocess.run(
        [str(hadolint), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install gcc\nCMD python app.py\n")
    result = subprocess.run(
        [str(LOCAL_BIN / "hadolint"), "--no-color", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # latest tag


@pytest.mark.parametrize("target", FINAL_TARGETS)
def test_final_images_are_slim_non_root_health_checked_and_labelled(stages, target):
    instructions = _inherited(stages, target)
    text = "\n".join(instructions)
    bases = [line.split()[1] for line in instructions if line.upper().startswith("FROM ")]
    assert bases[0] == "${PYTHON_IMAGE}"
    users = [line.split()[1] for line in instructions if line.upper().startswith("USER ")]
    assert users and not users[-1].startswith(("0", "root")), target
    assert sum(line.upper().startswith("HEALTHCHECK ") for line in instructions) == 1
    assert "CMD" in text.split("HEALTHCHECK", 1)[1]
    for label in ("title", "description", "version", "revision", "source", "licenses"):
        assert f"org.opencontainers.image.{label}=" in text, (target, label)
    # Build tools stay in the builder: the runtime copies only the virtualenv.
    copies = [line for line in instructions if line.upper().startswith("COPY ")]
    assert copies == ["COPY --from=builder /app/.venv /app/.venv"], copies
    assert "uv " not in text and "apt-get" not in text and "pip install" not in text


def test_base_images_are_slim_and_pinned():
    text = DOCKERFILE.read_text()
    python_image = re.search(r"ARG PYTHON_IMAGE=(\S+)", text).group(1)
    assert python_image.startswith("python:3.11") and "slim" in python_image
    uv_image = re.search(r"ARG UV_IMAGE=(\S+)", text).group(1)
    assert re.fullmatch(r"ghcr\.io/astral-sh/uv:\d+\.\d+\.\d+", uv_image)


def test_the_build_context_leaves_local_state_out():
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    ignored = [line for line in lines if line and not line.startswith("#")]
    # Everything is left out first; only the workspace is let back in.
    assert ignored[0] == "**"
    for kept in ("!pyproject.toml", "!uv.lock", "!protos/", "!libs/", "!services/"):
        assert kept in ignored
    assert "**/tests/" in ignored


def _build_context(destination: Path) -> None:
    """Copy what .dockerignore lets into the build: the workspace's sources and lock."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    keep = ("protos/", "libs/", "services/", "gateway/", "simulator/", "tools/devstack/")
    for name in listed:
        if name in ("pyproject.toml", "uv.lock") or (
            name.startswith(keep) and "/tests/" not in name and "_pb2" not in name
        ):
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if (ROOT / name).is_file():
                shutil.copy2(ROOT / name, target)


@pytest.fixture(scope="module")
def auth_image(tmp_path_factory, stages) -> Path:
    """The builder stage's commands, run here (offline, from uv's cache) for the auth image.

    Returns its virtualenv, with the source tree removed as in the runtime stage.
    """
    builder = "\n".join(stages["builder"])
    assert "UV_PROJECT_ENVIRONMENT=/opt/protoc uv sync --only-group dev" in builder
    assert 'UV_PROJECT_ENVIRONMENT=/app/.venv uv sync --package "$PACKAGE" --no-dev' in builder
    assert "UV_NO_EDITABLE=1" in builder and "UV_FROZEN=1" in builder
    tmp_path = tmp_path_factory.mktemp("image")
    src = tmp_path / "src"
    _build_context(src)
    env = {
        **os.environ,
        "UV_FROZEN": "1",
        "UV_NO_EDITABLE": "1",
        "UV_OFFLINE": "1",
        "UV_PYTHON_DOWNLOADS": "0",
    }
    env.pop("VIRTUAL_ENV", None)
    uv = shutil.which("uv") or "uv"
    protoc = tmp_path / "protoc"
    subprocess.run(
        [uv, "sync", "--quiet", "--only-group", "dev"],
        cwd=src,
        check=True,
        env={**env, "UV_PROJECT_ENVIRONMENT": str(protoc)},
    )
    protos = [str(p.relative_to(src)) for p in (src / "protos").rglob("*.proto")]
    out = "libs/protos/src"
    subprocess.run(
        [
            str(protoc / "bin" / "python"),
            "-m",
            "grpc_tools.protoc",
            "-I",
            "protos",
            f"--python_out={out}",
            f"--pyi_out={out}",
            f"--grpc_python_out={out}",
            *protos,
        ],
        cwd=src,
        check=True,
    )
    venv = tmp_path / "venv"
    subprocess.run(
        [uv, "sync", "--quiet", "--package", "echostats-auth", "--no-dev"],
        cwd=src,
        check=True,
        env={**env, "UV_PROJECT_ENVIRONMENT": str(venv)},
    )
    shutil.rmtree(src)
    shutil.rmtree(protoc)
    return venv


def test_the_builder_installs_one_member_with_its_generated_stubs(auth_image):
    # The service, its libs and the stubs import from site-packages alone (no source tree
    # on the path), and nothing else is there.
    probe = (
        "import auth_service.server, echostats_grpc.healthcheck, echostats.auth.v1.auth_service_pb2"
    )
    subprocess.run([str(auth_image / "bin" / "python"), "-c", probe], cwd=auth_image, check=True)
    site = next((auth_image / "lib").glob("python3*/site-packages"))
    installed = {path.name.split("-")[0] for path in site.glob("*.dist-info")}
    assert "echostats_auth" in installed
    assert not installed & {
        "echostats_gateway",
        "echostats_catalog",
        "spotify_simulator",
        "pytest",
        "ruff",
        "grpcio_tools",
        "echostats_devstack",
    }


def _exec_form(instruction: str) -> list[str]:
    """The JSON array of a CMD or HEALTHCHECK ... CMD instruction."""
    return json.loads(instruction[instruction.index("[") :])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_service_image_starts_with_its_cmd_and_passes_its_healthcheck(auth_image, stages):
    """The `service` target's CMD and HEALTHCHECK, run in the auth image's environment.

    Loopback instead of the image's 0.0.0.0; MongoDB and Redis are not needed to serve health.
    """
    service = stages["service"]
    command = _exec_form(next(line for line in service if line.startswith("CMD ")))
    healthcheck = _exec_form(next(line for line in service if line.startswith("HEALTHCHECK ")))
    grpc_port, metrics_port = _free_port(), _free_port()
    key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    env = {
        "PATH": f"{auth_image / 'bin'}:/usr/bin:/bin",
        "HOME": str(auth_image),
        "APP_MODULE": "auth_service",  # ENV APP_MODULE=${MODULE}
        "ECHOSTATS_GRPC_PORT": str(grpc_port),  # ENV ECHOSTATS_GRPC_PORT=${GRPC_PORT}
        "ECHOSTATS_GRPC_HOST": "127.0.0.1",
        "ECHOSTATS_METRICS_PORT": str(metrics_port),
        "ECHOSTATS_METRICS_HOST": "127.0.0.1",
        "ECHOSTATS_MONGODB_URI": "mongodb://127.0.0.1:1/?directConnection=true",
        "ECHOSTATS_REDIS_URL": "redis://127.0.0.1:1/0",
        "ECHOSTATS_SESSION_SECRET": "s" * 48,
        "ECHOSTATS_TOKEN_ENCRYPTION_KEYS": f"k1:{key}",
        "ECHOSTATS_SPOTIFY_CLIENT_SECRET": "",
    }
    process = subprocess.Popen(  # the container's PID 1
        command, env=env, cwd=auth_image, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 90
        healthy = False
        while time.monotonic() < deadline and process.poll() is None:
            probe = subprocess.run(healthcheck, env=env, cwd=auth_image, check=False)
            if probe.returncode == 0:
                healthy = True
                break
            time.sleep(0.5)
        assert healthy, process.stderr.read().decode() if process.poll() is not None else ""
        # The worker's healthcheck asks this endpoint in the same image.
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5):
            pass
        # `exec` made python PID 1 of the command: SIGTERM stops it gracefully.
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert subprocess.run(healthcheck, env=env, cwd=auth_image, check=False).returncode == 1
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
