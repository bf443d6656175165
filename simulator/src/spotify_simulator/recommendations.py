"""`GET /v1/recommendations` (ref §2, §4): tracks near the seeds and the `target_*` values.

No scope needed. At least one seed of `seed_artists`, `seed_tracks`, `seed_genres` and at
most 5 in total (else 400 `Invalid seeds`); `limit` 1-100 (default 20). Candidates are the
tracks of the seed artists, of the seed tracks' artists and of artists with a seed genre,
ranked by distance to the `target_*` audio features (when given), then by id, so answers
are deterministic. Closed to Development Mode apps since Nov 2024: 404 `Service not found`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from .auth import State
from .errors import WebApiError
from .modes import closed_in_development
from .objects import track_object
from .urls import api_base

router = APIRouter(
    prefix="/v1",
    tags=["recommendations"],
    dependencies=[Depends(closed_in_development(404))],
)

MAX_SEEDS = 5
# Targets compared on a 0-1 scale; tempo is divided by 250 bpm to be comparable.
_TARGETS = ("acousticness", "danceability", "energy", "instrumentalness", "valence", "tempo")


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


@router.get("/recommendations")
async def get_recommendations(
    request: Request,
    state: State,
    seed_artists: str | None = None,
    seed_tracks: str | None = None,
    seed_genres: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    """Recommended tracks for up to 5 seeds, nearest the `target_*` features first."""
    artists, tracks, genres = _split(seed_artists), _split(seed_tracks), _split(seed_genres)
    total = len(artists) + len(tracks) + len(genres)
    if total == 0 or total > MAX_SEEDS:
        raise WebApiError(400, "Invalid seeds")
    catalog = state.catalog
    targets: dict[str, float] = {}
    for name in _TARGETS:
        raw = request.query_params.get(f"target_{name}")
        if raw is not None:
            try:
                targets[name] = float(raw)
            except ValueError:
                raise WebApiError(400, f"Invalid target_{name}") from None
    seed_artist_ids = {a for a in artists if a in catalog.artists}
    for track_id in tracks:
        if track_id in catalog.tracks:
            seed_artist_ids.update(catalog.tracks[track_id].artist_ids)
    wanted_genres = set(genres)
    if wanted_genres:
        seed_artist_ids.update(
            a.id for a in catalog.artists.values() if wanted_genres.intersection(a.genres)
        )
    candidates = {
        t for a in seed_artist_ids for t in catalog.artist_track_ids.get(a, ()) if t not in tracks
    }

    def distance(track_id: str) -> float:
        features = catalog.audio_features.get(track_id)
        if features is None or not targets:
            return 0.0
        total_distance = 0.0
        for name, target in targets.items():
            value = getattr(features, name)
            scale = 250.0 if name == "tempo" else 1.0
            total_distance += abs(value - target) / scale
        return total_distance

    ranked = sorted(candidates, key=lambda t: (distance(t), t))[:limit]
    base = api_base(request)
    seeds = [
        {"id": s, "type": kind, "initialPoolSize": len(candidates)}
        for kind, values in (("ARTIST", artists), ("TRACK", tracks), ("GENRE", genres))
        for s in values
    ]
    return {"seeds": seeds, "tracks": [track_object(catalog, t, base, state.mode) for t in ranked]}
