"""The ground-truth play log and its control API: /_sim/plays, /_sim/recent-window, reset."""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import pairwise

import httpx

from echostats_synthetic import generate_history, listener_seed
from echostats_synthetic.history import from_epoch_ms
from spotify_simulator import SimulatorConfig, create_app
from spotify_simulator.play_log import PlayLog

END = "2026-04-20T10:00:00.123Z"
END_MS = 1_776_679_200_123


def ms_of(iso: str) -> int:
    """Unix ms of an ISO `...Z` timestamp."""
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000 + 0.5)


async def test_seeded_users_start_with_a_recent_history(client) -> None:
    clock = (await client.get("/_sim/clock")).json()
    now_ms = int(clock["now"] * 1000)
    for user_id in ("sim_alice", "sim_bob", "demo_user"):
        truth = (await client.get("/_sim/plays", params={"user_id": user_id})).json()
        assert truth["count"] == 30 == len(truth["plays"])
        stamps = [ms_of(p["played_at"]) for p in truth["plays"]]
        assert stamps == sorted(set(stamps))
        assert now_ms - 7 * 86_400_000 < stamps[0] and stamps[-1] <= now_ms
        assert all(p["ms_played"] >= 30_000 for p in truth["plays"])
        assert set(truth["plays"][0]) == {"track_id", "played_at", "ms_played", "context_uri"}
    alice = (await client.get("/_sim/plays", params={"user_id": "sim_alice"})).json()
    bob = (await client.get("/_sim/plays", params={"user_id": "sim_bob"})).json()
    assert [p["track_id"] for p in alice["plays"]] != [p["track_id"] for p in bob["plays"]]


def test_seeding_is_deterministic_for_a_moment(app) -> None:
    catalog = app.state.sim.catalog
    first = PlayLog(catalog).seed_plays("sim_alice", now_ms=END_MS, count=30)
    again = PlayLog(catalog).seed_plays("sim_alice", now_ms=END_MS, count=30)
    assert first == again and len(first) == 30
    assert first[-1].played_at_ms < END_MS
    # A later moment shows the same history, moved on: older plays are shared.
    later = PlayLog(catalog).seed_plays("sim_alice", now_ms=END_MS + 3_600_000, count=30)
    shared = {p.played_at_ms for p in first} & {p.played_at_ms for p in later}
    assert shared and all(p in first for p in later if p.played_at_ms in shared)


def test_seeded_plays_match_the_users_synthetic_history(app) -> None:
    # What ingestion imports for demo_user (same seed, catalog and defaults) holds the
    # simulator's seeded plays, so a live sync on top of an import finds no strangers.
    catalog = app.state.sim.catalog
    seeded = PlayLog(catalog).seed_plays("demo_user", now_ms=END_MS, count=30)
    end = from_epoch_ms(END_MS)
    history = generate_history(
        catalog, seed=listener_seed("demo_user"), start=end - timedelta(days=30), end=end
    )
    listed = [(p.track.id, p.played_at_ms) for p in history if p.ms_played >= 30_000]
    assert [(p.track_id, p.played_at_ms) for p in seeded] == listed[-30:]


async def test_append_back_to_back_ending_at_end(client) -> None:
    response = await client.post("/_sim/plays", json={"user_id": "sim_bob", "count": 5, "end": END})
    assert response.status_code == 201
    body = response.json()
    assert body["count"] == 5
    plays = body["plays"]
    assert plays[-1]["played_at"] == END
    stamps = [ms_of(p["played_at"]) for p in plays]
    for before, after, play in zip(stamps, stamps[1:], plays[1:], strict=False):
        # Each play lasts its whole track and starts when the previous one ended.
        assert after - before == play["ms_played"]
    catalog = (await client.get("/_sim/catalog", params={"sample": 0})).json()
    assert catalog["counts"]["tracks"] == 10_000


async def test_append_with_spacing(client) -> None:
    plays = (
        await client.post(
            "/_sim/plays",
            json={"user_id": "sim_bob", "count": 4, "end": END, "spacing_seconds": 10},
        )
    ).json()["plays"]
    stamps = [ms_of(p["played_at"]) for p in plays]
    assert [b - a for a, b in pairwise(stamps)] == [10_000] * 3
    assert all(p["ms_played"] == 10_000 for p in plays)  # cut short by the next play
    long = (
        await client.post(
            "/_sim/plays",
            json={
                "user_id": "sim_bob",
                "count": 2,
                "end": "2026-04-21T10:00:00Z",
                "spacing_seconds": 3600,
            },
        )
    ).json()["plays"]
    assert all(30_000 < p["ms_played"] < 3_600_000 for p in long)  # whole tracks


async def test_default_end_never_overlaps_the_log(client) -> None:
    truth = (await client.get("/_sim/plays", params={"user_id": "sim_alice"})).json()
    newest = ms_of(truth["plays"][-1]["played_at"])
    now_ms = int((await client.get("/_sim/clock")).json()["now"] * 1000)
    plays = (await client.post("/_sim/plays", json={"user_id": "sim_alice", "count": 40})).json()[
        "plays"
    ]
    first_start = ms_of(plays[0]["played_at"]) - plays[0]["ms_played"]
    assert first_start > newest
    assert ms_of(plays[-1]["played_at"]) >= now_ms
    after = (await client.get("/_sim/plays", params={"user_id": "sim_alice"})).json()
    assert after["count"] == 70
    assert after["plays"][-40:] == plays


