"""User B never sees user A's data, on every user-scoped GET operation of the OpenAPI.

A is seeded with synced plays and an imported export (jobs of both kinds, Spotify calls in
the API log); B with plays of their own. Every user-scoped GET operation (the ones the
document lists with a session scheme) is called as A, which must show A's data where the
table says the route shows it (so the probe can fail), and as B, whose answer must carry
none of A's identifiers: user id, Spotify id, display name, play ids, job ids. Operations
with an id in the path are asked, as B, for A's id: 404.

The table is the point: an operation in the document that it does not list fails the test
with the message to add it, so routes merged later cannot slip through unchecked.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import pytest

from tests.hostile.conftest import seeded_user
from tests.hostile.support import bearer, fetch_openapi, operations
from tests.integration.test_imports import as_json, extended_row, upload, wait_for_import

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Probe:
    """How to ask one user-scoped GET operation for a user's data."""

    params: dict[str, str] = field(default_factory=dict)
    # Whether the owner's answer shows their identifiers (lists do; aggregates may not).
    shows_owner_data: bool = True
    # For operations with path parameters: A's id for each parameter, from A's seed data.
    owned_ids: Callable[[dict], dict[str, str]] | None = None


# Every user-scoped GET operation of the gateway. Add a row for each new one.
IDOR_TABLE: dict[str, Probe] = {
    "GET /api/v1/history": Probe(params={"limit": "100"}),
    "GET /api/v1/sync-jobs": Probe(params={"limit": "100"}),
    "GET /api/v1/sync-jobs/stats": Probe(shows_owner_data=False),
    "GET /api/v1/api-logs": Probe(params={"limit": "200"}, shows_owner_data=False),
    "GET /api/v1/api-logs/stats": Probe(shows_owner_data=False),
    # Proxied to Spotify with the caller's own token: nothing of ours to show, nothing of
    # A's may appear in B's answer.
    "GET /api/v1/player/current": Probe(shows_owner_data=False),
    "GET /api/v1/player/devices": Probe(shows_owner_data=False),
    "GET /api/v1/player/queue": Probe(shows_owner_data=False),
    "GET /api/v1/browse/new-releases": Probe(shows_owner_data=False),
    "GET /api/v1/browse/featured-playlists": Probe(shows_owner_data=False),
    "GET /api/v1/browse/categories": Probe(shows_owner_data=False),
    "GET /api/v1/library/followed-artists": Probe(shows_owner_data=False),
    "GET /api/v1/library/saved-albums": Probe(shows_owner_data=False),
    # Aggregates of the user's own plays (Spotify ids of tracks, not of users): A's user
    # id, plays and jobs never appear in B's answer.
    "GET /api/v1/analytics/overview": Probe(shows_owner_data=False),
    "GET /api/v1/analytics/trend": Probe(shows_owner_data=False),
    "GET /api/v1/analytics/rollup-status": Probe(shows_owner_data=False),
    "GET /api/v1/tracks/top": Probe(shows_owner_data=False),
    "GET /api/v1/artists/top": Probe(shows_owner_data=False),
    "GET /api/v1/albums/top": Probe(shows_owner_data=False),
    "GET /api/v1/genres/distribution": Probe(shows_owner_data=False),
    "GET /api/v1/recommendations": Probe(shows_owner_data=False),
    "GET /api/v1/playlists": Probe(shows_owner_data=False),
}


async def identifiers(client: httpx.AsyncClient, user: dict) -> set[str]:
    """Strings that belong to this user alone: ids, names, play and job ids."""
    headers = bearer(user["token"])
    status = (await client.get("/api/v1/auth/status", headers=headers)).json()
    markers = {status["user"]["id"], user["spotify_id"], user["display_name"]}
    history = await client.get("/api/v1/history", params={"limit": 100}, headers=headers)
    markers.update(item["id"] for item in history.json()["items"])
    jobs = await client.get("/api/v1/sync-jobs", params={"limit": 100}, headers=headers)
    markers.update(job["id"] for job in jobs.json()["items"])
    return markers


@pytest.fixture(scope="module")
async def owner_and_other(gateway_url, simulator_url):
    """A (synced and imported) and B (synced), each with their own client identity."""
    from tests.integration.support import TRUSTED_PROXY_ADDRESS, unique_client_address

    async def client() -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=gateway_url,
            transport=httpx.AsyncHTTPTransport(local_address=TRUSTED_PROXY_ADDRESS),
            headers={"X-Forwarded-For": unique_client_address()},
            timeout=60,
        )

    owner_client, other_client = await client(), await client()
    try:
        owner = await seeded_user(owner_client, simulator_url, "owner")
        other = await seeded_user(other_client, simulator_url, "other")
        uploaded = await upload(
            owner_client,
            owner["token"],
            "Streaming_History_Audio_2023_0.json",
            as_json([extended_row(index) for index in range(15)]),
        )
        assert uploaded.status_code == 200, uploaded.text
        job = await wait_for_import(owner_client, owner["token"], uploaded.json()["job_id"])
        assert job["status"] == "completed", job
        owner["import_job_id"] = job["id"]
        owner["markers"] = await identifiers(owner_client, owner)
        other["markers"] = await identifiers(other_client, other)
        yield owner_client, owner, other_client, other
    finally:
        await owner_client.aclose()
        await other_client.aclose()


def user_scoped_gets(gateway_url: str) -> dict[str, object]:
    return {
        op.label: op
        for op in operations(fetch_openapi(gateway_url))
        if op.method == "get" and op.needs_session
    }


def test_every_user_scoped_get_is_in_the_table(gateway_url):
    in_document = user_scoped_gets(gateway_url)
    missing = sorted(set(in_document) - set(IDOR_TABLE))
    assert not missing, (
        f"user-scoped operations without an IDOR probe: {missing}; add a row for each to "
        "IDOR_TABLE in tests/hostile/test_idor.py"
    )
    stale = sorted(set(IDOR_TABLE) - set(in_document))
    assert not stale, f"IDOR_TABLE lists operations the gateway no longer has: {stale}"


def leaked(body: object, markers: set[str]) -> list[str]:
    text = json.dumps(body)
    return sorted(marker for marker in markers if marker and marker in text)


@pytest.mark.parametrize("label", list(IDOR_TABLE))
async def test_user_b_never_sees_user_a(gateway_url, owner_and_other, label):
    owner_client, owner, other_client, other = owner_and_other
    operation = user_scoped_gets(gateway_url).get(label)
    if operation is None:
        pytest.fail(f"{label} is not in the document (see test_every_user_scoped_get_...)")
    probe = IDOR_TABLE[label]
    path = operation.path
    if operation.path_parameters:
        assert probe.owned_ids is not None, f"{label}: the probe needs owned_ids"
        for name, value in probe.owned_ids(owner).items():
            path = path.replace("{" + name + "}", value)

    as_owner = await owner_client.get(path, params=probe.params, headers=bearer(owner["token"]))
    assert as_owner.status_code == 200, (label, as_owner.text)
    if probe.shows_owner_data:
        assert leaked(as_owner.json(), owner["markers"]), f"{label} shows the owner nothing"

    as_other = await other_client.get(path, params=probe.params, headers=bearer(other["token"]))
    if operation.path_parameters:
        assert as_other.status_code == 404, (label, as_other.status_code, as_other.text)
        return
    assert as_other.status_code == 200, (label, as_other.text)
    assert not leaked(as_other.json(), owner["markers"]), f"{label} shows B data of A"
    if probe.shows_owner_data:
        # B's own data is there: the route answered for B, not with nothing.
        assert leaked(as_other.json(), other["markers"] - owner["markers"]), label
