"""AuthService gRPC servicer: translates protobuf <-> use cases; domain errors map in the kit."""

from __future__ import annotations

import grpc

from auth_service.credentials import CredentialService
from auth_service.login import LoginService, SignedIn
from auth_service.models import User
from auth_service.repository import UserRepository
from auth_service.sessions import SessionService
from echostats.auth.v1 import auth_service_pb2 as pb
from echostats.auth.v1 import auth_service_pb2_grpc as pb_grpc
from echostats_grpc.timestamps import to_timestamp
from echostats_platform.errors import InvalidArgument, NotFound


def _user_pb(user: User) -> pb.User:
    message = pb.User(
        id=user.id,
        spotify_id=user.spotify_id,
        display_name=user.display_name,
        reauth_required=user.reauth_required,
    )
    if user.image_url is not None:
        message.image_url = user.image_url
    if user.product is not None:
        message.product = user.product
    return message


def _session_pb(signed_in: SignedIn) -> pb.Session:
    return pb.Session(token=signed_in.token, expires_at=to_timestamp(signed_in.session.expires_at))


def _require_user_id(user_id: str) -> str:
    if not user_id:
        raise InvalidArgument("user_id is required")
    return user_id


class AuthServicer(pb_grpc.AuthServiceServicer):
    """The auth context's RPCs."""

    def __init__(
        self,
        *,
        login: LoginService,
        sessions: SessionService,
        credentials: CredentialService,
        users: UserRepository,
    ) -> None:
        self._login = login
        self._users = users
        self._sessions = sessions
        self._credentials = credentials

    async def StartLogin(
        self, request: pb.StartLoginRequest, context: grpc.aio.ServicerContext
    ) -> pb.StartLoginResponse:
        start = await self._login.start()
        return pb.StartLoginResponse(
            authorize_url=start.authorize_url,
            state=start.state,
            browser_binding=start.browser_binding,
            state_ttl_seconds=start.state_ttl_seconds,
        )

    async def CompleteLogin(
        self, request: pb.CompleteLoginRequest, context: grpc.aio.ServicerContext
    ) -> pb.CompleteLoginResponse:
        signed_in = await self._login.complete(
            code=request.code,
            state=request.state,
            browser_binding=request.browser_binding,
            spotify_error=request.spotify_error,
        )
        return pb.CompleteLoginResponse(
            user=_user_pb(signed_in.user), session=_session_pb(signed_in), created=signed_in.created
        )

    async def DevLogin(
        self, request: pb.DevLoginRequest, context: grpc.aio.ServicerContext
    ) -> pb.DevLoginResponse:
        signed_in = await self._login.dev_login()
        return pb.DevLoginResponse(user=_user_pb(signed_in.user), session=_session_pb(signed_in))

    async def AuthenticateSession(
        self, request: pb.AuthenticateSessionRequest, context: grpc.aio.ServicerContext
    ) -> pb.AuthenticateSessionResponse:
        user, session = await self._sessions.resolve(request.token)
        response = pb.AuthenticateSessionResponse(user=_user_pb(user), session_id=session.id)
        if user.credentials is not None:
            response.token_expires_at.CopyFrom(to_timestamp(user.credentials.expires_at))
        return response

    async def RevokeSession(
        self, request: pb.RevokeSessionRequest, context: grpc.aio.ServicerContext
    ) -> pb.RevokeSessionResponse:
        return pb.RevokeSessionResponse(revoked=await self._sessions.revoke(request.token))

    async def RefreshSpotifyToken(
        self, request: pb.RefreshSpotifyTokenRequest, context: grpc.aio.ServicerContext
    ) -> pb.RefreshSpotifyTokenResponse:
        expires_at = await self._credentials.refresh_now(_require_user_id(request.user_id))
        return pb.RefreshSpotifyTokenResponse(token_expires_at=to_timestamp(expires_at))

    async def GetAccessToken(
        self, request: pb.GetAccessTokenRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetAccessTokenResponse:
        token, expires_at = await self._credentials.get_access_token(
            _require_user_id(request.user_id),
            force_refresh=request.force_refresh,
            rejected_token=request.rejected_access_token,
        )
        return pb.GetAccessTokenResponse(access_token=token, expires_at=to_timestamp(expires_at))

    async def GetUser(
        self, request: pb.GetUserRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetUserResponse:
        user = await self._users.get(_require_user_id(request.user_id))
        if user is None:
            raise NotFound("User not found", reason="USER_NOT_FOUND")
        return pb.GetUserResponse(user=_user_pb(user))

    async def ListActiveUsers(
        self, request: pb.ListActiveUsersRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListActiveUsersResponse:
        page_size = request.page_size or 500
        if not 1 <= page_size <= 1000:
            raise InvalidArgument("page_size must be between 1 and 1000")
        ids = await self._users.list_active_ids(after=request.page_token or None, limit=page_size)
        next_token = ids[-1] if len(ids) == page_size else ""
        return pb.ListActiveUsersResponse(user_ids=ids, next_page_token=next_token)
