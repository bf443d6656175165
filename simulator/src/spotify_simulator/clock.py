"""The simulator's clock: wall time plus an offset that tests can move forward.

Everything time-dependent (code and token expiry, the refresh-token lifetime, the rate
window, request-log timestamps) reads `Clock.now()`, so `POST /_sim/clock` can make ten
minutes pass instantly instead of tests sleeping.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime


class Clock:
    """Wall-clock seconds since the epoch, shifted by an adjustable offset."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        """Current simulated time in epoch seconds."""
        return time.time() + self._offset

    def now_ms(self) -> int:
        """Current simulated time in Unix milliseconds (the unit of Spotify's play cursors)."""
        return int(self.now() * 1000)

    @property
    def offset(self) -> float:
        """How far the simulated clock is ahead of wall time, in seconds."""
        return self._offset

    def advance(self, seconds: float) -> float:
        """Move simulated time forward (never backward) and return the new offset."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._offset += seconds
            return self._offset

    def reset(self) -> None:
        """Return to wall time."""
        with self._lock:
            self._offset = 0.0


def iso_utc_ms(epoch_ms: int) -> str:
    """Format Unix milliseconds exactly as Spotify's `played_at`: `2026-04-20T10:00:00.123Z`."""
    moment = datetime.fromtimestamp(epoch_ms // 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


def iso_utc(epoch_s: float) -> str:
    """Format epoch seconds as ISO 8601 UTC with milliseconds and a Z, as Spotify does."""
    moment = datetime.fromtimestamp(epoch_s, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
