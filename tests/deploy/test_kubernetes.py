"""deploy/k8s: every overlay renders, and the rendered objects deploy every process safely."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest

from tests.deploy.support import (
    K8S,
    KUBERNETES_VERSIONS,
    OVERLAYS,
    PROCESSES,
    SERVICES,
    RenderError,
    all_env_names,
    by_kind,
    config_env,
    env_key,
    grpc_port,
    kubernetes_schema_errors,
    kustomize_build,
    kustomize_render,
    network_problems,
    process_problems,
    workload_problems,
)


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    return {overlay: kustomize_build(K8S / "overlays" / overlay) for overlay in OVERLAYS}


def test_both_overlays_exist():
    assert {"demo", "production"} <= set(OVERLAYS)


@pytest.fixture(scope="module")
def rendered_files(tmp_path_factory) -> list[Path]:
    directory = tmp_path_factory.mktemp("rendered")
    files = []
    for overlay in OVERLAYS:
        path = directory / f"{overlay}.yaml"
        path.write_text(kustomize_render(K8S / "overlays" / overlay))
        files.append(path)
    return files


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_is_valid_for_kubernetes(rendered_files, version):
    assert kubernetes_schema_errors(rendered_files, version) == []


def test_the_schema_check_catches_a_misspelt_field_and_a_wrong_type(rendered_files, tmp_path):
    text = rendered_files[0].read_text()
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        text.replace("revisionHistoryLimit:", "revisionHistoryLimits:", 1).replace(
            "containerPort: 50051", 'containerPort: "grpc"', 1
        )
    )
    errors = "\n".join(kubernetes_schema_errors([broken], KUBERNETES_VERSIONS[0]))
    assert "'revisionHistoryLimits' was unexpected" in errors
    assert "is not of type 'integer'" in errors


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_workloads_have_probes_resources_and_run_hardened(rendered, overlay):
    assert workload_problems(rendered[overlay]) == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_process_has_deployment_service_autoscaler_and_budget(rendered, overlay):
    assert process_problems(rendered[overlay]) == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_gateway_services_and_workers_reach_grpc(rendered, overlay):
    assert network_problems(rendered[overlay]) == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_callers_balance_over_every_replica_of_each_service(rendered, overlay):
    config = config_env(rendered[overlay])
    for service in SERVICES:
        assert config[f"ECHOSTATS_{env_key(service)}_ADDR"] == (
            f"dns:///{service}:{grpc_port(service)}"
        )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_configuration_names_settings_that_exist(rendered, overlay):
    known = all_env_names()
    names = set(config_env(rendered[overlay]))
    for secret in by_kind(rendered[overlay], "Secret").values():
        names |= set(secret.get("data", {}))
    assert names - known == set()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_process_reads_the_config_map_and_the_secret(rendered, overlay):
    deployments = by_kind(rendered[overlay], "Deployment")
    for component in PROCESSES:
        sources = deployments[component]["spec"]["template"]["spec"]["containers"][0]["envFrom"]
        refs = [next(iter(source.values()))["name"] for source in sources]
        assert any(ref.startswith("echostats-config") for ref in refs), component
        assert any(ref.startswith("echostats-secrets") for ref in refs), component
        # Only auth holds the session secret and the token keys.
        has_auth_secrets = any(ref.startswith("echostats-auth-secrets") for ref in refs)
        assert has_auth_secrets == (component == "auth"), component


def test_production_expects_existing_secrets_and_managed_stores(rendered):
    objects = rendered["production"]
    assert by_kind(objects, "Secret") == {}
    names = {obj["metadata"]["name"] for obj in objects}
    assert not names & {"mongodb", "redis", "simulator"}
    config = config_env(objects)
    assert config["ECHOSTATS_ENVIRONMENT"] == "production"
    assert config["ECHOSTATS_DEV_LOGIN_ENABLED"] == "false"
    for required in ("ECHOSTATS_SPOTIFY_CLIENT_ID", "ECHOSTATS_SPOTIFY_REDIRECT_URI"):
        assert config[required], required
    routes = by_kind(objects, "IngressRoute")
    assert "PathPrefix(`/api`)" in routes["gateway"]["spec"]["routes"][0]["match"]
    assert routes["gateway"]["spec"]["routes"][0]["services"][0]["name"] == "gateway"


def test_demo_brings_its_stores_simulator_secrets_and_dev_login(rendered):
    objects = rendered["demo"]
    assert {"mongodb", "redis"} <= set(by_kind(objects, "StatefulSet"))
    assert "simulator" in by_kind(objects, "Deployment")
    assert "mongodb-init" in by_kind(objects, "Job")
    secrets = {name.rsplit("-", 1)[0] for name in by_kind(objects, "Secret")}
    assert secrets == {"echostats-secrets", "echostats-auth-secrets"}
    config = config_env(objects)
    assert config["ECHOSTATS_ENVIRONMENT"] == "demo"
    assert config["ECHOSTATS_DEV_LOGIN_ENABLED"] == "true"
    assert config["ECHOSTATS_SPOTIFY_API_URL"] == "http://simulator:8090"
    ingress = by_kind(objects, "Ingress")["gateway"]
    path = ingress["spec"]["rules"][0]["http"]["paths"][0]
    assert (path["path"], path["backend"]["service"]["name"]) == ("/api", "gateway")


def test_secret_references_are_rewritten_to_the_generated_names(rendered):
    objects = rendered["demo"]
    secrets = set(by_kind(objects, "Secret"))
    for deployment in by_kind(objects, "Deployment").values():
        for source in deployment["spec"]["template"]["spec"]["containers"][0].get("envFrom", []):
            if "secretRef" in source:
                assert source["secretRef"]["name"] in secrets


# ---- the checks catch broken manifests --------------------------------------------------------


def _deployment(objects: list[dict], name: str) -> dict:
    return by_kind(objects, "Deployment")[name]


def test_checks_catch_a_missing_probe_and_a_writable_root(rendered):
    objects = copy.deepcopy(rendered["production"])
    container = _deployment(objects, "catalog")["spec"]["template"]["spec"]["containers"][0]
    del container["livenessProbe"]
    container["securityContext"]["readOnlyRootFilesystem"] = False
    problems = workload_problems(objects)
    assert "catalog/catalog: no livenessProbe" in problems
    assert "catalog/catalog: root filesystem is writable" in problems


def test_checks_catch_a_selector_that_misses_its_pods(rendered):
    objects = copy.deepcopy(rendered["production"])
    _deployment(objects, "auth")["spec"]["selector"]["matchLabels"] = {
        "app.kubernetes.io/name": "auth-typo"
    }
    assert "auth: selector does not match the pod labels" in workload_problems(objects)


def test_checks_catch_a_forgotten_process_and_a_wrong_port(rendered):
    objects = [
        obj
        for obj in copy.deepcopy(rendered["production"])
        if obj["metadata"]["name"] != "ingestion-worker"
    ]
    container = _deployment(objects, "analytics")["spec"]["template"]["spec"]["containers"][0]
    container["readinessProbe"]["grpc"]["port"] = 50099
    problems = process_problems(objects)
    assert "ingestion-worker: no Deployment" in problems
    assert "analytics: readinessProbe is not a gRPC probe on 50054" in problems


def test_checks_catch_grpc_opened_to_other_pods(rendered):
    objects = copy.deepcopy(rendered["demo"])
    policy = by_kind(objects, "NetworkPolicy")["grpc-from-echostats"]
    policy["spec"]["ingress"][0]["from"] = [{"podSelector": {}}]
    problems = network_problems(objects)
    assert any("gRPC reachable from" in problem and "mongodb" in problem for problem in problems)


def test_a_broken_kustomization_does_not_render(tmp_path: Path):
    copied = tmp_path / "k8s"
    shutil.copytree(K8S, copied)
    (copied / "base" / "workers" / "ingestion-worker.yaml").unlink()
    with pytest.raises(RenderError, match="ingestion-worker"):
        kustomize_build(copied / "overlays" / "production")
