"""PlayerProxyService gRPC servicer: protobuf <-> use cases; RPCs arrive with their issue."""

from __future__ import annotations

from echostats.player_proxy.v1 import player_proxy_service_pb2_grpc as pb_grpc


class PlayerProxyServicer(pb_grpc.PlayerProxyServiceServicer):
    """The player-proxy context's RPCs."""
