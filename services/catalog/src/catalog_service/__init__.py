"""Catalog service: tracks, artists, albums, audio features and playlists."""
