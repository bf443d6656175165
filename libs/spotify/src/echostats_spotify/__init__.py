"""The one Spotify HTTP client: retries, Retry-After, token refresh hook, capability detection
and a record of every call. Services import what they need from here."""

from echostats_spotify.accounts import (
    SpotifyAccountsClient,
    TokenGrant,
    code_challenge_s256,
    new_code_verifier,
)
from echostats_spotify.capabilities import (
    Capability,
    CapabilityRegistry,
    CapabilityStore,
    InMemoryCapabilityStore,
    RedisCapabilityStore,
    capability_for,
)
from echostats_spotify.client import SpotifyClient, SpotifyResponse, TokenProvider
from echostats_spotify.errors import (
    InvalidClient,
    InvalidGrant,
    RateLimited,
    SpotifyBadRequest,
    SpotifyHTTPError,
    SpotifyNotFound,
    SpotifyPermissionDenied,
    SpotifyUnauthorized,
    SpotifyUpstreamError,
    TokenRequestRejected,
)
from echostats_spotify.factory import SpotifyClients, build_spotify_clients, create_http_client
from echostats_spotify.priority import Priority, PriorityGate
from echostats_spotify.recording import (
    ApiCallRecord,
    BufferedRecorder,
    CallRecorder,
    FanoutRecorder,
    LoggingRecorder,
)
from echostats_spotify.transport import RetryPolicy

__all__ = [
    "ApiCallRecord",
    "BufferedRecorder",
    "CallRecorder",
    "Capability",
    "CapabilityRegistry",
    "CapabilityStore",
    "FanoutRecorder",
    "InMemoryCapabilityStore",
    "InvalidClient",
    "InvalidGrant",
    "LoggingRecorder",
    "Priority",
    "PriorityGate",
    "RateLimited",
    "RedisCapabilityStore",
    "RetryPolicy",
    "SpotifyAccountsClient",
    "SpotifyBadRequest",
    "SpotifyClient",
    "SpotifyClients",
    "SpotifyHTTPError",
    "SpotifyNotFound",
    "SpotifyPermissionDenied",
    "SpotifyResponse",
    "SpotifyUnauthorized",
    "SpotifyUpstreamError",
    "TokenGrant",
    "TokenProvider",
    "TokenRequestRejected",
    "build_spotify_clients",
    "capability_for",
    "code_challenge_s256",
    "create_http_client",
    "new_code_verifier",
]
