"""Deterministic synthetic Spotify data shared by the simulator, the demo user and benchmarks.

Modules: `catalog` (artists, albums, tracks, audio features), `history` (a listener's plays
over time), `ids` (Spotify-style ids, image URLs, derived seeds). `exports.py` (the
privacy-export files of ref §5, rendered from `history`) is the planned next module.
Everything is pure Python and deterministic: the same seed always gives the same data.
"""

from .catalog import Catalog, generate_catalog
from .history import (
    AlbumRef,
    ArtistRef,
    ListenerTaste,
    PlayContext,
    PlayedTrack,
    SyntheticPlay,
    SyntheticPlaylist,
    generate_history,
    listener_seed,
    listener_taste,
    recent_plays,
)

__all__ = [
    "AlbumRef",
    "ArtistRef",
    "Catalog",
    "ListenerTaste",
    "PlayContext",
    "PlayedTrack",
    "SyntheticPlay",
    "SyntheticPlaylist",
    "generate_catalog",
    "generate_history",
    "listener_seed",
    "listener_taste",
    "recent_plays",
]
