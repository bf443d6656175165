"""MongoDB client factory: PyMongo's native async API (AsyncMongoClient), not motor.

motor reached end of life in May 2026; PyMongo's async client is its official successor
and speaks to MongoDB and FerretDB alike.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from echostats_platform.settings import CommonSettings

log = logging.getLogger(__name__)


def create_mongo_client(settings: CommonSettings, *, app_name: str) -> AsyncMongoClient:
    """Build the process's one client; timeouts are short so outages surface as 503s."""
    return AsyncMongoClient(
        settings.mongodb_uri,
        appname=app_name,
        tz_aware=True,
        serverSelectionTimeoutMS=settings.mongodb_timeout_ms,
        connectTimeoutMS=settings.mongodb_timeout_ms,
        socketTimeoutMS=max(settings.mongodb_timeout_ms * 4, 10_000),
    )


async def ping(client: AsyncMongoClient) -> bool:
    """True when the server answers `ping`."""
    try:
        await client.admin.command("ping")
    except Exception:
        return False
    return True


async def upsert_by_id(collection: AsyncCollection, doc_id: Any, update: dict[str, Any]) -> None:
    """`update_one({_id: doc_id}, update, upsert=True)`, safe against a racing first insert.

    Two upserts of a new `_id` can both try to insert it; the loser's DuplicateKeyError means
    the document exists now, so the same update is applied again, as an update.
    """
    try:
        await collection.update_one({"_id": doc_id}, update, upsert=True)
    except DuplicateKeyError:
        await collection.update_one({"_id": doc_id}, update, upsert=True)


async def is_ferretdb(database: AsyncDatabase) -> bool:
    """True when the server is FerretDB (no TTL indexes, limited aggregation)."""
    info = await database.client.admin.command("buildInfo")
    return "ferretdbVersion" in info


def ensure_indexes_in_background(
    *creators: Callable[[], Awaitable[None]], retry_seconds: float = 5.0
) -> asyncio.Task[None]:
    """Create indexes now, or keep retrying in the background while the database is down.

    A service must start (and answer health) even when MongoDB is briefly unavailable;
    its indexes then appear as soon as the database answers. Cancel the task on shutdown.
    """

    async def run() -> None:
        while True:
            try:
                for create in creators:
                    await create()
            except Exception as exc:
                log.warning("index creation deferred", extra={"error": str(exc)[:200]})
                await asyncio.sleep(retry_seconds)
            else:
                return

    return asyncio.create_task(run(), name="ensure-indexes")
