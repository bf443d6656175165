"""Player-proxy service: a stateless proxy for Spotify player, browse and library calls."""
