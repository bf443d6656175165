"""Recorders: BufferedRecorder batching, never blocking, dropping when full; LoggingRecorder."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime

from echostats_spotify import ApiCallRecord, BufferedRecorder, FanoutRecorder, LoggingRecorder


def rec(n: int = 0) -> ApiCallRecord:
    return ApiCallRecord(
        caller="catalog",
        method="GET",
        endpoint=f"/v1/tracks/{n}",
        status_code=200,
        latency_ms=12.5,
        error=None,
        request_id="req-1",
        user_id="u1",
        timestamp=datetime(2026, 5, 1, tzinfo=UTC),
    )


class CollectingSink:
    def __init__(self, delay: float = 0.0) -> None:
        self.batches: list[list[ApiCallRecord]] = []
        self.delay = delay

    async def __call__(self, batch: list[ApiCallRecord]) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        self.batches.append(batch)


async def test_full_batches_are_flushed_without_waiting_for_the_interval():
    sink = CollectingSink()
    recorder = BufferedRecorder(sink, max_batch=3, flush_interval=60)
    recorder.start()

    for n in range(7):
        recorder.record(rec(n))
    await asyncio.sleep(0.05)

    # A full batch woke the flusher long before the 60 s interval; it sent what was queued
    # in batches of at most max_batch.
    assert [len(b) for b in sink.batches] == [3, 3, 1]
    assert recorder.pending == 0

    await recorder.aclose()
    assert [len(b) for b in sink.batches] == [3, 3, 1]
    assert [r.endpoint for b in sink.batches for r in b] == [f"/v1/tracks/{n}" for n in range(7)]
    assert recorder.delivered == 7


async def test_partial_batches_are_flushed_on_the_interval():
    sink = CollectingSink()
    recorder = BufferedRecorder(sink, max_batch=100, flush_interval=0.05)
    recorder.start()

    recorder.record(rec(1))
    await asyncio.sleep(0.2)

    assert [len(b) for b in sink.batches] == [1]
    await recorder.aclose()


async def test_record_returns_immediately_when_the_sink_is_slow():
    sink = CollectingSink(delay=0.2)
    recorder = BufferedRecorder(sink, max_batch=50, flush_interval=0.01)
    recorder.start()

    started = time.perf_counter()
    for n in range(200):
        recorder.record(rec(n))
        if n % 50 == 0:
            await asyncio.sleep(0)  # let the flusher take a batch into the slow sink
    elapsed = time.perf_counter() - started

    # The sink needs 0.2 s per batch and four batches are due; had record() waited on the
    # sink, the loop would have taken at least 0.2 s. It did not wait even once.
    assert elapsed < 0.2
    assert not sink.batches or sum(len(b) for b in sink.batches) < 200
    assert recorder.dropped == 0

    await recorder.aclose(grace_seconds=10)
    assert sum(len(b) for b in sink.batches) == 200


async def test_records_are_dropped_and_counted_when_the_queue_is_full():
    blocked = asyncio.Event()
    delivered: list[int] = []

    async def stuck_sink(batch: list[ApiCallRecord]) -> None:
        await blocked.wait()
        delivered.append(len(batch))

    recorder = BufferedRecorder(stuck_sink, max_batch=2, max_queue=5, flush_interval=0.01)
    recorder.start()
    recorder.record(rec(0))
    recorder.record(rec(1))
    await asyncio.sleep(0.05)  # the first batch is now stuck inside the sink

    started = time.perf_counter()
    for n in range(2, 12):
        recorder.record(rec(n))
    assert time.perf_counter() - started < 0.005

    assert recorder.pending == 5
    assert recorder.dropped == 5

    blocked.set()
    await recorder.aclose()
    assert sum(delivered) == 7


async def test_a_failing_sink_loses_the_batch_but_keeps_going():
    calls = 0

    async def flaky(batch: list[ApiCallRecord]) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("observability unreachable")

    recorder = BufferedRecorder(flaky, max_batch=2, flush_interval=60)
    for n in range(4):
        recorder.record(rec(n))
    await recorder.flush()

    assert recorder.lost == 2
    assert recorder.delivered == 2


async def test_records_after_close_are_dropped():
    sink = CollectingSink()
    recorder = BufferedRecorder(sink)
    recorder.start()
    await recorder.aclose()

    recorder.record(rec())

    assert recorder.dropped == 1
    assert sink.batches == []


def test_logging_recorder_writes_one_structured_line(caplog):
    caplog.set_level(logging.INFO, logger="echostats_spotify.calls")

    LoggingRecorder().record(rec(5))

    [line] = caplog.records
    assert line.getMessage() == "spotify call GET /v1/tracks/5 -> 200"
    assert line.api_call["endpoint"] == "/v1/tracks/5"
    assert line.api_call["caller"] == "catalog"
    assert line.api_call["service"] == "spotify"
    assert line.api_call["timestamp"] == "2026-05-01T00:00:00+00:00"


def test_fanout_recorder_isolates_failures():
    class Broken:
        def record(self, r: ApiCallRecord) -> None:
            raise RuntimeError("boom")

    class Keep:
        def __init__(self) -> None:
            self.records: list[ApiCallRecord] = []

        def record(self, r: ApiCallRecord) -> None:
            self.records.append(r)

    keep = Keep()
    FanoutRecorder(Broken(), keep).record(rec(1))

    assert keep.records == [rec(1)]
