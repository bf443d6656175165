"""PlayerProxyService over gRPC against the simulator: shapes, commands, refusals, closures."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from echostats_grpc.client import error_reason, error_retry_after


async def rpc_error(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


async def start_album(h: Any, user_id: str) -> dict[str, Any]:
    """Play an album with at least four tracks on the user's first device; returns truth."""
    token = await h.tokens.get_token(user_id)
    releases = (
        await h.sim.get(
            "/v1/browse/new-releases",
            params={"limit": 50},
            headers={"Authorization": f"Bearer {token}"},
        )
    ).json()["albums"]["items"]
    album = next(a for a in releases if a["total_tracks"] >= 4)
    device = (await h.player(user_id))["devices"][0]["id"]
    await h.stub.StartPlayback(
        h.pb.StartPlaybackRequest(
            user_id=user_id, device_id=device, context_uri=f"spotify:album:{album['id']}"
        )
    )
    return await h.player(user_id)


async def test_idle_playback_is_absent_and_devices_listed(harness) -> None:
    h = harness
    user = await h.add_user()
    playback = await h.stub.GetPlayback(h.pb.GetPlaybackRequest(user_id=user))
    assert not playback.HasField("playback")
    devices = await h.stub.ListDevices(h.pb.ListDevicesRequest(user_id=user))
    truth = (await h.player(user))["devices"]
    assert [d.id for d in devices.devices] == [d["id"] for d in truth]
    assert [d.volume_percent for d in devices.devices] == [d["volume_percent"] for d in truth]


async def test_commands_change_the_simulated_player(harness) -> None:
    h = harness
    user = await h.add_user()
    state = await start_album(h, user)
    assert state["is_playing"] and state["index"] == 0
    now = (await h.stub.GetPlayback(h.pb.GetPlaybackRequest(user_id=user))).playback
    assert now.is_playing and now.track_id == state["track_ids"][0] and now.device
    assert now.HasField("album_image") and now.duration_ms > 0

    result = await h.stub.SkipToNext(h.pb.SkipToNextRequest(user_id=user))
    assert result.spotify_status == 204
    assert (await h.player(user))["index"] == 1
    await h.stub.SkipToPrevious(h.pb.SkipToPreviousRequest(user_id=user))
    assert (await h.player(user))["index"] == 0
    await h.stub.PausePlayback(h.pb.PausePlaybackRequest(user_id=user))
    assert (await h.player(user))["is_playing"] is False

    await h.sim.put("/_sim/player/success", json={"status": 200})
    result = await h.stub.StartPlayback(h.pb.StartPlaybackRequest(user_id=user))
    assert result.spotify_status == 200
    await h.sim.put("/_sim/player/success", json={"status": 202})
    result = await h.stub.SkipToNext(h.pb.SkipToNextRequest(user_id=user))
    assert result.spotify_status == 202 and (await h.player(user))["index"] == 1


async def test_queue_is_capped(harness) -> None:
    h = harness
    user = await h.add_user()
    state = await start_album(h, user)
    queue = await h.stub.GetQueue(h.pb.GetQueueRequest(user_id=user, max_items=2))
    assert queue.currently_playing.id == state["track_ids"][0]
    assert [i.id for i in queue.queue] == state["track_ids"][1:3]
    bad = await rpc_error(h.stub.GetQueue(h.pb.GetQueueRequest(user_id=user, max_items=51)))
    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    ("reason", "status", "code"),
    [
        ("NO_ACTIVE_DEVICE", 404, grpc.StatusCode.NOT_FOUND),
        ("PREMIUM_REQUIRED", 403, grpc.StatusCode.PERMISSION_DENIED),
        ("DEVICE_NOT_CONTROLLABLE", 403, grpc.StatusCode.PERMISSION_DENIED),
        ("UNKNOWN", 403, grpc.StatusCode.FAILED_PRECONDITION),
        ("NO_NEXT_TRACK", 403, grpc.StatusCode.FAILED_PRECONDITION),
        ("RATE_LIMITED", 403, grpc.StatusCode.RESOURCE_EXHAUSTED),
    ],
)
async def test_refusals_map_by_reason(harness, reason, status, code) -> None:
    h = harness
    user = await h.add_user()
    await h.sim.post(
        "/_sim/player/refusals",
        json={"command": "next", "status": status, "reason": reason, "user_id": user},
    )
    error = await rpc_error(h.stub.SkipToNext(h.pb.SkipToNextRequest(user_id=user)))
    assert error.code() == code
    assert error_reason(error) == reason
    assert error.details().endswith(f"({reason})")


