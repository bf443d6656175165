"""docker-compose.yml: valid for Compose (schema, interpolation, profiles) and wired right."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from echostats_devstack.components import SERVICE_MODULES, WORKER_MODULES
from tests.deploy.support import (
    COMPOSE_FILE,
    DEMO_ENV,
    PROCESSES,
    ROOT,
    SERVICES,
    RenderError,
    all_env_names,
    compose_config,
    env_key,
    grpc_port,
)

# What a production .env must hold at least (the rest has defaults).
REQUIRED = {
    "ECHOSTATS_SPOTIFY_CLIENT_ID": "my-client",
    "ECHOSTATS_SPOTIFY_REDIRECT_URI": "https://echostats.example.com/api/v1/auth/callback",
    "ECHOSTATS_SESSION_SECRET": "x" * 48,
    "ECHOSTATS_TOKEN_ENCRYPTION_KEYS": "k1:" + "A" * 43,
}


def _env_file(tmp_path: Path, values: dict[str, str]) -> Path:
    path = tmp_path / "test.env"
    path.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
    return path


@pytest.fixture(scope="module")
def production(tmp_path_factory) -> dict[str, Any]:
    return compose_config(env_files=[_env_file(tmp_path_factory.mktemp("env"), REQUIRED)])


@pytest.fixture(scope="module")
def demo() -> dict[str, Any]:
    return compose_config(env_files=[DEMO_ENV])


def test_every_process_and_the_stores_are_in_the_file(production):
    expected = {*PROCESSES, "traefik", "mongodb", "mongodb-init", "redis"}
    assert set(production["services"]) == expected


def test_a_missing_secret_fails_fast_with_its_message(tmp_path):
    values = {k: v for k, v in REQUIRED.items() if k != "ECHOSTATS_SESSION_SECRET"}
    with pytest.raises(RenderError, match=r"set ECHOSTATS_SESSION_SECRET in \.env"):
        compose_config(env_files=[_env_file(tmp_path, values)])


def test_an_invalid_file_fails_the_schema(tmp_path):
    broken = tmp_path / "docker-compose.yml"
    text = COMPOSE_FILE.read_text()
    text = text.replace("    restart: unless-stopped\n", "    restarts: always\n", 1)
    broken.write_text(text)
    with pytest.raises(RenderError, match="restarts"):
        compose_config(broken, env_files=[_env_file(tmp_path, REQUIRED)])


def test_only_traefik_publishes_a_port(production):
    published = {name for name, svc in production["services"].items() if svc.get("ports")}
    assert published == {"traefik"}
    assert [p["target"] for p in production["services"]["traefik"]["ports"]] == [80]


def test_traefik_routes_api_to_the_gateway_with_the_dashboard_off(production):
    traefik = production["services"]["traefik"]
    assert traefik["image"].startswith("traefik:v3")
    assert "--api.dashboard=false" in traefik["command"]
    assert "--providers.docker.exposedbydefault=false" in traefik["command"]
    edge = production["networks"]["edge"]["name"]
    assert f"--providers.docker.network={edge}" in traefik["command"]
    labels = production["services"]["gateway"]["labels"]
    assert labels["traefik.enable"] == "true"
    assert labels["traefik.http.routers.echostats-api.rule"] == "PathPrefix(`/api`)"
    assert labels["traefik.http.services.echostats-api.loadbalancer.server.port"] == "8000"


def test_traefik_cannot_reach_the_grpc_services(production):
    services = production["services"]
    assert set(services["traefik"]["networks"]) == {"edge"}
    assert set(services["gateway"]["networks"]) == {"edge", "backend"}
    for name in (*SERVICES, *WORKER_MODULES, "mongodb", "redis"):
        assert set(services[name]["networks"]) == {"backend"}, name


def test_every_long_running_container_has_a_healthcheck(production, demo):
    for project in (production, demo):
        for name, svc in project["services"].items():
            if name != "mongodb-init":
                assert svc.get("healthcheck", {}).get("test"), name


def test_processes_start_when_what_they_need_is_healthy(production):
    services = production["services"]
    for name in PROCESSES:
        depends = services[name]["depends_on"]
        assert {"mongodb", "redis"} <= set(depends), name
        assert all(dep["condition"] == "service_healthy" for dep in depends.values()), name
    assert set(SERVICES) <= set(services["gateway"]["depends_on"])
    for worker, (_, service) in WORKER_MODULES.items():
        assert services[worker]["image"] == services[service]["image"]


def test_mongodb_is_a_replica_set_of_one_with_its_init(production):
    services = production["services"]
    assert services["mongodb"]["image"].startswith("mongo:8")
    assert "--replSet" in services["mongodb"]["command"]
    assert "rs.initiate" in " ".join(services["mongodb-init"]["command"])
    assert services["redis"]["image"].startswith("redis:7")
    volumes = {
        v["target"]: v["source"]
        for name in ("mongodb", "redis")
        for v in production["services"][name]["volumes"]
    }
    assert volumes == {"/data/db": "mongodb-data", "/data": "redis-data"}


def test_images_are_built_per_member_with_ports_from_the_settings(production):
    services = production["services"]
    for name, module in SERVICE_MODULES.items():
        build = services[name]["build"]
        assert build["dockerfile"] == "deploy/docker/Dockerfile"
        assert build["target"] == "service"
        assert build["args"]["MODULE"] == module
        assert build["args"]["COMPONENT"] == name
        assert build["args"]["GRPC_PORT"] == str(grpc_port(name))
        assert build["args"]["PACKAGE"] == f"echostats-{name}"
        env = services["gateway"]["environment"]
        assert env[f"ECHOSTATS_{env_key(name)}_ADDR"] == f"dns:///{name}:{grpc_port(name)}"
    assert services["gateway"]["build"]["target"] == "gateway"
    for worker, (module, _) in WORKER_MODULES.items():
        assert services[worker]["command"] == ["python", "-m", module]


def test_every_variable_is_a_setting_that_exists(production, demo):
    known = all_env_names()
    for project in (production, demo):
        for name in PROCESSES:
            env = project["services"][name]["environment"]
            assert {key for key in env if key.startswith("ECHOSTATS_")} - known == set(), name


def test_production_runs_in_production_without_the_simulator(production):
    assert "simulator" not in production["services"]
    env = production["services"]["auth"]["environment"]
    assert env["ECHOSTATS_ENVIRONMENT"] == "production"
    assert env["ECHOSTATS_DEV_LOGIN_ENABLED"] == "false"
    assert env["ECHOSTATS_SPOTIFY_API_URL"] == "https://api.spotify.com"
    assert "ECHOSTATS_SESSION_SECRET" not in production["services"]["gateway"]["environment"]


def test_the_demo_env_runs_the_simulator_with_dev_login(demo):
    services = demo["services"]
    assert "simulator" in services
    for name in PROCESSES:
        env = services[name]["environment"]
        assert env["ECHOSTATS_ENVIRONMENT"] == "demo", name
        assert env["ECHOSTATS_DEV_LOGIN_ENABLED"] == "true", name
        assert env["ECHOSTATS_SPOTIFY_API_URL"] == "http://simulator:8090", name
    assert services["ingestion-worker"]["depends_on"]["simulator"]["condition"] == (
        "service_healthy"
    )


# ---- .env.example is the file operators copy: it must work with Compose as it is ------------

ENV_EXAMPLE = ROOT / ".env.example"


def _example_names() -> list[str]:
    return re.findall(r"^([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.MULTILINE)


def test_the_example_as_copied_fails_fast_on_the_missing_secrets(tmp_path):
    copied = tmp_path / ".env"
    copied.write_text(ENV_EXAMPLE.read_text())
    with pytest.raises(RenderError) as failure:
        compose_config(env_files=[copied])
    for name in (
        "ECHOSTATS_SPOTIFY_CLIENT_ID",
        "ECHOSTATS_SESSION_SECRET",
        "ECHOSTATS_TOKEN_ENCRYPTION_KEYS",
    ):
        assert f"required variable {name} is missing" in str(failure.value)


def test_the_example_filled_in_renders_and_no_comment_becomes_a_value(tmp_path):
    text = ENV_EXAMPLE.read_text()
    for name, value in REQUIRED.items():
        text = re.sub(rf"^{name}=.*$", f"{name}={value}", text, flags=re.MULTILINE)
    filled = tmp_path / ".env"
    filled.write_text(text)
    project = compose_config(env_files=[filled])
    for name, service in project["services"].items():
        for key, value in (service.get("environment") or {}).items():
            assert not (value or "").startswith("#"), (name, key, value)
    auth = project["services"]["auth"]["environment"]
    assert auth["ECHOSTATS_SESSION_SECRET"] == REQUIRED["ECHOSTATS_SESSION_SECRET"]
    assert auth["ECHOSTATS_SPOTIFY_CLIENT_SECRET"] == ""


def test_the_example_documents_every_compose_variable_and_only_real_ones():
    interpolated = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", COMPOSE_FILE.read_text()))
    documented = set(_example_names())
    assert interpolated - documented == set()
    unknown = {name for name in documented if name.startswith("ECHOSTATS_")}
    unknown -= all_env_names() | interpolated
    assert unknown == set()
