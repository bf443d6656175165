"""Offline rendering of the deployment files and what they must agree with.

Renders docker-compose.yml with compose-config (compose-go, what `docker compose config`
runs; built by `make deploy-tools`) and each kustomize overlay with kustomize (kubectl's
built-in one, or `.local/bin/kustomize` where kubectl is missing). The expected components
come from the devstack's list and the ports and variable names from the settings classes,
so a new service, worker or setting cannot be forgotten here.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic_settings import BaseSettings

from echostats_devstack.components import SERVICE_MODULES, WORKER_MODULES

ROOT = Path(__file__).resolve().parents[2]
LOCAL_BIN = ROOT / ".local" / "bin"
COMPOSE_FILE = ROOT / "docker-compose.yml"
DEMO_ENV = ROOT / "deploy" / "compose" / "demo.env"
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = sorted(path.name for path in (K8S / "overlays").iterdir() if path.is_dir())

# The EchoStats processes every deployment runs, by component name.
SERVICES = tuple(SERVICE_MODULES)
WORKERS = tuple(WORKER_MODULES)
PROCESSES = (*SERVICES, *WORKERS, "gateway")
METRICS_PORT = 9090
GATEWAY_PORT = 8000


class RenderError(RuntimeError):
    """A renderer refused the files; the message is its stderr."""


def _run(command: list[str], *, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=120, env=env, check=False
    )
    if result.returncode != 0:
        raise RenderError(result.stderr.strip() or f"exit status {result.returncode}")
    return result.stdout


def compose_config(
    compose_file: Path = COMPOSE_FILE,
    *,
    env_files: Iterable[Path] = (),
    profiles: Iterable[str] = (),
) -> dict[str, Any]:
    """The normalized compose project (JSON), interpolated from the env files only."""
    tool = LOCAL_BIN / "compose-config"
    if not tool.exists():
        raise RenderError(f"{tool} is missing: run `make deploy-tools`")
    command = [str(tool)]
    for env_file in env_files:
        command += ["-env-file", str(env_file)]
    for profile in profiles:
        command += ["-profile", profile]
    # Only PATH and HOME: a developer's own ECHOSTATS_* variables must not fill the gaps.
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/")}
    return json.loads(_run([*command, str(compose_file)], env=env))


def kustomize_command() -> list[str]:
    """kustomize from .local/bin or PATH, else kubectl's embedded one."""
    for candidate in (LOCAL_BIN / "kustomize", shutil.which("kustomize")):
        if candidate and Path(candidate).exists():
            return [str(candidate), "build"]
    kubectl = shutil.which("kubectl")
    if kubectl:
        return [kubectl, "kustomize"]
    raise RenderError("neither kustomize nor kubectl found: run `make deploy-tools`")


def kustomize_render(directory: Path) -> str:
    """The YAML a kustomization renders to."""
    return _run([*kustomize_command(), str(directory)])


def kustomize_build(directory: Path) -> list[dict[str, Any]]:
    """The objects a kustomization renders to."""
    return [doc for doc in yaml.safe_load_all(kustomize_render(directory)) if doc]


# Oldest Kubernetes the manifests support (native gRPC probes, matchLabelKeys: 1.27+) and the
# newest release whose schemas kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.30", "1.37")


