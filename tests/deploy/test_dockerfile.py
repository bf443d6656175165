"""deploy/docker/Dockerfile: lint (hadolint), image rules, and its install step for real."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
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


def test_the_builder_installs_one_member_with_its_generated_stubs(tmp_path, stages):
    """The builder stage's commands, run here (offline, from uv's cache) for one service."""
    builder = "\n".join(stages["builder"])
    assert "UV_PROJECT_ENVIRONMENT=/opt/protoc uv sync --only-group dev" in builder
    assert 'UV_PROJECT_ENVIRONMENT=/app/.venv uv sync --package "$PACKAGE" --no-dev' in builder
    assert "UV_NO_EDITABLE=1" in builder and "UV_FROZEN=1" in builder
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
    # The image's own environment: the service, its libs and the stubs import from
    # site-packages alone (no source tree on the path), and nothing else is there.
    shutil.rmtree(src)
    probe = (
        "import auth_service.server, echostats_grpc.healthcheck, echostats.auth.v1.auth_service_pb2"
    )
    subprocess.run([str(venv / "bin" / "python"), "-c", probe], cwd=tmp_path, check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
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