async def test_naive_end_is_utc_and_collisions_are_refused(client) -> None:
    naive = await client.post(
        "/_sim/plays", json={"user_id": "sim_bob", "count": 1, "end": "2026-04-20T10:00:00.123"}
    )
    assert naive.json()["plays"][0]["played_at"] == END
    clash = await client.post("/_sim/plays", json={"user_id": "sim_bob", "count": 1, "end": END})
    assert clash.status_code == 409


async def test_appended_plays_are_deterministic_however_batched(client) -> None:
    await client.delete("/_sim/plays", params={"user_id": "sim_bob"})
    whole = await client.post(
        "/_sim/plays", json={"user_id": "sim_bob", "count": 12, "end": END, "spacing_seconds": 60}
    )
    await client.delete("/_sim/plays", params={"user_id": "sim_bob"})
    head = await client.post(
        "/_sim/plays",
        json={
            "user_id": "sim_bob",
            "count": 5,
            "end": "2026-04-20T09:53:00.123Z",
            "spacing_seconds": 60,
        },
    )
    tail = await client.post(
        "/_sim/plays", json={"user_id": "sim_bob", "count": 7, "end": END, "spacing_seconds": 60}
    )
    assert whole.json()["plays"] == head.json()["plays"] + tail.json()["plays"]
    # A second simulator makes the same plays.
    other = create_app(SimulatorConfig())
    transport = httpx.ASGITransport(app=other)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as second:
        await second.delete("/_sim/plays", params={"user_id": "sim_bob"})
        again = await second.post(
            "/_sim/plays",
            json={"user_id": "sim_bob", "count": 12, "end": END, "spacing_seconds": 60},
        )
    assert again.json() == whole.json()


async def test_get_and_delete(client) -> None:
    assert (await client.get("/_sim/plays")).status_code == 422  # user_id is required
    assert (await client.get("/_sim/plays", params={"user_id": "nobody"})).status_code == 404
    cleared = await client.delete("/_sim/plays", params={"user_id": "sim_alice"})
    assert cleared.json() == {"cleared": 30}
    empty = (await client.get("/_sim/plays", params={"user_id": "sim_alice"})).json()
    assert empty == {"user_id": "sim_alice", "count": 0, "plays": []}
    assert (await client.delete("/_sim/plays")).json() == {"cleared": 60}
    bob = (await client.get("/_sim/plays", params={"user_id": "sim_bob"})).json()
    assert bob["count"] == 0


async def test_validation(client) -> None:
    for body in (
        {"user_id": "sim_alice", "count": 0},
        {"user_id": "sim_alice", "count": 10_001},
        {"user_id": "sim_alice", "spacing_seconds": 0},
        {"user_id": "sim_alice", "surprise": 1},
        {"count": 1},
    ):
        assert (await client.post("/_sim/plays", json=body)).status_code == 422, body
    unknown = await client.post("/_sim/plays", json={"user_id": "nobody"})
    assert unknown.status_code == 404


async def test_new_users_start_empty_and_can_get_plays(client) -> None:
    await client.post("/_sim/users", json={"id": "sim_carol"})
    truth = (await client.get("/_sim/plays", params={"user_id": "sim_carol"})).json()
    assert truth["count"] == 0
    added = await client.post("/_sim/plays", json={"user_id": "sim_carol", "count": 3})
    assert added.json()["count"] == 3


async def test_reset_restores_the_seeded_logs_and_window(client) -> None:
    before = (await client.get("/_sim/plays", params={"user_id": "sim_alice"})).json()
    await client.post("/_sim/plays", json={"user_id": "sim_alice", "count": 10})
    await client.delete("/_sim/plays", params={"user_id": "sim_bob"})
    await client.put("/_sim/recent-window", json={"recent_window": 50})
    await client.post("/_sim/users", json={"id": "sim_carol"})
    await client.post("/_sim/plays", json={"user_id": "sim_carol", "count": 3})

    await client.post("/_sim/reset")

    after = (await client.get("/_sim/plays", params={"user_id": "sim_alice"})).json()
    # The seeded history is a function of time: it only moves if a synthetic play ended
    # in the few milliseconds between the two reads.
    assert after["count"] == 30
    assert sum(p in before["plays"] for p in after["plays"]) >= 29
    assert (await client.get("/_sim/plays", params={"user_id": "sim_bob"})).json()["count"] == 30
    assert (await client.get("/_sim/recent-window")).json() == {"recent_window": None}
    gone = await client.get("/_sim/plays", params={"user_id": "sim_carol"})
    assert gone.status_code == 404


async def test_recent_window_control(client) -> None:
    assert (await client.get("/_sim/recent-window")).json() == {"recent_window": None}
    put = await client.put("/_sim/recent-window", json={"recent_window": 50})
    assert put.json() == {"recent_window": 50}
    assert (await client.put("/_sim/recent-window", json={"recent_window": 0})).status_code == 422
    lifted = await client.put("/_sim/recent-window", json={"recent_window": None})
    assert lifted.json() == {"recent_window": None}


def test_seeded_plays_config() -> None:
    app = create_app(SimulatorConfig(seeded_plays=0, recent_window=50))
    state = app.state.sim
    assert state.plays.plays("sim_alice") == []
    assert state.plays.recent_window == 50
