"""Privacy-export imports end to end: POST /history/import → ingestion → import job → history."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from echostats_synthetic import generate_catalog
from tests.integration.support import sign_in
from tests.integration.test_sync_and_history import (
    bearer,
    ground_truth,
    new_spotify_user,
    wait_for_idle,
)

pytestmark = pytest.mark.integration

IMPORT = "/api/v1/history/import"
EPOCH = datetime(2023, 3, 1, 12, 0, tzinfo=UTC)
EXTENDED_DIR = "Spotify Extended Streaming History"


def extended_row(index: int, *, endsong: bool = False, at: datetime | None = None) -> dict:
    """One music row of the extended history; `index` picks the track and a distinct minute."""
    catalog = generate_catalog()
    track = list(catalog.tracks.values())[index % 500]
    ended = at or EPOCH + timedelta(minutes=5 * index)
    row = {
        "ts": ended.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "platform": "android",
        "ms_played": 180_000,
        "conn_country": "DE",
        "ip_addr": "192.0.2.1",
        "master_metadata_track_name": track.name,
        "master_metadata_album_artist_name": catalog.artists[track.artist_ids[0]].name,
        "master_metadata_album_album_name": catalog.albums[track.album_id].name,
        "spotify_track_uri": f"spotify:track:{track.id}",
        "episode_name": None,
        "episode_show_name": None,
        "spotify_episode_uri": None,
        "reason_start": "trackdone",
        "reason_end": "trackdone",
        "shuffle": False,
        "skipped": False,
        "offline": False,
        "offline_timestamp": None,
        "incognito_mode": False,
    }
    if endsong:
        row["username"] = "someone"
        row["user_agent_decrypted"] = None
    return row


def account_row(index: int) -> dict:
    """One music row of the account data (minute precision, names only)."""
    row = extended_row(index)
    ended = EPOCH + timedelta(minutes=5 * index)
    return {
        "endTime": ended.strftime("%Y-%m-%d %H:%M"),
        "artistName": row["master_metadata_album_artist_name"],
        "trackName": row["master_metadata_track_name"],
        "msPlayed": row["ms_played"],
    }


def as_json(rows: list[dict]) -> bytes:
    return json.dumps(rows).encode()


def export_zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


async def upload(
    client: httpx.AsyncClient, token: str, filename: str, content: bytes, content_type: str = ""
) -> httpx.Response:
    """POST one file as the multipart `file` field."""
    return await client.post(
        IMPORT,
        files={"file": (filename, content, content_type or "application/octet-stream")},
        headers=bearer(token),
        timeout=120,
    )


async def import_jobs(client: httpx.AsyncClient, token: str) -> list[dict]:
    """The user's import jobs; a long poll honours the rate limit's Retry-After like a client."""
    for _ in range(5):
        response = await client.get(
            "/api/v1/sync-jobs", params={"job_type": "import", "limit": 100}, headers=bearer(token)
        )
        if response.status_code != 429:
            break
        await asyncio.sleep(int(response.headers["retry-after"]))
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def wait_for_import(
    client: httpx.AsyncClient, token: str, job_id: str, timeout: float = 120.0
) -> dict:
    """Poll the import jobs until this one has ended; returns it."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        job = next((j for j in await import_jobs(client, token) if j["id"] == job_id), None)
        if job and job["status"] in ("completed", "failed"):
            return job
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"import {job_id} did not finish: {job}")
        await asyncio.sleep(0.5)


async def import_and_wait(
    client: httpx.AsyncClient, token: str, filename: str, content: bytes
) -> dict:
    """Upload, expect a started job, wait for it to complete; returns the job."""
    response = await upload(client, token, filename, content)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "pending", body
    assert body["items_processed"] == 0
    job = await wait_for_import(client, token, body["job_id"])
    assert job["status"] == "completed", job
    return job


async def history_total(client: httpx.AsyncClient, token: str) -> int:
    response = await client.get("/api/v1/history", params={"limit": 1}, headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.json()["total"]


@pytest.fixture
async def user(client, simulator, simulator_url) -> str:
    """A signed-in user with no plays whose initial sync has finished; the session token."""
    spotify_id = await new_spotify_user(simulator)
    token = await sign_in(client, simulator_url, sim_user=spotify_id)
    await wait_for_idle(client, token)
    assert await history_total(client, token) == 0
    return token


@pytest.mark.parametrize(
    ("filename", "content", "count"),
    [
        (
            "Streaming_History_Audio_2023_0.json",
            as_json([extended_row(i) for i in range(30)]),
            30,
        ),
        ("endsong_0.json", as_json([extended_row(i, endsong=True) for i in range(25)]), 25),
        ("StreamingHistory_music_0.json", as_json([account_row(i) for i in range(20)]), 20),
    ],
    ids=["extended", "endsong", "account-data"],
)
async def test_each_format_is_imported(client, user, filename, content, count):
    response = await upload(client, user, filename, content, "application/json")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"job_id", "status", "items_processed", "items_total"}
    assert body["status"] == "pending"
    assert body["items_total"] == count
    job = await wait_for_import(client, user, body["job_id"])
    assert job["status"] == "completed", job
    assert job["items_processed"] == count
    assert await history_total(client, user) == count


