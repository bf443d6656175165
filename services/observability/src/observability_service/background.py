"""Background work of each replica: index creation, the stale-job reaper, API-log retention.

Every replica runs all of it. That is safe because each piece is idempotent: index
creation is, the reaper fails a job with a conditional update (one replica wins), and a
retention delete of already-deleted records deletes nothing. A failing round (database
down) is logged and retried at the next interval; it never stops the loop.

Stopping does not rely on cancellation alone: a task cancelled in the middle of a
PyMongo operation (e.g. while it selects a server) can have the CancelledError swallowed
and go back to sleep, so each loop also watches a stop event and `running_tasks` keeps
cancelling until the tasks are done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)

Action = Callable[[], Awaitable[object]]
Loop = Callable[[asyncio.Event], Coroutine[Any, Any, None]]

# How long each cancellation round waits for the tasks to end before cancelling again.
_CANCEL_ROUND_SECONDS = 0.5


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


def periodically(name: str, interval_seconds: float, action: Action) -> Loop:
    """A loop that runs `action` now and then every `interval_seconds` until stopped."""

    async def loop(stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await action()
            except Exception:
                log.warning("background task round failed", extra={"task": name}, exc_info=True)
            await _pause(stop, interval_seconds)

    return loop


def until_done(name: str, retry_seconds: float, action: Action) -> Loop:
    """A loop that runs `action` until it succeeds once, retrying every `retry_seconds`."""

    async def loop(stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await action()
            except Exception:
                log.warning(
                    "background task failed; retrying",
                    extra={"task": name, "retry_seconds": retry_seconds},
                    exc_info=True,
                )
                await _pause(stop, retry_seconds)
            else:
                log.info("background task done", extra={"task": name})
                return

    return loop


@contextlib.asynccontextmanager
async def running_tasks(*loops: Loop) -> AsyncIterator[list[asyncio.Task[None]]]:
    """Run the loops as tasks for the block; stop, cancel and await them on exit."""
    stop = asyncio.Event()
    tasks = [asyncio.ensure_future(loop(stop)) for loop in loops]
    try:
        yield tasks
    finally:
        stop.set()
        pending = {task for task in tasks if not task.done()}
        while pending:
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=_CANCEL_ROUND_SECONDS)
        for task in tasks:
            if not task.cancelled() and task.exception() is not None:
                log.warning("background task ended with an error", exc_info=task.exception())
