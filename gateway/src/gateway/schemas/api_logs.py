"""Response models of /api/v1/api-logs."""

from __future__ import annotations

from pydantic import BaseModel


class ApiLogItem(BaseModel):
    id: str
    service: str
    method: str
    endpoint: str
    status_code: int
    latency_ms: float
    error: str | None
    timestamp: str


class ApiLogPage(BaseModel):
    items: list[ApiLogItem]
    total: int
    page: int
    limit: int
    pages: int


class EndpointCountOut(BaseModel):
    endpoint: str
    count: int


class ApiLogStats(BaseModel):
    total_calls: int
    error_count: int
    rate_limit_count: int
    success_rate: float
    avg_latency_ms: float
    status_distribution: dict[str, int]
    top_endpoints: list[EndpointCountOut]
