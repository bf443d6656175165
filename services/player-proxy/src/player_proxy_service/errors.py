"""How Spotify's player refusals become this context's domain errors (one table).

Spotify answers player commands it will not carry out with 403 or 404 and a `reason`
(ref §2 "Player commands"). The gateway's one gRPC→HTTP table then gives:

| Spotify                                   | domain error (gRPC status / reason)        | HTTP |
|-------------------------------------------|--------------------------------------------|------|
| 404 NO_ACTIVE_DEVICE                      | NotFound / NO_ACTIVE_DEVICE                | 404  |
| 403 PREMIUM_REQUIRED                      | PermissionDenied / PREMIUM_REQUIRED        | 403  |
| 403/404 REMOTE_CONTROL_DISALLOW,          | PermissionDenied / that reason             | 403  |
|   DEVICE_NOT_CONTROLLABLE, VOLUME_CONTROL_DISALLOW |                                   |      |
| 403/404 RATE_LIMITED                      | ResourceExhausted / RATE_LIMITED           | 429  |
| 403/404 any other reason (UNKNOWN,        | FailedPrecondition / that reason           | 409  |
|   NO_NEXT_TRACK, ALREADY_PAUSED, ...)     |                                            |      |

The detail the user reads is Spotify's message with its reason: `Player command failed:
Restriction violated (UNKNOWN)`. Everything else keeps the Spotify client's own errors,
which are domain errors already (401 after one refresh → Unauthenticated, 429 →
ResourceExhausted with Retry-After, 5xx → UpstreamError after bounded retries, 400 →
InvalidArgument, 403/404 without a reason → PermissionDenied/NotFound).
"""

from __future__ import annotations

from echostats_platform.errors import (
    DomainError,
    FailedPrecondition,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
)
from echostats_spotify.errors import SpotifyHTTPError

NO_ACTIVE_DEVICE = "NO_ACTIVE_DEVICE"
PREMIUM_REQUIRED = "PREMIUM_REQUIRED"
# Refusals about who may control what: the user cannot fix them by changing playback.
PERMISSION_REASONS = frozenset(
    {PREMIUM_REQUIRED, "REMOTE_CONTROL_DISALLOW", "DEVICE_NOT_CONTROLLABLE",
     "VOLUME_CONTROL_DISALLOW"}
)  # fmt: skip


class NoActiveDevice(NotFound):
    """No Spotify Connect device is active and the command named none."""

    default_reason = NO_ACTIVE_DEVICE


class PlayerPermissionDenied(PermissionDenied):
    """Spotify will not let this user control playback (Premium, device restrictions)."""


class PlayerRefused(FailedPrecondition):
    """Spotify refused the command in the player's current state (409 at the gateway)."""


class PlayerRateLimited(ResourceExhausted):
    """A player refusal with reason RATE_LIMITED (429 at the gateway)."""


def player_error(exc: SpotifyHTTPError) -> DomainError:
    """The domain error for a failed player call: refusals by reason, others unchanged."""
    reason = exc.spotify_reason
    if exc.status_code not in (403, 404) or not reason:
        return exc
    detail = f"{exc.message} ({reason})"
    if reason == NO_ACTIVE_DEVICE:
        return NoActiveDevice(detail)
    if reason in PERMISSION_REASONS:
        return PlayerPermissionDenied(detail, reason=reason)
    if reason == "RATE_LIMITED":
        return PlayerRateLimited(detail, reason=reason, retry_after=1)
    return PlayerRefused(detail, reason=reason)
