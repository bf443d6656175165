"""CatalogService gRPC servicer: protobuf <-> use cases; RPCs arrive with their issue."""

from __future__ import annotations

from echostats.catalog.v1 import catalog_service_pb2_grpc as pb_grpc


class CatalogServicer(pb_grpc.CatalogServiceServicer):
    """The catalog context's RPCs."""
