"""The deploy steps of README.md and deploy/README.md name files and objects that exist."""

from __future__ import annotations

import base64
import re

import pytest

from tests.deploy.support import K8S, OVERLAYS, ROOT, by_kind, compose_config, kustomize_build

DOCS = {
    "README.md": (ROOT / "README.md").read_text().split("## Deploy\n", 1)[1].split("\n## ", 1)[0],
    "deploy/README.md": (ROOT / "deploy" / "README.md").read_text(),
}


@pytest.mark.parametrize("doc", DOCS)
def test_every_overlay_has_its_one_command(doc):
    applied = re.findall(r"kubectl apply -k (deploy/\S+)", DOCS[doc])
    assert {f"deploy/k8s/overlays/{overlay}" for overlay in OVERLAYS} <= set(applied)
    for target in applied:
        assert (ROOT / target / "kustomization.yaml").exists(), target


@pytest.mark.parametrize("doc", DOCS)
def test_paths_and_env_files_exist(doc):
    text = DOCS[doc]
    assert "docker compose up -d --build" in text
    for path in re.findall(r"(?<![\w/.])((?:deploy|tools|tests)/[\w./-]*\w)", text):
        assert (ROOT / path).exists(), path
    for env_file in re.findall(r"--env-file (\S+)", text):
        assert (ROOT / env_file).exists(), env_file


@pytest.mark.parametrize("doc", DOCS)
def test_scaling_examples_name_real_components(doc):
    services = set(compose_config(env_files=[ROOT / "deploy" / "compose" / "demo.env"])["services"])
    for name in re.findall(r"--scale ([\w-]+)=", DOCS[doc]):
        assert name in services, name
    autoscalers = set(
        by_kind(kustomize_build(K8S / "overlays" / "production"), "HorizontalPodAutoscaler")
    )
    for name in re.findall(r"patch hpa ([\w-]+)", DOCS[doc]):
        assert name in autoscalers, name


def test_the_documented_secrets_are_the_ones_the_manifests_read():
    """Names from the production Deployments; keys from the demo's generated Secrets."""
    production = kustomize_build(K8S / "overlays" / "production")
    referenced = {
        source["secretRef"]["name"]
        for deployment in by_kind(production, "Deployment").values()
        for source in deployment["spec"]["template"]["spec"]["containers"][0]["envFrom"]
        if "secretRef" in source
    }
    demo_secrets = by_kind(kustomize_build(K8S / "overlays" / "demo"), "Secret")
    for doc, text in DOCS.items():
        for name in referenced:
            assert f"`{name}`" in text, (doc, name)
            (generated,) = [s for n, s in demo_secrets.items() if n.rsplit("-", 1)[0] == name]
            for key in generated["data"]:
                assert key in text, (doc, name, key)
                assert base64.b64decode(generated["data"][key])  # every key has a value
