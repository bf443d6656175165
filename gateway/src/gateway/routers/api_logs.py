"""/api/v1/api-logs: the user's outbound Spotify calls (served by observability)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from echostats.observability.v1 import observability_service_pb2 as obs_pb
from gateway.dependencies import Clients, CurrentUser
from gateway.paging import Page, page_count
from gateway.schemas.api_logs import ApiLogItem, ApiLogPage, ApiLogStats, EndpointCountOut
from gateway.timestamps import iso_or_none

router = APIRouter(prefix="/api/v1/api-logs", tags=["api-logs"])


@router.get("", response_model=ApiLogPage)
async def list_api_logs(
    user: CurrentUser,
    clients: Clients,
    page: Page = 1,
    limit: Annotated[int, Query(ge=1, le=200, description="Items per page (1-200)")] = 50,
    service: Annotated[str | None, Query(max_length=64, description="e.g. spotify")] = None,
    status_min: Annotated[int | None, Query(ge=0, le=999)] = None,
    status_max: Annotated[int | None, Query(ge=0, le=999)] = None,
    method: Annotated[str | None, Query(max_length=16, description="GET, POST, ...")] = None,
    endpoint_contains: Annotated[str | None, Query(max_length=200)] = None,
) -> ApiLogPage:
    """Paginated outbound API calls made on the user's behalf, newest first."""
    request = obs_pb.ListApiCallsRequest(user_id=user.id, page=page, page_size=limit)
    if service:
        request.service = service
    if status_min is not None:
        request.status_min = status_min
    if status_max is not None:
        request.status_max = status_max
    if method:
        request.method = method
    if endpoint_contains:
        request.endpoint_contains = endpoint_contains
    response = await clients.observability.ListApiCalls(request)
    return ApiLogPage(
        items=[
            ApiLogItem(
                id=call.id,
                service=call.service,
                method=call.method,
                endpoint=call.endpoint,
                status_code=call.status_code,
                latency_ms=round(call.latency_ms, 1),
                error=call.error if call.HasField("error") else None,
                timestamp=iso_or_none(call, "timestamp") or "",
            )
            for call in response.calls
        ],
        total=response.total,
        page=page,
        limit=limit,
        pages=page_count(response.total, limit),
    )


@router.get("/stats", response_model=ApiLogStats)
async def api_log_stats(user: CurrentUser, clients: Clients) -> ApiLogStats:
    """Aggregates over the user's outbound API calls."""
    stats = await clients.observability.GetApiCallStats(
        obs_pb.GetApiCallStatsRequest(user_id=user.id)
    )
    return ApiLogStats(
        total_calls=stats.total_calls,
        error_count=stats.error_count,
        rate_limit_count=stats.rate_limit_count,
        success_rate=stats.success_rate,
        avg_latency_ms=stats.avg_latency_ms,
        status_distribution=dict(stats.status_distribution),
        top_endpoints=[
            EndpointCountOut(endpoint=item.endpoint, count=item.count)
            for item in stats.top_endpoints
        ],
    )