async def test_export_zip_reads_only_the_audio_history(client, user):
    content = export_zip(
        {
            f"{EXTENDED_DIR}/Streaming_History_Audio_2023_0.json": as_json(
                [extended_row(i) for i in range(40)]
            ),
            f"{EXTENDED_DIR}/Streaming_History_Audio_2023-2024_1.json": as_json(
                [extended_row(i) for i in range(40, 70)]
            ),
            f"{EXTENDED_DIR}/Streaming_History_Video_2023.json": as_json([{"ts": "x"}]),
            f"{EXTENDED_DIR}/ReadMeFirst_ExtendedStreamingHistory.pdf": b"%PDF-1.4 not really",
        }
    )
    await import_and_wait(client, user, "my_spotify_data.zip", content)
    assert await history_total(client, user) == 70


async def test_reimporting_three_times_adds_nothing(client, user):
    content = as_json([extended_row(i) for i in range(35)])
    for _ in range(3):
        await import_and_wait(client, user, "Streaming_History_Audio_2023_0.json", content)
        assert await history_total(client, user) == 35


async def test_overlapping_files_add_only_what_is_new(client, user):
    first = as_json([extended_row(i) for i in range(40)])
    second = as_json([extended_row(i) for i in range(20, 60)])
    await import_and_wait(client, user, "Streaming_History_Audio_2023_0.json", first)
    await import_and_wait(client, user, "Streaming_History_Audio_2023_1.json", second)
    assert await history_total(client, user) == 60


async def test_plays_from_live_sync_are_stored_once(client, simulator, simulator_url):
    spotify_id = await new_spotify_user(simulator)
    added = await simulator.post("/_sim/plays", json={"user_id": spotify_id, "count": 15})
    assert added.status_code == 201, added.text
    token = await sign_in(client, simulator_url, sim_user=spotify_id)
    await wait_for_idle(client, token)
    assert await history_total(client, token) == 15
    # Track names are what the export carries; the synced history has them per track id.
    history = (
        await client.get("/api/v1/history", params={"limit": 100}, headers=bearer(token))
    ).json()["items"]
    names = {item["track"]["spotify_id"]: item["track"] for item in history}
    rows = []
    for play in await ground_truth(simulator, spotify_id):
        track = names[play["track_id"]]
        ended = datetime.fromisoformat(play["played_at"].replace("Z", "+00:00"))
        row = extended_row(0, at=ended)
        row.update(
            ms_played=play["ms_played"],
            master_metadata_track_name=track["name"],
            master_metadata_album_artist_name=track["artist_name"],
            master_metadata_album_album_name=track["album_name"],
            spotify_track_uri=f"spotify:track:{play['track_id']}",
        )
        rows.append(row)
    # Five plays live sync never saw, long before the synced ones.
    rows += [extended_row(i) for i in range(5)]
    await import_and_wait(client, token, "Streaming_History_Audio_2024_0.json", as_json(rows))
    assert await history_total(client, token) == 20


def zip_slip() -> bytes:
    return export_zip(
        {f"../../{EXTENDED_DIR}/Streaming_History_Audio_2023_0.json": as_json([extended_row(0)])}
    )


def zip_bomb() -> bytes:
    """A small zip whose one history file inflates past the 512 MiB upload limit."""
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive,
        archive.open(f"{EXTENDED_DIR}/Streaming_History_Audio_2023_0.json", "w") as member,
    ):
        member.write(b"[")
        block = b" " * (1024 * 1024)
        for _ in range(600):
            member.write(block)
        member.write(b"]")
    return buffer.getvalue()


