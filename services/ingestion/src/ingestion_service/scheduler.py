"""The periodic scheduler: one PERIODIC sync per active user every `sync_interval_seconds`.

Every worker replica runs it under `run_while_leader` with one Redis lease, so only the
lease holder schedules. The lease is renewed every `scheduler_lease_renew_seconds`, much
more often than the sync interval, so `tick()` runs often and decides whether a round is
due: a round starts only if it can create the round key (`SET NX` with the interval as its
TTL). That key outlives leader changes and restarts, so a restarted or newly elected
leader does not schedule a second round early, and two replicas that briefly both believe
they lead (a lease is not a fence) still start one round.

A round pages auth's ListActiveUsers and starts each user's sync through
`JobStarter.start_sync`, the same start-and-enqueue path TriggerSync uses, so a user
whose sync is still pending or running is left alone (already_running). If auth cannot be
reached the round key is dropped, so the next tick tries again instead of waiting a whole
interval.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
from redis.asyncio import Redis

from echostats.auth.v1 import auth_service_pb2 as auth_pb
from echostats.auth.v1 import auth_service_pb2_grpc as auth_grpc
from echostats_platform.errors import DomainError
from ingestion_service.job_ledger import JobType
from ingestion_service.job_starter import JobStarter

log = logging.getLogger(__name__)

LEASE_KEY = "ingestion:scheduler:lease"
ROUND_KEY = "ingestion:scheduler:round"


@dataclass(frozen=True, slots=True)
class RoundResult:
    """What one scheduling round did."""

    users: int = 0
    started: int = 0
    already_running: int = 0
    failed: int = 0


class PeriodicScheduler:
    """Starts a periodic sync for every active user once per interval."""

    def __init__(
        self,
        *,
        redis: Redis,
        auth: auth_grpc.AuthServiceStub,
        starter: JobStarter,
        interval_seconds: float,
        page_size: int = 500,
        owner: str = "",
        rpc_timeout: float = 10.0,
    ) -> None:
        self._redis = redis
        self._auth = auth
        self._starter = starter
        self._interval_ms = max(1, int(interval_seconds * 1000))
        self._page_size = page_size
        self._owner = owner or "scheduler"
        self._rpc_timeout = rpc_timeout

    async def tick(self) -> RoundResult | None:
        """Run a round if one is due (the round key is free); None when not due."""
        due = await self._redis.set(ROUND_KEY, self._owner, nx=True, px=self._interval_ms)
        if not due:
            return None
        try:
            return await self.run_round()
        except grpc.aio.AioRpcError as exc:
            # Auth is down or does not serve ListActiveUsers yet: retry at the next tick.
            await self._redis.delete(ROUND_KEY)
            log.warning(
                "periodic scheduling skipped: could not list active users",
                extra={"code": exc.code().name, "details": exc.details()},
            )
            return None

    async def run_round(self) -> RoundResult:
        """Start one periodic sync per active user (already running ones are left alone)."""
        users = started = already = failed = 0
        async for user_id in self._active_users():
            users += 1
            try:
                outcome = await self._starter.start_sync(user_id=user_id, job_type=JobType.PERIODIC)
            except (DomainError, grpc.aio.AioRpcError) as exc:
                # One user's failure (ledger hiccup, queue outage) must not stop the round.
                failed += 1
                log.warning(
                    "could not start periodic sync", extra={"user_id": user_id, "error": str(exc)}
                )
                continue
            if outcome.started:
                started += 1
            else:
                already += 1
        result = RoundResult(users, started, already, failed)
        log.info(
            "periodic syncs scheduled",
            extra={
                "users": users,
                "started": started,
                "already_running": already,
                "failed": failed,
            },
        )
        return result

    async def _active_users(self) -> AsyncIterator[str]:
        token = ""
        while True:
            response = await self._auth.ListActiveUsers(
                auth_pb.ListActiveUsersRequest(page_size=self._page_size, page_token=token),
                timeout=self._rpc_timeout,
            )
            for user_id in response.user_ids:
                yield user_id
            token = response.next_page_token
            if not token:
                return
