"""The auth service's MongoDB collections (users, sessions) and their indexes.

Lookups go by `_id` or by the unique `spotify_id`, so they stay cheap on MongoDB and are the
only filters FerretDB pushes down to SQLite.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId
from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from auth_service.models import Session, SpotifyProfile, StoredCredentials, User


def _user_from_doc(doc: dict[str, Any]) -> User:
    creds = doc.get("spotify_credentials")
    return User(
        id=str(doc["_id"]),
        spotify_id=doc["spotify_id"],
        display_name=doc.get("display_name") or doc["spotify_id"],
        image_url=doc.get("image_url"),
        product=doc.get("product"),
        reauth_required=bool(doc.get("reauth_required", False)),
        credentials=StoredCredentials(
            access_token_encrypted=creds["access_token"],
            refresh_token_encrypted=creds["refresh_token"],
            expires_at=creds["expires_at"],
            scope=creds.get("scope", ""),
        )
        if creds
        else None,
    )


def _object_id(user_id: str) -> ObjectId | None:
    try:
        return ObjectId(user_id)
    except (InvalidId, TypeError):
        return None


class UserRepository:
    """Users and their encrypted Spotify credentials."""

    def __init__(self, database: AsyncDatabase) -> None:
        self._users = database["users"]

    async def ensure_indexes(self) -> None:
        """Create the indexes the queries rely on (idempotent)."""
        await self._users.create_index("spotify_id", unique=True, name="spotify_id_unique")

    async def get(self, user_id: str) -> User | None:
        """One user by id, or None (also for malformed ids)."""
        oid = _object_id(user_id)
        if oid is None:
            return None
        doc = await self._users.find_one({"_id": oid})
        return _user_from_doc(doc) if doc else None

    async def upsert_profile(self, profile: SpotifyProfile, now: datetime) -> tuple[User, bool]:
        """Create or update the user for a Spotify account; returns (user, created)."""
        fields = {
            "display_name": profile.display_name,
            "image_url": profile.image_url,
            "product": profile.product,
            "email": profile.email,
            "country": profile.country,
            "account_id": profile.account_id,
            "updated_at": now,
            "last_login_at": now,
        }
        existing = await self._users.find_one_and_update(
            {"spotify_id": profile.spotify_id},
            {"$set": fields},
            return_document=ReturnDocument.AFTER,
        )
        if existing is not None:
            return _user_from_doc(existing), False
        doc = {"_id": ObjectId(), "spotify_id": profile.spotify_id, "created_at": now, **fields}
        try:
            await self._users.insert_one(doc)
        except DuplicateKeyError:
            # A concurrent first login of the same account won the insert; update theirs.
            return await self.upsert_profile(profile, now)
        return _user_from_doc(doc), True

    async def save_credentials(self, user_id: str, credentials: StoredCredentials) -> None:
        """Store freshly issued tokens and clear any re-authentication flag."""
        await self._users.update_one(
            {"_id": ObjectId(user_id)},
            {
                "$set": {
                    "spotify_credentials": {
                        "access_token": credentials.access_token_encrypted,
                        "refresh_token": credentials.refresh_token_encrypted,
                        "expires_at": credentials.expires_at,
                        "scope": credentials.scope,
                    },
                    "reauth_required": False,
                }
            },
        )

    async def list_active_ids(self, *, after: str | None, limit: int) -> list[str]:
        """Ids of users with usable Spotify credentials, in id order, after `after`."""
        query: dict[str, Any] = {
            "spotify_credentials": {"$exists": True},
            "reauth_required": {"$ne": True},
        }
        oid = _object_id(after) if after else None
        if oid is not None:
            query["_id"] = {"$gt": oid}
        cursor = self._users.find(query, {"_id": 1}).sort("_id", 1).limit(limit)
        return [str(doc["_id"]) async for doc in cursor]

    async def mark_reauth_required(self, user_id: str, now: datetime) -> None:
        """Spotify refused the refresh token: the user must sign in again."""
        await self._users.update_one(
            {"_id": ObjectId(user_id)},
            {"$set": {"reauth_required": True, "reauth_marked_at": now}},
        )


def _session_from_doc(doc: dict[str, Any]) -> Session:
    return Session(
        id=doc["_id"],
        user_id=doc["user_id"],
        created_at=doc["created_at"],
        expires_at=doc["expires_at"],
        revoked_at=doc.get("revoked_at"),
    )


class SessionRepository:
    """Server-side sessions, so logout and forced re-authentication really end them."""

    def __init__(self, database: AsyncDatabase) -> None:
        self._sessions = database["sessions"]

    async def ensure_indexes(self) -> None:
        """Create the indexes the queries rely on (idempotent)."""
        await self._sessions.create_index("user_id", name="user_id")

    async def create(self, session: Session) -> None:
        """Store a new session."""
        await self._sessions.insert_one(
            {
                "_id": session.id,
                "user_id": session.user_id,
                "created_at": session.created_at,
                "expires_at": session.expires_at,
                "revoked_at": None,
            }
        )

    async def get(self, session_id: str) -> Session | None:
        """One session by id, or None."""
        doc = await self._sessions.find_one({"_id": session_id})
        return _session_from_doc(doc) if doc else None

    async def revoke(self, session_id: str, now: datetime) -> bool:
        """Revoke one session; False when it did not exist or was already revoked."""
        result = await self._sessions.update_one(
            {"_id": session_id, "revoked_at": None}, {"$set": {"revoked_at": now}}
        )
        return result.modified_count == 1

    async def revoke_all_for_user(self, user_id: str, now: datetime) -> int:
        """Revoke every active session of a user; returns how many."""
        result = await self._sessions.update_many(
            {"user_id": user_id, "revoked_at": None}, {"$set": {"revoked_at": now}}
        )
        return result.modified_count

    async def delete_expired(self, now: datetime) -> int:
        """Drop sessions past their expiry (FerretDB has no TTL indexes)."""
        result = await self._sessions.delete_many({"expires_at": {"$lt": now}})
        return result.deleted_count
