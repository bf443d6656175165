"""SessionService against a real FerretDB: open, resolve, revoke one, revoke all."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from pymongo.asynchronous.database import AsyncDatabase

from auth_service.models import SpotifyProfile, User
from auth_service.repository import SessionRepository, UserRepository
from auth_service.sessions import SessionService
from echostats_platform.errors import Unauthenticated

SECRET = "test-session-secret-0123456789-abcdefghij"
TTL_SECONDS = 3600


@pytest.fixture(scope="module")
async def users(database: AsyncDatabase) -> UserRepository:
    """The users repository, with its indexes."""
    repository = UserRepository(database)
    await repository.ensure_indexes()
    return repository


@pytest.fixture(scope="module")
async def sessions(database: AsyncDatabase, users: UserRepository) -> SessionService:
    """The session service on this module's database."""
    repository = SessionRepository(database)
    await repository.ensure_indexes()
    return SessionService(sessions=repository, users=users, secret=SECRET, ttl_seconds=TTL_SECONDS)


async def new_user(users: UserRepository) -> User:
    """A freshly created user with a unique Spotify id."""
    spotify_id = f"sess_{uuid.uuid4().hex[:10]}"
    profile = SpotifyProfile(
        spotify_id=spotify_id,
        display_name=f"User {spotify_id}",
        image_url=None,
        product="premium",
        email=None,
        country=None,
        account_id=None,
    )
    user, created = await users.upsert_profile(profile, datetime.now(UTC))
    assert created
    return user


async def reason_of_failed_resolve(sessions: SessionService, token: str) -> str:
    """The reason `resolve` gives for refusing `token` (fails the test if it accepts it)."""
    with pytest.raises(Unauthenticated) as refused:
        await sessions.resolve(token)
    return refused.value.reason


async def test_open_then_resolve(sessions: SessionService, users: UserRepository) -> None:
    user = await new_user(users)
    now = datetime.now(UTC)

    token, session = await sessions.open(user, now)
    resolved_user, resolved_session = await sessions.resolve(token)

    assert resolved_user.id == user.id
    assert resolved_user.spotify_id == user.spotify_id
    assert resolved_session.id == session.id
    assert resolved_session.revoked_at is None
    assert session.expires_at == now + timedelta(seconds=TTL_SECONDS)
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], issuer="echostats")
    assert claims["sub"] == user.id and claims["sid"] == session.id


async def test_revoke_ends_only_that_session(
    sessions: SessionService, users: UserRepository
) -> None:
    user = await new_user(users)
    token, _ = await sessions.open(user, datetime.now(UTC))
    other_token, _ = await sessions.open(user, datetime.now(UTC))

    assert await sessions.revoke(token) is True
    # Idempotent: revoking again changes nothing and says so.
    assert await sessions.revoke(token) is False

    assert await reason_of_failed_resolve(sessions, token) == "SESSION_ENDED"
    resolved_user, _ = await sessions.resolve(other_token)
    assert resolved_user.id == user.id


async def test_revoke_all_ends_every_session_of_that_user_only(
    sessions: SessionService, users: UserRepository
) -> None:
    user, bystander = await new_user(users), await new_user(users)
    tokens = [(await sessions.open(user, datetime.now(UTC)))[0] for _ in range(3)]
    bystander_token, _ = await sessions.open(bystander, datetime.now(UTC))
    assert await sessions.revoke(tokens[0]) is True

    # The one already revoked is not counted again.
    assert await sessions.revoke_all(user.id) == 2

    for token in tokens:
        assert await reason_of_failed_resolve(sessions, token) == "SESSION_ENDED"
    resolved_user, _ = await sessions.resolve(bystander_token)
    assert resolved_user.id == bystander.id
    assert await sessions.revoke_all(user.id) == 0


async def test_forged_altered_and_expired_tokens_are_refused(
    sessions: SessionService, users: UserRepository
) -> None:
    user = await new_user(users)
    token, session = await sessions.open(user, datetime.now(UTC))
    forged = jwt.encode(
        {"iss": "echostats", "sub": user.id, "sid": session.id, "exp": 4_102_444_800},
        "someone-elses-secret-0123456789-abcdefgh",
        algorithm="HS256",
    )
    header, payload, signature = token.split(".")
    altered = f"{header}.{payload}.{signature[:-4]}AAAA"
    long_ago = datetime.now(UTC) - timedelta(seconds=TTL_SECONDS * 2)
    expired, _ = await sessions.open(user, long_ago)

    for bad in (forged, altered, expired, "not-a-jwt", "", "x" * 5000):
        assert await reason_of_failed_resolve(sessions, bad) == "INVALID_SESSION"
    # A token that does not verify revokes nothing.
    assert await sessions.revoke(forged) is False
    resolved_user, _ = await sessions.resolve(token)
    assert resolved_user.id == user.id
