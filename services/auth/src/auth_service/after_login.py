"""What follows a sign-in in other contexts: the initial sync, the demo user's history.

Best effort by design: a sign-in must not fail because ingestion is briefly unavailable.
The periodic scheduler syncs every active user later anyway, and dev-login asks again on
the next sign-in (seeding is idempotent).
"""

from __future__ import annotations

import logging

import grpc

from echostats.ingestion.v1 import ingestion_service_pb2 as ingestion_pb
from echostats.ingestion.v1 import ingestion_service_pb2_grpc as ingestion_grpc
from echostats.observability.v1 import observability_service_pb2 as obs_pb

log = logging.getLogger(__name__)


class AfterLogin:
    """Starts follow-up work in ingestion after a user signs in."""

    def __init__(self, ingestion: ingestion_grpc.IngestionServiceStub, *, timeout: float = 5.0):
        self._ingestion = ingestion
        self._timeout = timeout

    async def start_initial_sync(self, user_id: str) -> None:
        """Queue the user's initial sync (recently played → ... → analytics)."""
        try:
            await self._ingestion.TriggerSync(
                ingestion_pb.TriggerSyncRequest(user_id=user_id, job_type=obs_pb.JOB_TYPE_INITIAL),
                timeout=self._timeout,
            )
        except grpc.aio.AioRpcError as exc:
            log.warning(
                "initial sync not started",
                extra={"user_id": user_id, "code": exc.code().name, "details": exc.details()},
            )

    async def seed_demo_history(self, user_id: str) -> None:
        """Give the demo user their synthetic history (once)."""
        try:
            await self._ingestion.SeedDemoHistory(
                ingestion_pb.SeedDemoHistoryRequest(user_id=user_id), timeout=self._timeout
            )
        except grpc.aio.AioRpcError as exc:
            log.warning(
                "demo history not seeded",
                extra={"user_id": user_id, "code": exc.code().name, "details": exc.details()},
            )
