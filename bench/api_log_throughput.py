"""API-log write throughput: how many call records per second reach observability, and what
recording costs the caller.

A BufferedRecorder (the one every service uses) is fed N records as fast as possible; the
caller-side cost is the time spent inside record(); delivery is the time until the
observability service (real gRPC server, real FerretDB) has stored them all.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

from bench.common import local_stack, write_result
from echostats.observability.v1 import observability_service_pb2 as obs_pb
from echostats.observability.v1 import observability_service_pb2_grpc as obs_grpc
from echostats_grpc.client import create_channel
from echostats_grpc.service_clients import ObservabilityCallSink
from echostats_spotify.recording import ApiCallRecord, BufferedRecorder

RECORDS = 20_000


async def measure(observability_addr: str) -> dict[str, object]:
    """Record RECORDS calls for one user and wait until all are stored."""
    channel = create_channel(observability_addr, default_timeout=30)
    stub = obs_grpc.ObservabilityServiceStub(channel)
    recorder = BufferedRecorder(ObservabilityCallSink(stub), max_batch=500, flush_interval=0.2)
    recorder.start()
    user_id = uuid.uuid4().hex[:24]
    started = time.perf_counter()
    in_record = 0.0
    for n in range(RECORDS):
        record = ApiCallRecord(
            service="spotify",
            caller="bench",
            method="GET",
            endpoint="/v1/me/player/recently-played",
            status_code=200 if n % 50 else 429,
            latency_ms=100.0 + n % 37,
            error=None,
            request_id=f"bench-{n}",
            user_id=user_id,
            timestamp=datetime.now(UTC),
            attempt=1,
        )
        before = time.perf_counter()
        recorder.record(record)
        in_record += time.perf_counter() - before
        # Offer records as fast as the log drains them (a flood beyond the buffer would be
        # dropped by design: the log never slows a caller down).
        while recorder.pending > 5_000:  # noqa: ASYNC110 - polling the buffer is the point
            await asyncio.sleep(0.005)
    await recorder.aclose(grace_seconds=120)
    elapsed = time.perf_counter() - started
    stored = await stub.GetApiCallStats(obs_pb.GetApiCallStatsRequest(user_id=user_id))
    await channel.close()
    return {
        "records": RECORDS,
        "stored": stored.total_calls,
        "dropped": recorder.dropped,
        "caller_cost_us_per_record": round(in_record / RECORDS * 1e6, 2),
        "delivered_records_per_second": round(RECORDS / elapsed),
        "batch_size": 500,
    }


def main() -> None:
    """Start a stack and measure."""
    with local_stack() as stack:
        figures = asyncio.run(measure(stack.service_addrs["observability"]))
    write_result("api_log_throughput", figures)


if __name__ == "__main__":
    main()
