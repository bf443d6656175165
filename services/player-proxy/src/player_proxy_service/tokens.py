"""Spotify access tokens from the auth service, with auth's refusals as domain errors.

`AuthTokenProvider` (grpc-kit) raises auth's gRPC errors as they come; inside this service
they must become domain errors so the error interceptor answers with the right status:
a user whose Spotify grant is gone (UNAUTHENTICATED, NOT_FOUND) is 401 at the gateway,
auth being down is 503.
"""

from __future__ import annotations

import grpc

from echostats_grpc.client import error_reason
from echostats_grpc.service_clients import AuthTokenProvider
from echostats_platform.errors import REASON_REAUTH_REQUIRED, Unauthenticated, Unavailable


class AuthTokens:
    """TokenProvider for the Spotify client: auth's GetAccessToken, errors translated."""

    def __init__(self, provider: AuthTokenProvider) -> None:
        self._provider = provider

    async def get_token(self, user_id: str, *, rejected_token: str | None = None) -> str:
        """The user's access token; a different one when `rejected_token` was refused."""
        try:
            return await self._provider.get_token(user_id, rejected_token=rejected_token)
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.NOT_FOUND):
                raise Unauthenticated(
                    "Spotify sign-in required", reason=error_reason(exc) or REASON_REAUTH_REQUIRED
                ) from exc
            if code in (
                grpc.StatusCode.UNAVAILABLE,
                grpc.StatusCode.DEADLINE_EXCEEDED,
                grpc.StatusCode.CANCELLED,
            ):
                raise Unavailable(
                    "auth service unavailable", reason=error_reason(exc) or None
                ) from exc
            raise
