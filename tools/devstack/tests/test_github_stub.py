"""Unit tests for the in-process GitHub releases stub."""

from __future__ import annotations

from pathlib import Path

import httpx

from echostats_devstack.github_stub import GithubStub


def test_latest_release_and_not_found(tmp_path: Path) -> None:
    stub = GithubStub(port=0, log_path=tmp_path / "github-stub.log")
    stub.start()
    try:
        response = httpx.get(f"{stub.url}/repos/echostats/echostats/releases/latest", timeout=5)
        assert response.status_code == 200
        release = response.json()
        assert release["tag_name"] == "v0.2.0"
        assert release["published_at"] == "2025-01-15T12:00:00Z"
        assert release["html_url"].endswith("/echostats/echostats/releases/tag/v0.2.0")
        assert release["body"]
        missing = httpx.get(f"{stub.url}/repos/echostats/echostats/tags", timeout=5)
        assert missing.status_code == 404
        assert missing.json()["message"] == "Not Found"
        assert stub.requests == [
            "/repos/echostats/echostats/releases/latest",
            "/repos/echostats/echostats/tags",
        ]
        assert "releases/latest" in (tmp_path / "github-stub.log").read_text()
    finally:
        stub.stop()


def test_restart_keeps_the_port(tmp_path: Path) -> None:
    stub = GithubStub(port=0, log_path=tmp_path / "github-stub.log")
    stub.start()
    url = stub.url
    stub.stop()
    assert not stub.running
    try:
        httpx.get(f"{url}/repos/a/b/releases/latest", timeout=1)
        reachable = True
    except httpx.TransportError:
        reachable = False
    assert not reachable
    stub.release["tag_name"] = "v0.3.0"
    stub.start()
    try:
        assert stub.url == url
        assert httpx.get(f"{url}/repos/a/b/releases/latest", timeout=5).json()["tag_name"] == (
            "v0.3.0"
        )
    finally:
        stub.stop()
