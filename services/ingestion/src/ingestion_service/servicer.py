"""IngestionService gRPC servicer: protobuf <-> use cases; RPCs arrive with their issue."""

from __future__ import annotations

from echostats.ingestion.v1 import ingestion_service_pb2_grpc as pb_grpc


class IngestionServicer(pb_grpc.IngestionServiceServicer):
    """The ingestion context's RPCs."""
