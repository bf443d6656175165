"""The real server started while FerretDB is down: RPCs answer UNAVAILABLE, indexes come later.

This module stops the session's shared FerretDB for a moment (and always starts it again),
as the devstack plugin intends outage tests to do.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc
import pytest
from bson import ObjectId

from echostats.observability.v1 import observability_service_pb2 as pb
from echostats_grpc.client import error_reason

WAIT_SECONDS = 30.0


async def test_server_started_during_an_outage_recovers(
    settings_factory: Any, serve_observability: Any, ferretdb_server: Any, database: Any
) -> None:
    settings = settings_factory(
        mongodb_timeout_ms=500,
        index_retry_interval_seconds=0.2,
        mongodb_database=database.name,
    )
    user = str(ObjectId())
    ferretdb_server.stop()
    try:
        async with serve_observability(settings) as server:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await server.stub.StartJob(
                    pb.StartJobRequest(user_id=user, job_type=pb.JOB_TYPE_MANUAL)
                )
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
            assert error_reason(caught.value) == "DATABASE_UNAVAILABLE"

            ferretdb_server.start()

            # The background task keeps trying and makes the indexes once the database is back.
            deadline = time.monotonic() + WAIT_SECONDS
            while "user_created" not in await database["jobs"].index_information():
                assert time.monotonic() < deadline, "indexes were not created after the outage"
                await asyncio.sleep(0.2)
            started = await server.stub.StartJob(
                pb.StartJobRequest(user_id=user, job_type=pb.JOB_TYPE_MANUAL)
            )
            assert started.started is True
    finally:
        if not ferretdb_server.running:
            ferretdb_server.start()
