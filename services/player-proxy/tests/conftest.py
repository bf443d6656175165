"""Fixtures for the player-proxy tests: the real gRPC server against an in-process simulator.

The service is built by its own `open_server(settings, port=0)` and called over a grpc.aio
channel from the kit, as the gateway calls it. Spotify is the project's simulator served
in-process over HTTP. Two collaborators are replaced, because they belong to other
services and have their own tests: tokens come from the simulator's control API
(`/_sim/tokens`, a fresh token on every forced refresh) instead of auth, and call records
are collected in memory instead of being shipped to observability.
Test modules cannot import this file (--import-mode=importlib): they get helpers through
fixtures and type them `Any`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from echostats.player_proxy.v1 import player_proxy_service_pb2 as pb
from echostats.player_proxy.v1 import player_proxy_service_pb2_grpc as pb_grpc
from echostats_grpc.client import create_channel
from echostats_spotify.recording import ApiCallRecord
from player_proxy_service.server import open_server
from player_proxy_service.settings import PlayerProxySettings
from spotify_simulator.in_process import serve_in_process

LOOPBACK = "127.0.0.1"
SIM_CLIENT_ID = "echostats-dev-client"
SIM_CLIENT_SECRET = "echostats-dev-secret"
RPC_TIMEOUT = 30.0


class SimulatorTokens:
    """TokenProvider minting simulator tokens; a forced refresh mints a new one."""

    def __init__(self, sim: httpx.AsyncClient) -> None:
        self._sim = sim
        self._tokens: dict[str, str] = {}
        self.refreshes: list[str] = []

    async def get_token(self, user_id: str, *, rejected_token: str | None = None) -> str:
        """The user's token (minted on first use and after a refusal)."""
        if rejected_token is not None:
            self.refreshes.append(user_id)
        if rejected_token is not None or user_id not in self._tokens:
            minted = await self._sim.post("/_sim/tokens", json={"user_id": user_id})
            assert minted.status_code == 201, minted.text
            self._tokens[user_id] = minted.json()["access_token"]
        return self._tokens[user_id]


@dataclass
class CollectingRecorder:
    """Keeps every call record (the service ships them to observability in production)."""

    records: list[ApiCallRecord] = field(default_factory=list)

    def record(self, rec: ApiCallRecord) -> None:
        """Keep one record."""
        self.records.append(rec)


@dataclass
class Harness:
    """The running service, a stub, the simulator's control client and what was recorded."""

    stub: pb_grpc.PlayerProxyServiceStub
    sim: httpx.AsyncClient
    tokens: SimulatorTokens
    recorder: CollectingRecorder
    pb: Any = pb

    async def add_user(self, product: str = "premium") -> str:
        """A fresh simulated Spotify user."""
        user_id = f"pp_{uuid.uuid4().hex[:10]}"
        created = await self.sim.post("/_sim/users", json={"id": user_id, "product": product})
        assert created.status_code == 201, created.text
        return user_id

    async def player(self, user_id: str) -> dict[str, Any]:
        """The simulator's ground truth for the user's player."""
        return (await self.sim.get("/_sim/player", params={"user_id": user_id})).json()


@pytest.fixture(scope="module")
async def module_harness() -> AsyncIterator[Harness]:
    """One simulator and one player-proxy server per test module."""
    async with (
        serve_in_process(client_id=SIM_CLIENT_ID, client_secret=SIM_CLIENT_SECRET) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as sim,
    ):
        settings = PlayerProxySettings(
            environment="development",
            spotify_api_url=url,
            spotify_accounts_url=url,
            grpc_host=LOOPBACK,
        )
        tokens = SimulatorTokens(sim)
        recorder = CollectingRecorder()
        async with open_server(settings, port=0, token_provider=tokens, recorder=recorder) as built:
            await built.start()
            channel = create_channel(f"{LOOPBACK}:{built.port}", default_timeout=RPC_TIMEOUT)
            try:
                yield Harness(pb_grpc.PlayerProxyServiceStub(channel), sim, tokens, recorder)
            finally:
                await channel.close()
                await built.stop(grace=1.0)


@pytest.fixture
async def harness(module_harness: Harness) -> AsyncIterator[Harness]:
    """The module's harness; the simulator is reset after each test."""
    yield module_harness
    await module_harness.sim.post("/_sim/reset")
