"""Builds the auth service: clients, repositories, use cases, servicer and the gRPC server."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from auth_service.after_login import AfterLogin
from auth_service.credentials import CredentialService
from auth_service.login import FreshGrantTokens, LoginService
from auth_service.oauth_state import OAuthStateStore
from auth_service.repository import SessionRepository, UserRepository
from auth_service.servicer import AuthServicer
from auth_service.sessions import SessionService
from auth_service.settings import AuthSettings
from echostats.auth.v1 import auth_service_pb2, auth_service_pb2_grpc
from echostats.ingestion.v1.ingestion_service_pb2_grpc import IngestionServiceStub
from echostats.observability.v1.observability_service_pb2_grpc import ObservabilityServiceStub
from echostats_grpc.client import create_channel
from echostats_grpc.server import BuiltServer, build_server
from echostats_grpc.service_clients import ObservabilityCallSink
from echostats_platform.crypto import TokenCipher
from echostats_platform.mongo import create_mongo_client, ensure_indexes_in_background
from echostats_platform.redis import create_redis
from echostats_spotify.accounts import SpotifyAccountsClient
from echostats_spotify.client import SpotifyClient
from echostats_spotify.factory import create_http_client
from echostats_spotify.recording import BufferedRecorder, FanoutRecorder, LoggingRecorder

SERVICE_NAME = auth_service_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name


@contextlib.asynccontextmanager
async def open_server(
    settings: AuthSettings, *, port: int | None = None
) -> AsyncIterator[BuiltServer]:
    """Wire the service and yield its (not yet started) server; closes clients on exit."""
    async with contextlib.AsyncExitStack() as resources:
        mongo = create_mongo_client(settings, app_name="echostats-auth")
        resources.push_async_callback(mongo.close)
        redis = create_redis(settings)
        resources.push_async_callback(redis.aclose)
        http = create_http_client(settings)
        resources.push_async_callback(http.aclose)
        ingestion_channel = create_channel(
            settings.ingestion_addr, default_timeout=settings.grpc_default_timeout_seconds
        )
        resources.push_async_callback(ingestion_channel.close)
        observability_channel = create_channel(
            settings.observability_addr, default_timeout=settings.grpc_default_timeout_seconds
        )
        resources.push_async_callback(observability_channel.close)
        # Every Spotify call goes to the log line and, batched, to observability's API log.
        call_log = BufferedRecorder(
            ObservabilityCallSink(ObservabilityServiceStub(observability_channel))
        )
        call_log.start()
        resources.push_async_callback(call_log.aclose)
        recorder = FanoutRecorder(LoggingRecorder(), call_log)

        database = mongo[settings.mongodb_database]
        users = UserRepository(database)
        session_repo = SessionRepository(database)
        indexes = ensure_indexes_in_background(users.ensure_indexes, session_repo.ensure_indexes)
        resources.callback(indexes.cancel)

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
            after_login=AfterLogin(IngestionServiceStub(ingestion_channel)),
            scopes=settings.spotify_scopes,
            dev_login_allowed=settings.dev_login_allowed,
        )
        servicer = AuthServicer(
            login=login, sessions=sessions, credentials=credentials, users=users
        )
        yield build_server(
            registrars=[
                lambda s: auth_service_pb2_grpc.add_AuthServiceServicer_to_server(servicer, s)
            ],
            service_names=[SERVICE_NAME],
            host=settings.grpc_host,
            port=settings.grpc_port if port is None else port,
        )
