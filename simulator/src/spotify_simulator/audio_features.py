"""`GET /v1/audio-features?ids=` and `GET /v1/audio-features/{id}` (ref §2, §4).

No scope needed. The batch takes up to 100 comma-separated ids (more: 400 `too many ids
requested`); unknown ids come back as `null` entries in request order; a malformed id is
400 `invalid id`. The single form answers 400 `invalid id` or 404 `non existing id`.

Closed to Development Mode apps since Nov 2024: both answer 403 with the bare body
`{"error":{"status":403}}` (no message, as observed), after authentication.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from echostats_synthetic.ids import is_spotify_id

from .auth import State
from .errors import WebApiError
from .modes import closed_in_development
from .objects import audio_features_object
from .urls import api_base

router = APIRouter(
    prefix="/v1",
    tags=["audio features"],
    dependencies=[Depends(closed_in_development(403, None))],
)

MAX_IDS = 100


@router.get("/audio-features")
async def get_several_audio_features(
    request: Request, state: State, ids: Annotated[str, Query()]
) -> dict[str, Any]:
    """Audio features for up to 100 tracks; `null` for ids the catalog does not know."""
    wanted = [i.strip() for i in ids.split(",") if i.strip()]
    if not wanted:
        raise WebApiError(400, "invalid id")
    if len(wanted) > MAX_IDS:
        raise WebApiError(400, "too many ids requested")
    if not all(is_spotify_id(i) for i in wanted):
        raise WebApiError(400, "invalid id")
    base = api_base(request)
    features = state.catalog.audio_features
    return {
        "audio_features": [
            audio_features_object(features[i], base) if i in features else None for i in wanted
        ]
    }


@router.get("/audio-features/{track_id}")
async def get_audio_features(request: Request, state: State, track_id: str) -> dict[str, Any]:
    """Audio features for one track."""
    if not is_spotify_id(track_id):
        raise WebApiError(400, "invalid id")
    features = state.catalog.audio_features.get(track_id)
    if features is None:
        raise WebApiError(404, "non existing id")
    return audio_features_object(features, api_base(request))
