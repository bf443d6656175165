"""Per-process gate that keeps interactive Spotify calls ahead of background work.

Interactive calls (player, browse, a page a user waits on) never wait here. Background
calls (sync, enrichment, imports) share a bounded number of slots and, while any
interactive call is in flight, hold back before sending, for at most `max_yield_seconds`
so that a steady stream of interactive calls cannot starve background work forever.

The gate is entered once per HTTP exchange, not per logical call, so a background call
sleeping between retries holds no slot. It is per process: Spotify's rate limit is per
app, so replicas still share it; the gate only decides who goes first here.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from enum import StrEnum


class Priority(StrEnum):
    """Who is waiting for a call: a user right now, or a background job."""

    INTERACTIVE = "interactive"
    BACKGROUND = "background"


class PriorityGate:
    """Bypass for interactive calls; bounded, yielding concurrency for background calls."""

    def __init__(self, background_concurrency: int = 4, *, max_yield_seconds: float = 2.0) -> None:
        if background_concurrency < 1:
            raise ValueError("background_concurrency must be at least 1")
        self._background = asyncio.Semaphore(background_concurrency)
        self._max_yield_seconds = max_yield_seconds
        self._interactive_in_flight = 0
        self._background_in_flight = 0
        self._no_interactive = asyncio.Event()
        self._no_interactive.set()

    @property
    def interactive_in_flight(self) -> int:
        """Interactive exchanges currently being sent."""
        return self._interactive_in_flight

    @property
    def background_in_flight(self) -> int:
        """Background exchanges currently being sent."""
        return self._background_in_flight

    @contextlib.asynccontextmanager
    async def slot(self, priority: Priority) -> AsyncIterator[None]:
        """Hold the right to send one exchange at the given priority."""
        if priority == Priority.INTERACTIVE:
            self._interactive_in_flight += 1
            self._no_interactive.clear()
            try:
                yield
            finally:
                self._interactive_in_flight -= 1
                if self._interactive_in_flight == 0:
                    self._no_interactive.set()
            return
        async with self._background:
            if self._interactive_in_flight:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._max_yield_seconds):
                        await self._no_interactive.wait()
            self._background_in_flight += 1
            try:
                yield
            finally:
                self._background_in_flight -= 1
