"""CheckForUpdate of the real server against the devstack's GitHub releases stub.

Each server runs with a version string of its own, so the answer cached in the shared
Redis by another test (keyed to the running version) is never taken for this one.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from echostats.observability.v1 import observability_service_pb2 as pb
from echostats_devstack.github_stub import GithubStub


@pytest.fixture(scope="module")
def github(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GithubStub]:
    """The GitHub releases stub (latest release v0.2.0) on a free loopback port."""
    stub = GithubStub(port=0, log_path=Path(tmp_path_factory.mktemp("github")) / "stub.log")
    stub.start()
    try:
        yield stub
    finally:
        stub.stop()


def unique_version() -> str:
    """0.1.0 with a build suffix of its own (compares as 0.1.0)."""
    return f"0.1.0+test{uuid.uuid4().hex[:8]}"


async def test_newer_release_is_reported(
    settings_factory: Any, serve_observability: Any, github: GithubStub
) -> None:
    version = unique_version()
    settings = settings_factory(github_api_url=github.url, version=version)
    async with serve_observability(settings) as server:
        answer = await server.stub.CheckForUpdate(pb.CheckForUpdateRequest())
        cached = await server.stub.CheckForUpdate(pb.CheckForUpdateRequest())
    assert answer.current_version == version
    assert answer.latest_version == "0.2.0"
    assert answer.update_available is True
    assert answer.release_url == "https://github.com/spotify-devs/echostats/releases/tag/v0.2.0"
    assert answer.published_at == "2025-01-15T12:00:00Z"
    assert answer.release_notes.startswith("EchoStats v0.2.0")
    assert cached == answer
    # The second answer came from the cache: GitHub was asked once.
    assert len([path for path in github.requests if path.endswith("/releases/latest")]) == 1


async def test_unreachable_github_degrades_to_no_update(
    settings_factory: Any, serve_observability: Any
) -> None:
    version = unique_version()
    async with serve_observability(settings_factory(version=version)) as server:
        answer = await server.stub.CheckForUpdate(pb.CheckForUpdateRequest())
    assert answer.current_version == version
    assert answer.update_available is False
    assert not answer.HasField("latest_version") and not answer.HasField("release_url")
