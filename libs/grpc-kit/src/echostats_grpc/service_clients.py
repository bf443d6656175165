"""Adapters other services use to reach auth and observability through their gRPC APIs.

`AuthTokenProvider` gives the shared Spotify client its access tokens (auth refreshes them,
one refresh per user at a time); `ObservabilityCallSink` ships Spotify call records to the
API call log in batches (used behind `echostats_spotify.BufferedRecorder`, so a slow log
never slows a call).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from echostats.auth.v1 import auth_service_pb2, auth_service_pb2_grpc
from echostats.observability.v1 import observability_service_pb2 as obs_pb
from echostats.observability.v1 import observability_service_pb2_grpc as obs_grpc
from echostats_grpc.timestamps import to_timestamp


class CallRecordLike(Protocol):
    """The fields of echostats_spotify.ApiCallRecord the sink reads."""

    service: str
    caller: str
    method: str
    endpoint: str
    status_code: int
    latency_ms: float
    error: str | None
    request_id: str | None
    user_id: str | None
    timestamp: object


class AuthTokenProvider:
    """TokenProvider backed by auth's GetAccessToken RPC."""

    def __init__(self, auth: auth_service_pb2_grpc.AuthServiceStub, *, timeout: float = 15.0):
        self._auth = auth
        self._timeout = timeout

    async def get_token(self, user_id: str, *, rejected_token: str | None = None) -> str:
        """A valid access token for `user_id` (auth errors propagate as gRPC errors)."""
        response = await self._auth.GetAccessToken(
            auth_service_pb2.GetAccessTokenRequest(
                user_id=user_id,
                force_refresh=rejected_token is not None,
                rejected_access_token=rejected_token or "",
            ),
            timeout=self._timeout,
        )
        return response.access_token


class ObservabilityCallSink:
    """Async sink for BufferedRecorder: one RecordApiCalls RPC per batch."""

    def __init__(
        self, observability: obs_grpc.ObservabilityServiceStub, *, timeout: float = 10.0
    ) -> None:
        self._observability = observability
        self._timeout = timeout

    async def __call__(self, records: Sequence[CallRecordLike]) -> None:
        """Send one batch; failures propagate so the recorder can count them."""
        calls = []
        for record in records:
            call = obs_pb.ApiCall(
                service=record.service,
                caller=record.caller,
                method=record.method,
                endpoint=record.endpoint,
                status_code=record.status_code,
                latency_ms=record.latency_ms,
                request_id=record.request_id or "",
                user_id=record.user_id or "",
                timestamp=to_timestamp(record.timestamp),  # type: ignore[arg-type]
            )
            if record.error is not None:
                call.error = record.error
            calls.append(call)
        if calls:
            await self._observability.RecordApiCalls(
                obs_pb.RecordApiCallsRequest(calls=calls), timeout=self._timeout
            )
