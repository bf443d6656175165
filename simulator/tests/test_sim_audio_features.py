"""GET /v1/audio-features (batch and single): shapes, limits, unknown ids, dev-mode 403."""

from __future__ import annotations

import pytest

BATCH = "/v1/audio-features"
UNKNOWN = "0000000000000000000000"


@pytest.fixture
async def alice(headers_for) -> dict[str, str]:
    """sim_alice's Bearer header with every scope."""
    return await headers_for("sim_alice")


@pytest.fixture
def track_ids(app) -> list[str]:
    """The first 150 catalog track ids."""
    return list(app.state.sim.catalog.tracks)[:150]


async def test_batch_with_unknown_ids_as_nulls(client, alice, track_ids, app) -> None:
    ids = [track_ids[0], UNKNOWN, track_ids[1]]
    response = await client.get(BATCH, params={"ids": ",".join(ids)}, headers=alice)
    assert response.status_code == 200
    features = response.json()["audio_features"]
    assert features[1] is None
    assert [f["id"] for f in (features[0], features[2])] == [track_ids[0], track_ids[1]]
    first = features[0]
    assert set(first) == {
        "acousticness", "analysis_url", "danceability", "duration_ms", "energy", "id",
        "instrumentalness", "key", "liveness", "loudness", "mode", "speechiness", "tempo",
        "time_signature", "track_href", "type", "uri", "valence",
    }  # fmt: skip
    expected = app.state.sim.catalog.audio_features[track_ids[0]]
    assert first["energy"] == expected.energy and first["tempo"] == expected.tempo
    assert first["type"] == "audio_features"
    assert first["track_href"] == f"http://127.0.0.1:8090/v1/tracks/{track_ids[0]}"


async def test_batch_limits(client, alice, track_ids) -> None:
    hundred = await client.get(BATCH, params={"ids": ",".join(track_ids[:100])}, headers=alice)
    assert hundred.status_code == 200 and len(hundred.json()["audio_features"]) == 100
    too_many = await client.get(BATCH, params={"ids": ",".join(track_ids[:101])}, headers=alice)
    assert too_many.status_code == 400
    assert too_many.json() == {"error": {"status": 400, "message": "too many ids requested"}}
    malformed = await client.get(BATCH, params={"ids": "not-an-id"}, headers=alice)
    assert malformed.json() == {"error": {"status": 400, "message": "invalid id"}}
    missing = await client.get(BATCH, headers=alice)
    assert missing.json() == {"error": {"status": 400, "message": "Invalid ids"}}


async def test_single(client, alice, track_ids) -> None:
    one = await client.get(f"{BATCH}/{track_ids[5]}", headers=alice)
    assert one.status_code == 200 and one.json()["id"] == track_ids[5]
    unknown = await client.get(f"{BATCH}/{UNKNOWN}", headers=alice)
    assert unknown.status_code == 404
    malformed = await client.get(f"{BATCH}/nope", headers=alice)
    assert malformed.status_code == 400


async def test_no_scope_needed(client, headers_for, track_ids) -> None:
    bare = await headers_for("sim_bob", scope="")
    assert (await client.get(f"{BATCH}/{track_ids[0]}", headers=bare)).status_code == 200


async def test_closed_in_development_mode_with_bare_403(client, alice, track_ids) -> None:
    await client.put("/_sim/mode", json={"mode": "development"})
    for url in (f"{BATCH}?ids={track_ids[0]}", f"{BATCH}/{track_ids[0]}"):
        response = await client.get(url, headers=alice)
        assert response.status_code == 403
        assert response.json() == {"error": {"status": 403}}  # no message, as observed
    # Authentication still comes first.
    assert (await client.get(f"{BATCH}/{track_ids[0]}")).status_code == 401
