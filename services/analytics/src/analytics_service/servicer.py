"""AnalyticsService gRPC servicer: protobuf <-> use cases; RPCs arrive with their issue."""

from __future__ import annotations

from echostats.analytics.v1 import analytics_service_pb2_grpc as pb_grpc


class AnalyticsServicer(pb_grpc.AnalyticsServiceServicer):
    """The analytics context's RPCs."""
