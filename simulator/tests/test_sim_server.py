"""The real thing: `python -m spotify_simulator --port 0` over a loopback socket."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from urllib.parse import parse_qs, urlsplit

import httpx


async def test_cli_server_serves_over_socket_and_stops_on_sigterm(tmp_path, sim) -> None:
    env = {**os.environ, "SIMULATOR_LOG_LEVEL": "warning", "SIMULATOR_MODE": "development"}
    stderr_path = tmp_path / "stderr.txt"
    with stderr_path.open("wb") as stderr:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "spotify_simulator", "--host", "127.0.0.1", "--port", "0",
            stdout=asyncio.subprocess.PIPE, stderr=stderr, env=env,
        )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), timeout=30)).decode()
        match = re.fullmatch(r"spotify-simulator listening on (http://127\.0\.0\.1:(\d+))\n", line)
        assert match, (line, stderr_path.read_text())
        base, port = match.group(1), int(match.group(2))
        assert port > 0

        verifier, challenge = sim.pkce_pair()
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            health = await client.get("/_sim/health")
            assert health.json()["mode"] == "development"  # read from SIMULATOR_MODE
            authorize = await client.get(
                "/authorize",
                params={
                    "client_id": "echostats-dev-client",
                    "response_type": "code",
                    "redirect_uri": "http://127.0.0.1:8000/cb",
                    "state": "abc",
                    "scope": "user-read-private user-read-email",
                    "code_challenge_method": "S256",
                    "code_challenge": challenge,
                    "sim_user": "sim_bob",
                },
            )
            assert authorize.status_code == 302
            code = parse_qs(urlsplit(authorize.headers["location"]).query)["code"][0]
            token = await client.post(
                "/api/token",
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": "http://127.0.0.1:8000/cb",
                    "client_id": "echostats-dev-client",
                    "code_verifier": verifier,
                },
            )
            assert token.status_code == 200, token.text
            me = await client.get(
                "/v1/me", headers={"Authorization": f"Bearer {token.json()['access_token']}"}
            )
            assert me.status_code == 200
            assert me.json()["id"] == "sim_bob"
            assert "email" not in me.json()  # development mode
            assert me.json()["href"] == f"{base}/v1/users/sim_bob"  # links point back here
            await client.post(
                "/_sim/faults", json={"path_prefix": "/v1/me", "status": 429, "retry_after": 3}
            )
            limited = await client.get("/v1/me", headers={"Authorization": "Bearer x"})
            assert limited.status_code == 429 and limited.headers["retry-after"] == "3"
            log = (await client.get("/_sim/requests")).json()
            assert [r["status"] for r in log["requests"]] == [302, 200, 200, 429]

        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), timeout=15) == 0, stderr_path.read_text()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
