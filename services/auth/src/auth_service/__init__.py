"""Auth service: users, encrypted Spotify credentials and sessions; hands out access tokens."""