BAD_INPUTS = {
    "not-json": ("Streaming_History_Audio_2023_0.json", lambda: b"this is not json {", 400),
    "wrong-shape": ("Streaming_History_Audio_2023_0.json", lambda: b'{"ts": "2023"}', 400),
    "no-usable-rows": ("Streaming_History_Audio_2023_0.json", lambda: b'[{"foo": 1}]', 400),
    "empty-file": ("Streaming_History_Audio_2023_0.json", lambda: b"", 400),
    "text-file": ("notes.txt", lambda: b"hello", 415),
    "png-file": ("cover.png", lambda: b"\x89PNG\r\n\x1a\n" + b"\0" * 64, 415),
    "zip-slip": ("my_spotify_data.zip", zip_slip, 400),
    "zip-bomb": ("my_spotify_data.zip", zip_bomb, 400),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
async def test_bad_input_is_refused_and_stores_nothing(client, user, case):
    filename, build, status = BAD_INPUTS[case]
    before = await import_jobs(client, user)
    response = await upload(client, user, filename, build())
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail
    await asyncio.sleep(1)
    assert await history_total(client, user) == 0
    # No import job may complete from it (a started job that fails cleanly is allowed only
    # when the refusal came later; here the upload itself is refused, so nothing new runs).
    after = await import_jobs(client, user)
    assert [j for j in after if j["status"] == "completed"] == [
        j for j in before if j["status"] == "completed"
    ]


async def test_over_the_size_limit_is_413(stack, make_client, simulator, simulator_url):
    small_gateway = stack.start_extra_gateway({"ECHOSTATS_IMPORT_MAX_BYTES": "1000"})
    client = make_client(base_url=small_gateway)
    spotify_id = await new_spotify_user(simulator)
    token = await sign_in(client, simulator_url, sim_user=spotify_id)
    await wait_for_idle(client, token)
    content = as_json([extended_row(i) for i in range(20)])
    assert len(content) > 1000
    response = await upload(client, token, "Streaming_History_Audio_2023_0.json", content)
    assert response.status_code == 413, response.text
    assert "limit" in response.json()["detail"]
    assert await history_total(client, token) == 0
    assert await import_jobs(client, token) == []


async def test_not_multipart_and_missing_file(client, user):
    response = await client.post(
        IMPORT, content=b"[]", headers={**bearer(user), "Content-Type": "application/json"}
    )
    assert response.status_code == 415
    response = await client.post(IMPORT, files={"other": ("a.json", b"[]")}, headers=bearer(user))
    assert response.status_code == 422
    assert response.json() == {
        "detail": [{"loc": ["body", "file"], "msg": "Field required", "type": "missing"}]
    }


async def test_import_requires_sign_in(client):
    response = await client.post(IMPORT, files={"file": ("a.json", b"[]")})
    assert response.status_code == 401
    assert response.json() == {"detail": "Not authenticated"}


def big_export(rows: int) -> bytes:
    """An extended-history file of `rows` distinct plays, one a minute."""
    return as_json([extended_row(i % 500, at=EPOCH + timedelta(minutes=i)) for i in range(rows)])


async def test_progress_is_visible_while_running(client, user):
    rows = 20_000  # four batches of the worker's default 5,000
    response = await upload(client, user, "Streaming_History_Audio_2023_0.json", big_export(rows))
    assert response.status_code == 200, response.text
    job_id = response.json()["job_id"]
    seen: set[int] = set()
    deadline = asyncio.get_running_loop().time() + 300
    while True:
        job = next(j for j in await import_jobs(client, user) if j["id"] == job_id)
        seen.add(job["items_processed"])
        if job["status"] in ("completed", "failed"):
            break
        assert asyncio.get_running_loop().time() < deadline, job
        await asyncio.sleep(0.25)  # stays inside this client's 100 requests a minute
    assert job["status"] == "completed", job
    assert job["items_processed"] == rows
    assert any(0 < value < rows for value in seen), sorted(seen)


async def test_another_users_import_never_shows(client, make_client, simulator, simulator_url):
    owner_id = await new_spotify_user(simulator)
    owner = await sign_in(client, simulator_url, sim_user=owner_id)
    other_client = make_client()
    other_id = await new_spotify_user(simulator)
    other = await sign_in(other_client, simulator_url, sim_user=other_id)
    await wait_for_idle(client, owner)
    await wait_for_idle(other_client, other)
    content = as_json([extended_row(i) for i in range(25)])
    await import_and_wait(client, owner, "Streaming_History_Audio_2023_0.json", content)
    assert await history_total(client, owner) == 25
    assert await history_total(other_client, other) == 0
    assert await import_jobs(other_client, other) == []


@pytest.mark.disruptive
async def test_worker_killed_mid_import_leaves_no_duplicates(client, user, stack):
    rows = 20_000
    content = big_export(rows)
    response = await upload(client, user, "Streaming_History_Audio_2023_0.json", content)
    assert response.status_code == 200, response.text
    job_id = response.json()["job_id"]
    # Kill the worker once it is inside the job.
    deadline = asyncio.get_running_loop().time() + 120
    while True:
        job = next(j for j in await import_jobs(client, user) if j["id"] == job_id)
        if job["status"] == "running" or job["items_processed"] > 0:
            break
        assert job["status"] != "completed", "the import finished before it could be killed"
        assert asyncio.get_running_loop().time() < deadline, job
        await asyncio.sleep(0.1)
    stack.kill_component("ingestion-worker")
    stack.start_component("ingestion-worker")
    job = await wait_for_import(client, user, job_id, timeout=300)
    total = await history_total(client, user)
    if job["status"] == "completed":
        assert total == rows, job
    else:
        assert job["error_message"], job
        assert total <= rows
    # Whatever happened, importing again converges on exactly one copy of every play.
    await import_and_wait(client, user, "Streaming_History_Audio_2023_0.json", content)
    assert await history_total(client, user) == rows