async def test_free_user_and_missing_device(harness) -> None:
    h = harness
    free = await h.add_user(product="free")
    error = await rpc_error(h.stub.StartPlayback(h.pb.StartPlaybackRequest(user_id=free)))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_reason(error) == "PREMIUM_REQUIRED"
    user = await h.add_user()
    error = await rpc_error(h.stub.PausePlayback(h.pb.PausePlaybackRequest(user_id=user)))
    assert (error.code(), error_reason(error)) == (grpc.StatusCode.NOT_FOUND, "NO_ACTIVE_DEVICE")
    error = await rpc_error(
        h.stub.StartPlayback(h.pb.StartPlaybackRequest(user_id=user, device_id="nope"))
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND and error.details() == "Device not found"


async def test_rate_limit_unauthorized_and_upstream_errors(harness) -> None:
    h = harness
    user = await h.add_user()
    devices = "/v1/me/player/devices"
    await h.sim.post(
        "/_sim/faults",
        json={"path_prefix": devices, "status": 429, "retry_after": 300, "user_id": user},
    )
    error = await rpc_error(h.stub.ListDevices(h.pb.ListDevicesRequest(user_id=user)))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error_retry_after(error) == 300

    await h.sim.post(
        "/_sim/faults", json={"path_prefix": devices, "status": 401, "count": 2, "user_id": user}
    )
    before = len(h.tokens.refreshes)
    error = await rpc_error(h.stub.ListDevices(h.pb.ListDevicesRequest(user_id=user)))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert h.tokens.refreshes[before:] == [user]  # exactly one refresh

    await h.sim.post(
        "/_sim/faults",
        json={"path_prefix": devices, "status": 500, "count": None, "user_id": user},
    )
    error = await rpc_error(h.stub.ListDevices(h.pb.ListDevicesRequest(user_id=user)))
    await h.sim.delete("/_sim/faults")
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert error_reason(error) == "UPSTREAM_ERROR"
    five_hundreds = [r for r in h.recorder.records if r.user_id == user and r.status_code == 500]
    assert len(five_hundreds) == 4  # first try + 3 bounded retries


async def test_browse_closed_in_development_mode(harness) -> None:
    h = harness
    user = await h.add_user()
    opened = await h.stub.ListCategories(h.pb.ListCategoriesRequest(user_id=user, limit=5))
    assert len(opened.items) == 5 and not opened.HasField("unavailable_reason")
    await h.sim.put("/_sim/mode", json={"mode": "development"})
    featured = await h.stub.ListFeaturedPlaylists(h.pb.ListFeaturedPlaylistsRequest(user_id=user))
    releases = await h.stub.ListNewReleases(h.pb.ListNewReleasesRequest(user_id=user))
    categories = await h.stub.ListCategories(h.pb.ListCategoriesRequest(user_id=user))
    for closed in (featured, releases, categories):
        assert not closed.items and closed.unavailable_reason
    artists = await h.stub.ListFollowedArtists(
        h.pb.ListFollowedArtistsRequest(user_id=user, limit=3)
    )
    assert len(artists.items) == 3 and not artists.items[0].HasField("followers")


async def test_library_paging(harness) -> None:
    h = harness
    user = await h.add_user()
    artists = await h.stub.ListFollowedArtists(h.pb.ListFollowedArtistsRequest(user_id=user))
    assert len(artists.items) == min(50, artists.total) and artists.total >= 40
    assert artists.items[0].HasField("followers") and artists.items[0].HasField("image")
    albums = await h.stub.ListSavedAlbums(
        h.pb.ListSavedAlbumsRequest(user_id=user, limit=5, offset=5)
    )
    first = await h.stub.ListSavedAlbums(h.pb.ListSavedAlbumsRequest(user_id=user, limit=10))
    assert [a.id for a in albums.items] == [a.id for a in first.items[5:10]]
    assert (albums.limit, albums.offset, albums.total) == (5, 5, first.total)
    assert albums.items[0].added_at.endswith("Z")


async def test_every_call_is_recorded_as_interactive_player_proxy(harness) -> None:
    h = harness
    user = await h.add_user()
    await h.stub.ListDevices(h.pb.ListDevicesRequest(user_id=user))
    await h.stub.ListNewReleases(h.pb.ListNewReleasesRequest(user_id=user, limit=2))
    mine = [r for r in h.recorder.records if r.user_id == user]
    assert [(r.method, r.endpoint, r.status_code) for r in mine] == [
        ("GET", "/v1/me/player/devices", 200),
        ("GET", "/v1/browse/new-releases", 200),
    ]
    assert all(r.caller == "player-proxy" for r in mine)