def kubernetes_schema_errors(manifests: list[Path], version: str) -> list[str]:
    """Objects that break Kubernetes' OpenAPI schema (strict: unknown fields too).

    Custom resources (Traefik's IngressRoute) have no schema there and are skipped.
    """
    tool = LOCAL_BIN / "kubernetes-validate"
    if not tool.exists():
        raise RenderError(f"{tool} is missing: run `make deploy-tools`")
    result = subprocess.run(
        [str(tool), "--strict", "--quiet", "--no-warn", "-k", version, *map(str, manifests)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    errors = [line for line in result.stdout.splitlines() if line.startswith("ERROR")]
    if result.returncode != 0 and not errors:
        raise RenderError(result.stderr.strip() or result.stdout.strip())
    return errors


def settings_class(component: str) -> type[BaseSettings]:
    """The settings class a component reads (a worker shares its service's)."""
    if component == "gateway":
        module_name = "gateway.settings"
    else:
        service = WORKER_MODULES[component][1] if component in WORKER_MODULES else component
        module_name = f"{SERVICE_MODULES[service]}.settings"
    module = importlib.import_module(module_name)
    classes = [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, BaseSettings)
        and value.__module__ == module_name
    ]
    assert len(classes) == 1, f"{module_name} should define exactly one settings class"
    return classes[0]


def env_names(component: str) -> set[str]:
    """Every ECHOSTATS_* variable the component's settings read."""
    return {f"ECHOSTATS_{name.upper()}" for name in settings_class(component).model_fields}


def all_env_names() -> set[str]:
    """Every ECHOSTATS_* variable any EchoStats process reads."""
    return set().union(*(env_names(component) for component in PROCESSES))


def grpc_port(service: str) -> int:
    """The service's default gRPC port, from its settings."""
    return int(settings_class(service).model_fields["grpc_port"].default)


def env_key(component: str) -> str:
    """`player-proxy` -> `PLAYER_PROXY` (as in ECHOSTATS_PLAYER_PROXY_ADDR)."""
    return component.replace("-", "_").upper()


# ---- Kubernetes checks: each returns the problems it finds, so tests can feed broken input --


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    """The objects of one kind by name."""
    return {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == kind}


def _matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    match_labels = selector.get("matchLabels", {})
    if not match_labels and not selector.get("matchExpressions"):
        return True
    if any(labels.get(key) != value for key, value in match_labels.items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values")
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def workload_problems(objects: list[dict[str, Any]]) -> list[str]:
    """Required fields, probes, resources and hardening of every Deployment/StatefulSet."""
    problems: list[str] = []
    for obj in objects:
        if obj["kind"] not in ("Deployment", "StatefulSet"):
            continue
        name = obj["metadata"]["name"]
        spec = obj.get("spec", {})
        pod = spec.get("template", {})
        pod_labels = pod.get("metadata", {}).get("labels", {})
        selector = spec.get("selector", {})
        if not selector.get("matchLabels") or not _matches(selector, pod_labels):
            problems.append(f"{name}: selector does not match the pod labels")
        pod_spec = pod.get("spec", {})
        pod_security = pod_spec.get("securityContext", {})
        if not pod_security.get("runAsNonRoot"):
            problems.append(f"{name}: pod does not set runAsNonRoot")
        containers = pod_spec.get("containers", [])
        if not containers:
            problems.append(f"{name}: no containers")
        for container in containers:
            where = f"{name}/{container.get('name')}"
            if not container.get("image"):
                problems.append(f"{where}: no image")
            for probe in ("readinessProbe", "livenessProbe"):
                if probe not in container:
                    problems.append(f"{where}: no {probe}")
            resources = container.get("resources", {})
            requests = resources.get("requests", {})
            if "cpu" not in requests or "memory" not in requests:
                problems.append(f"{where}: cpu and memory requests missing")
            if "memory" not in resources.get("limits", {}):
                problems.append(f"{where}: no memory limit")
            security = container.get("securityContext", {})
            if security.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{where}: root filesystem is writable")
            if security.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: privilege escalation allowed")
            if "ALL" not in security.get("capabilities", {}).get("drop", []):
                problems.append(f"{where}: capabilities not dropped")
    return problems


def _port_numbers(container: dict[str, Any]) -> dict[str, int]:
    return {port["name"]: port["containerPort"] for port in container.get("ports", [])}


def process_problems(objects: list[dict[str, Any]]) -> list[str]:
    """Every EchoStats process deployed with the right probes, ports, Service, HPA and PDB."""
    problems: list[str] = []
    deployments = by_kind(objects, "Deployment")
    services = by_kind(objects, "Service")
    autoscalers = by_kind(objects, "HorizontalPodAutoscaler")
    budgets = by_kind(objects, "PodDisruptionBudget")
    for component in PROCESSES:
        deployment = deployments.get(component)
        if deployment is None:
            problems.append(f"{component}: no Deployment")
            continue
        pod = deployment["spec"]["template"]
        labels = pod["metadata"]["labels"]
        container = pod["spec"]["containers"][0]
        ports = _port_numbers(container)
        if ports.get("metrics") != METRICS_PORT:
            problems.append(f"{component}: no metrics port {METRICS_PORT}")
        if component in SERVICES:
            port = grpc_port(component)
            if ports.get("grpc") != port:
                problems.append(f"{component}: gRPC containerPort is not {port}")
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                if container.get(probe, {}).get("grpc", {}).get("port") != port:
                    problems.append(f"{component}: {probe} is not a gRPC probe on {port}")
            service = services.get(component)
            if service is None:
                problems.append(f"{component}: no Service")
            else:
                if service["spec"].get("clusterIP") != "None":
                    problems.append(f"{component}: Service is not headless")
                if not _matches({"matchLabels": service["spec"].get("selector", {})}, labels):
                    problems.append(f"{component}: Service selector does not match the pods")
                if [p["port"] for p in service["spec"]["ports"]] != [port]:
                    problems.append(f"{component}: Service port is not {port}")
        elif component in WORKERS:
            module = WORKER_MODULES[component][0]
            if container.get("command") != ["python", "-m", module]:
                problems.append(f"{component}: command is not python -m {module}")
            if container.get("readinessProbe", {}).get("httpGet", {}).get("port") != "metrics":
                problems.append(f"{component}: readiness does not ask the metrics endpoint")
        else:  # the gateway
            if ports.get("http") != GATEWAY_PORT:
                problems.append(f"gateway: http containerPort is not {GATEWAY_PORT}")
            if container.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/api/health":
                problems.append("gateway: readiness is not /api/health")
        autoscaler = autoscalers.get(component)
        target = (autoscaler or {}).get("spec", {}).get("scaleTargetRef", {})
        if target.get("kind") != "Deployment" or target.get("name") != component:
            problems.append(f"{component}: no HorizontalPodAutoscaler for its Deployment")
        budget = budgets.get(component)
        if budget is None or not _matches(budget["spec"].get("selector", {}), labels):
            problems.append(f"{component}: no PodDisruptionBudget selecting its pods")
    return problems


def network_problems(objects: list[dict[str, Any]]) -> list[str]:
    """Default deny, and gRPC ports reachable only from the gateway, services and workers."""
    problems: list[str] = []
    policies = list(by_kind(objects, "NetworkPolicy").values())
    if not any(
        p["spec"].get("podSelector") == {}
        and "ingress" not in p["spec"]
        and "Ingress" in p["spec"].get("policyTypes", [])
        for p in policies
    ):
        problems.append("no default-deny ingress NetworkPolicy")
    pods = {
        obj["metadata"]["name"]: obj["spec"]["template"]["metadata"]["labels"]
        for obj in objects
        if obj["kind"] in ("Deployment", "StatefulSet")
    }
    grpc_clients = {name for name in pods if name in PROCESSES}
    for service in SERVICES:
        labels = pods.get(service)
        if labels is None:
            continue
        allowing = [
            rule
            for policy in policies
            if _matches(policy["spec"].get("podSelector", {}), labels)
            for rule in policy["spec"].get("ingress", [])
            if not rule.get("ports")
            or any(port.get("port") in ("grpc", grpc_port(service)) for port in rule["ports"])
        ]
        if not allowing:
            problems.append(f"{service}: no policy lets callers reach its gRPC port")
        for rule in allowing:
            sources = rule.get("from")
            if not sources:
                problems.append(f"{service}: gRPC open to everyone")
                continue
            for source in sources:
                if "namespaceSelector" in source or "ipBlock" in source:
                    problems.append(f"{service}: gRPC open beyond the namespace's pods")
                    continue
                allowed = {
                    name
                    for name, pod_labels in pods.items()
                    if _matches(source.get("podSelector", {}), pod_labels)
                }
                if strangers := sorted(allowed - grpc_clients):
                    problems.append(f"{service}: gRPC reachable from {', '.join(strangers)}")
    return problems


def config_env(objects: list[dict[str, Any]]) -> dict[str, str]:
    """The merged data of the EchoStats ConfigMap."""
    for obj in objects:
        if obj["kind"] == "ConfigMap" and obj["metadata"]["name"].startswith("echostats-config"):
            return dict(obj["data"])
    raise AssertionError("no echostats-config ConfigMap")
