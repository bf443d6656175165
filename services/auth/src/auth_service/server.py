"""Builds the auth service: clients, repositories, use cases, servicer and the gRPC server."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from auth_service.credentials import CredentialService
from auth_service.login import FreshGrantTokens, LoginService
from auth_service.oauth_state import OAuthStateStore
from auth_service.repository import SessionRepository, UserRepository
from auth_service.servicer import AuthServicer
from auth_service.sessions import SessionService
from auth_service.settings import AuthSettings
from echostats.auth.v1 import auth_service_pb2, auth_service_pb2_grpc
from echostats_grpc.server import BuiltServer, build_server
from echostats_platform.crypto import TokenCipher
from echostats_platform.mongo import create_mongo_client
from echostats_platform.redis import create_redis
from echostats_spotify.accounts import SpotifyAccountsClient
from echostats_spotify.client import SpotifyClient
from echostats_spotify.factory import create_http_client
from echostats_spotify.recording import LoggingRecorder

SERVICE_NAME = auth_service_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name


@contextlib.asynccontextmanager
async def open_server(
    settings: AuthSettings, *, port: int | None = None
) -> AsyncIterator[BuiltServer]:
    """Wire the service and yield its (not yet started) server; closes clients on exit."""
    mongo = create_mongo_client(settings, app_name="echostats-auth")
    redis = create_redis(settings)
    http = create_http_client(settings)
    try:
        database = mongo[settings.mongodb_database]
        users = UserRepository(database)
        session_repo = SessionRepository(database)
        with contextlib.suppress(Exception):
            # Indexes are created again on the next start if the database is down now.
            await users.ensure_indexes()
            await session_repo.ensure_indexes()
        recorder = LoggingRecorder()
        accounts = SpotifyAccountsClient(settings, http, recorder, caller="auth")
        fresh_tokens = FreshGrantTokens()
        spotify = SpotifyClient(settings, http, recorder, fresh_tokens, caller="auth")
        sessions = SessionService(
            sessions=session_repo,
            users=users,
            secret=settings.session_secret,
            ttl_seconds=settings.session_ttl_seconds,
        )
        credentials = CredentialService(
            users=users,
            sessions=sessions,
            cipher=TokenCipher(settings.token_keys()),
            accounts=accounts,
            redis=redis,
            refresh_margin_seconds=settings.access_token_refresh_margin_seconds,
        )
        login = LoginService(
            states=OAuthStateStore(redis, settings.oauth_state_ttl_seconds),
            accounts=accounts,
            spotify=spotify,
            fresh_tokens=fresh_tokens,
            users=users,
            sessions=sessions,
            credentials=credentials,
            scopes=settings.spotify_scopes,
            dev_login_allowed=settings.dev_login_allowed,
        )
        servicer = AuthServicer(
            login=login, sessions=sessions, credentials=credentials, users=users
        )
        built = build_server(
            registrars=[
                lambda s: auth_service_pb2_grpc.add_AuthServiceServicer_to_server(servicer, s)
            ],
            service_names=[SERVICE_NAME],
            host=settings.grpc_host,
            port=settings.grpc_port if port is None else port,
        )
        yield built
    finally:
        await http.aclose()
        await redis.aclose()
        await mongo.close()
