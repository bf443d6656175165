"""A client for the Spotify simulator's control API (`/_sim/...`), shared by the test suites.

Tests use it to create simulated users, play the browser at /authorize, append plays to a
user's feed and read the ground truth back, inject faults and latency, expire or revoke
tokens, switch the app's mode, and read the simulator's request log.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx


def query_of(url: str) -> dict[str, str]:
    """The query parameters of a URL, one value each."""
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


@dataclass
class SimulatorControl:
    """The running simulator: its base URL and a client for its control API."""

    url: str
    http: httpx.AsyncClient

    async def add_user(self, **fields: Any) -> str:
        """A fresh simulated Spotify user with no plays (so tests never share one); its id."""
        user_id = f"test_{uuid.uuid4().hex[:12]}"
        response = await self.http.post("/_sim/users", json={"id": user_id, **fields})
        assert response.status_code == 201, response.text
        return user_id

    async def authorize(self, authorize_url: str, *, sim_user: str) -> dict[str, str]:
        """Play the browser at /authorize; returns the query of the redirect back to us."""
        # Appended by hand: httpx's `params=` would replace the URL's own query.
        response = await self.http.get(f"{authorize_url}&sim_user={sim_user}")
        assert response.status_code == 302, response.text
        return query_of(response.headers["location"])

    async def add_plays(
        self, user_id: str, count: int, *, spacing_seconds: float | None = None
    ) -> list[dict[str, Any]]:
        """Append `count` plays to the user's feed (ending now); returns them."""
        body: dict[str, Any] = {"user_id": user_id, "count": count}
        if spacing_seconds is not None:
            body["spacing_seconds"] = spacing_seconds
        response = await self.http.post("/_sim/plays", json=body)
        assert response.status_code in (200, 201), response.text
        return list(response.json()["plays"])

    async def plays(self, user_id: str) -> list[dict[str, Any]]:
        """The ground truth: every play in the user's feed, oldest first."""
        response = await self.http.get("/_sim/plays", params={"user_id": user_id})
        response.raise_for_status()
        return list(response.json()["plays"])

    async def requests(self, path_prefix: str, *, user_id: str | None = None) -> list[dict]:
        """Requests the simulator served under `path_prefix` (optionally for one user)."""
        params = {"path_prefix": path_prefix}
        if user_id:
            params["user_id"] = user_id
        response = await self.http.get("/_sim/requests", params=params)
        response.raise_for_status()
        return list(response.json()["requests"])

    async def token_requests(self) -> int:
        """How many POST /api/token (code exchanges and refreshes) it has served."""
        response = await self.http.get(
            "/_sim/requests", params={"path_prefix": "/api/token", "method": "POST"}
        )
        response.raise_for_status()
        return int(response.json()["count"])

    async def fault(self, **fields: Any) -> str:
        """Inject a fault (see the simulator README); returns its id."""
        response = await self.http.post("/_sim/faults", json=fields)
        assert response.status_code == 201, response.text
        return str(response.json().get("id", ""))

    async def clear_faults(self) -> None:
        """Disarm every fault."""
        (await self.http.delete("/_sim/faults")).raise_for_status()

    async def latency(self, path_prefix: str, ms: int) -> None:
        """Delay matching requests by `ms` (0 removes the rule)."""
        response = await self.http.put("/_sim/latency", json={"path_prefix": path_prefix, "ms": ms})
        response.raise_for_status()

    async def expire_tokens(self, user_id: str) -> int:
        """Make the user's current access tokens answer 401 expired."""
        response = await self.http.post("/_sim/tokens/expire", json={"user_id": user_id})
        response.raise_for_status()
        return int(response.json()["expired"])

    async def revoke_refresh_tokens(self, user_id: str) -> int:
        """Revoke the user's refresh tokens at Spotify (the user removed the app)."""
        response = await self.http.post("/_sim/tokens/revoke", json={"user_id": user_id})
        response.raise_for_status()
        return int(response.json()["revoked"])

    async def set_mode(self, mode: str) -> None:
        """Switch the app between "extended" and "development"."""
        (await self.http.put("/_sim/mode", json={"mode": mode})).raise_for_status()

    async def clear_requests(self) -> None:
        """Empty the request log."""
        (await self.http.delete("/_sim/requests")).raise_for_status()

    async def catalog_sample(self, count: int) -> dict[str, list[str]]:
        """Sample ids of the simulator's catalog."""
        response = await self.http.get("/_sim/catalog", params={"sample": count})
        response.raise_for_status()
        return dict(response.json()["sample"])

    async def me(self, access_token: str) -> httpx.Response:
        """GET /v1/me with an access token, to prove the token is real."""
        return await self.http.get("/v1/me", headers={"Authorization": f"Bearer {access_token}"})
