"""Per-user Spotify Connect player state: devices, the active device, what plays, and how.

One `PlayerSession` per user, created on first use with three seeded devices (none active,
nothing loaded, so `GET /me/player` answers 204 until something plays). Commands follow
Spotify's rules (ref §2 "Player commands"):
- a user without Premium gets 403 `PREMIUM_REQUIRED` for every command;
- with no active device and no `device_id`, 404 `NO_ACTIVE_DEVICE`; an unknown `device_id`
  404 `Device not found`;
- redundant commands (pausing paused playback, resuming what plays) get the observed
  403 `Player command failed: Restriction violated` with reason `UNKNOWN`; skipping past
  either end gives `NO_NEXT_TRACK` / `NO_PREV_TRACK`.
`PlayerBook` also holds what the control API sets: how successful commands answer (204, 200
with an opaque text token, or 202) and forced refusals (the next N commands fail with a
chosen status and reason). Progress runs on the simulator clock while playing.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from echostats_synthetic.ids import stable_id

from .errors import WebApiError

COMMANDS = ("play", "pause", "next", "previous")
SUCCESS_STATUSES = (204, 200, 202)
DEVICE_TYPES = ("Computer", "Smartphone", "Speaker", "TV", "AVR", "STB", "AudioDongle",
                "GameConsole", "CastVideo", "CastAudio", "Automobile", "Tablet")  # fmt: skip


def refusal(status: int, message: str, reason: str) -> WebApiError:
    """A player error in Spotify's shape: `Player command failed: <message>` + reason."""
    return WebApiError(status, f"Player command failed: {message}", reason=reason)


def no_active_device() -> WebApiError:
    """404 NO_ACTIVE_DEVICE."""
    return refusal(404, "No active device found", "NO_ACTIVE_DEVICE")


def premium_required() -> WebApiError:
    """403 PREMIUM_REQUIRED."""
    return refusal(403, "Premium required", "PREMIUM_REQUIRED")


def restriction_violated(reason: str = "UNKNOWN") -> WebApiError:
    """The observed 403 for most refusals (reason UNKNOWN unless Spotify names one)."""
    return refusal(403, "Restriction violated", reason)


@dataclass(slots=True)
class SimDevice:
    """One Spotify Connect device of a user."""

    id: str
    name: str
    type: str = "Computer"
    volume_percent: int | None = 50

    def as_json(self, active: bool) -> dict[str, Any]:
        """The device object of `GET /me/player/devices`."""
        return {
            "id": self.id,
            "is_active": active,
            "is_private_session": False,
            "is_restricted": False,
            "name": self.name,
            "supports_volume": self.volume_percent is not None,
            "type": self.type,
            "volume_percent": self.volume_percent,
        }


def seeded_devices(user_id: str) -> list[SimDevice]:
    """Every user starts with the same three devices (ids derived from the user id)."""
    seeds = (("EchoStats Desktop", "Computer", 65), ("Kitchen", "Speaker", 40),
             ("Pocket Phone", "Smartphone", 80))  # fmt: skip
    return [
        SimDevice(stable_id("device", user_id, str(n), length=40), name, kind, volume)
        for n, (name, kind, volume) in enumerate(seeds)
    ]


@dataclass(slots=True)
class PlayerSession:
    """What one user's player is doing."""

    devices: list[SimDevice]
    active_device_id: str | None = None
    context_uri: str | None = None
    track_ids: list[str] = field(default_factory=list)
    index: int = 0
    is_playing: bool = False
    # Progress at `since_ms` (simulated clock); while playing it grows with the clock.
    position_ms: int = 0
    since_ms: int = 0
    shuffle: bool = False
    repeat: str = "off"

    @property
    def track_id(self) -> str | None:
        """The current track, if one is loaded."""
        if 0 <= self.index < len(self.track_ids):
            return self.track_ids[self.index]
        return None

    def device(self, device_id: str | None) -> SimDevice | None:
        """A device by id."""
        return next((d for d in self.devices if d.id == device_id), None)

    @property
    def active_device(self) -> SimDevice | None:
        """The device playback belongs to, if any."""
        return self.device(self.active_device_id)

    def progress(self, now_ms: int, duration_ms: int) -> int:
        """Milliseconds into the current track (clamped to its duration)."""
        grown = self.position_ms + (now_ms - self.since_ms if self.is_playing else 0)
        return max(0, min(grown, duration_ms))


@dataclass(slots=True)
class ForcedRefusal:
    """A refusal armed through the control API for the next `remaining` commands."""

    status: int
    reason: str
    message: str
    command: str | None = None
    user_id: str | None = None
    remaining: int | None = 1

    def as_dict(self) -> dict[str, Any]:
        """JSON view for the control API."""
        return {
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
            "command": self.command,
            "user_id": self.user_id,
            "remaining": self.remaining,
        }


class PlayerBook:
    """Every user's player session, the success style of commands and forced refusals."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._sessions: dict[str, PlayerSession] = {}
        self._refusals: list[ForcedRefusal] = []
        self.success_status = 204

    def reset(self) -> None:
        """Forget every session and refusal; commands answer 204 again."""
        with self._lock:
            self._sessions.clear()
            self._refusals.clear()
            self.success_status = 204

    @property
    def lock(self) -> threading.RLock:
        """Held by routes while they read-modify-write a session."""
        return self._lock

    def session(self, user_id: str) -> PlayerSession:
        """The user's session, created with the seeded devices on first use."""
        with self._lock:
            found = self._sessions.get(user_id)
            if found is None:
                found = PlayerSession(devices=seeded_devices(user_id))
                self._sessions[user_id] = found
            return found

    def set_devices(self, user_id: str, devices: list[SimDevice], active: str | None) -> None:
        """Replace the user's devices; playback stops if its device disappeared."""
        with self._lock:
            session = self.session(user_id)
            session.devices = devices
            if active is not None:
                session.active_device_id = active
            elif session.active_device_id not in {d.id for d in devices}:
                session.active_device_id = None
                session.is_playing = False

    def set_success_status(self, status: int) -> None:
        """How successful commands answer: 204, 200 with an opaque text body, or 202."""
        if status not in SUCCESS_STATUSES:
            raise ValueError(f"status must be one of {SUCCESS_STATUSES}")
        with self._lock:
            self.success_status = status

    def arm_refusal(self, refusal_rule: ForcedRefusal) -> None:
        """Fail the next matching commands with the rule's status and reason."""
        with self._lock:
            self._refusals.append(refusal_rule)

    def clear_refusals(self) -> int:
        """Disarm every forced refusal; returns how many were armed."""
        with self._lock:
            count = len(self._refusals)
            self._refusals.clear()
            return count

    def refusals(self) -> list[ForcedRefusal]:
        """Refusals still armed."""
        with self._lock:
            return list(self._refusals)

    def take_refusal(self, command: str, user_id: str) -> WebApiError | None:
        """Consume one shot of the first refusal matching this command, as an error."""
        with self._lock:
            for rule in self._refusals:
                if rule.command not in (None, command) or rule.user_id not in (None, user_id):
                    continue
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        self._refusals.remove(rule)
                return WebApiError(rule.status, rule.message, reason=rule.reason)
        return None
