"""ObservabilityService gRPC servicer: translates protobuf <-> use cases."""

from __future__ import annotations

import grpc

from echostats.observability.v1 import observability_service_pb2 as pb
from echostats.observability.v1 import observability_service_pb2_grpc as pb_grpc
from observability_service.release_check import ReleaseChecker


class ObservabilityServicer(pb_grpc.ObservabilityServiceServicer):
    """The observability context's RPCs."""

    def __init__(self, *, releases: ReleaseChecker) -> None:
        self._releases = releases

    async def CheckForUpdate(
        self, request: pb.CheckForUpdateRequest, context: grpc.aio.ServicerContext
    ) -> pb.CheckForUpdateResponse:
        info = await self._releases.check()
        response = pb.CheckForUpdateResponse(
            current_version=info.current_version, update_available=info.update_available
        )
        for field in ("latest_version", "release_url", "release_notes", "published_at"):
            value = getattr(info, field)
            if value is not None:
                setattr(response, field, value)
        return response
