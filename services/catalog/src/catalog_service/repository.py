"""The catalog's MongoDB collections (database `echostats_catalog`) and their queries.

- `tracks`, `artists`, `albums`: Spotify's objects, `_id` = Spotify id, `doc_id` = catalog's
  own 24-hex id (set once), the fields of `models.py`.
- `track_stubs`: placeholders for track ids seen in plays but not enriched yet (names and
  ids the play carried; `missing: true` once Spotify said the id is unknown). A track's
  `doc_id` is born here and carried into `tracks`.
- `audio_features`: `_id` = track id, `features` (absent when Spotify had none) and
  `checked_at`.
- `named_tracks`: tracks known only by names (account-data imports), `_id` = name key.
- `playlists`: a user's synced playlists, `_id` = "<user_id>:<spotify playlist id>"
  (so one user's copy never collides with another's), indexed by (user_id, position).
- `top_items`: `_id` = user id, `rankings` = {"<tracks|artists>:<time range>": [ids]}.

Batch reads are one `{_id: {$in: [...]}}` query per 500 ids on MongoDB, and concurrent
`_id` reads or one `$in` on FerretDB, which scans the collection for `$in`
(`_read_by_ids`). Writes are per-document upserts keyed by `_id` (idempotent; concurrent
writers converge), not `bulk_write` (see `_write_each`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from bson import ObjectId
from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from catalog_service.models import SeenTrack, name_key
from echostats_platform.mongo import is_ferretdb, upsert_by_id

# Concurrent single-document writes: enough to hide round trips, few enough to leave the
# connection pool to other requests.
_WRITE_CONCURRENCY = 8
# Ids per `$in` read (MongoDB); on FerretDB, up to this many ids are read one by one.
_IN_CHUNK = 500
_ONE_BY_ONE_MAX = 64
_DUPLICATE_KEY = 11000


def new_doc_id() -> str:
    """A fresh catalog id (24 hex characters)."""
    return str(ObjectId())


async def _read_by_ids(
    collection: AsyncCollection, ids: Iterable[str], *, ferretdb: bool
) -> dict[str, dict[str, Any]]:
    """{_id: document} for the ids that exist.

    MongoDB: one `$in` query per chunk of `_IN_CHUNK` ids (index lookups). FerretDB
    evaluates `$in` in Go over a scan of the whole collection, and reads by `_id` through
    the index the FerretDB launcher adds: a few ids are read one by one (concurrently),
    many in a single `$in` (one scan, however many ids).
    """
    unique = list(dict.fromkeys(i for i in ids if i))
    if not unique:
        return {}
    chunk_size = _IN_CHUNK
    if ferretdb:
        if len(unique) <= _ONE_BY_ONE_MAX:
            docs = await asyncio.gather(*(collection.find_one({"_id": i}) for i in unique))
            return {doc["_id"]: doc for doc in docs if doc is not None}
        chunk_size = len(unique)
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(unique), chunk_size):
        chunk = unique[start : start + chunk_size]
        async for doc in collection.find({"_id": {"$in": chunk}}):
            found[doc["_id"]] = doc
    return found


class Noted(NamedTuple):
    """What noting seen tracks found: placeholders created, ids to enrich, enriched tracks."""

    new: list[str]
    to_enrich: list[str]
    enriched: dict[str, dict[str, Any]]


class Write(NamedTuple):
    """One single-document update: filter, update document, upsert or not."""

    filter: dict[str, Any]
    update: dict[str, Any]
    upsert: bool = False


async def _write_each(collection: AsyncCollection, writes: Sequence[Write]) -> None:
    """Apply single-document updates, a few at a time.

    Not `bulk_write`: FerretDB v1.24 answers some mixed update/upsert batches without
    `nModified`, which PyMongo cannot merge (KeyError), and it applies them one document
    at a time anyway.
    """
    if not writes:
        return
    gate = asyncio.Semaphore(_WRITE_CONCURRENCY)

    async def one(write: Write) -> None:
        async with gate:
            if write.upsert:
                await upsert_by_id(collection, write.filter["_id"], write.update)
            else:
                await collection.update_one(write.filter, write.update)

    await asyncio.gather(*(one(w) for w in writes))


def _upsert(entity_id: str, fields: Mapping[str, Any], now: datetime) -> Write:
    return Write(
        {"_id": entity_id},
        {"$set": {**fields, "updated_at": now}, "$setOnInsert": {"doc_id": new_doc_id()}},
        upsert=True,
    )


class CatalogRepository:
    """Tracks (enriched + placeholders + audio features), artists, albums, name-only tracks.

    Enrichment writes are inserts: a track's Spotify object goes into `tracks` once, its
    audio features into `audio_features` once, and its placeholder in `track_stubs` is left
    as it was (its `doc_id` is carried over, so the REST id never changes). Only a second
    answer for the same id (a refresh) updates a document. On FerretDB an insert costs one
    SQL INSERT while an update is a read-modify-write per document, which made 1,000-track
    enrichment 120 s with placeholders updated in place.
    """

    def __init__(self, database: AsyncDatabase) -> None:
        self._database = database
        # Whether the server is FerretDB: asked on the first read (`buildInfo`), not at
        # start-up, so the service starts while the database is still coming up.
        self._ferretdb: bool | None = None
        self.tracks = database["tracks"]
        self.track_stubs = database["track_stubs"]
        self.audio_features = database["audio_features"]
        self.artists = database["artists"]
        self.albums = database["albums"]
        self.named_tracks = database["named_tracks"]

    async def _get_many(
        self, collection: AsyncCollection, ids: Iterable[str]
    ) -> dict[str, dict[str, Any]]:
        """{_id: document} for the ids that exist (see `_read_by_ids`)."""
        if self._ferretdb is None:
            self._ferretdb = await is_ferretdb(self._database)
        return await _read_by_ids(collection, ids, ferretdb=self._ferretdb)

    async def _put(
        self,
        collection: AsyncCollection,
        fields_by_id: Mapping[str, Mapping[str, Any]],
        now: datetime,
        *,
        known: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> None:
        """Insert new ids, update stored ones (`known`: what the caller read already)."""
        existing = known if known is not None else await self._get_many(collection, fields_by_id)
        await _insert_or_update(collection, fields_by_id, now, existing=existing, **options)

    async def get_tracks(self, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Stored tracks by Spotify id: enriched ones, else placeholders; with features."""
        wanted = list(dict.fromkeys(i for i in ids if i))
        found = await self._get_many(self.tracks, wanted)
        stubs = await self._get_many(self.track_stubs, [i for i in wanted if i not in found])
        found.update(stubs)
        features = await self._get_many(self.audio_features, list(found))
        for track_id, row in features.items():
            doc = found[track_id]
            doc["features_checked_at"] = row.get("checked_at")
            if row.get("features"):
                doc["audio_features"] = row["features"]
        return found

    async def features_checked(self, ids: Iterable[str]) -> set[str]:
        """The track ids whose audio features were asked of Spotify already."""
        return set(await self._get_many(self.audio_features, ids))

    async def get_artists(self, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Stored artists by Spotify id."""
        return await self._get_many(self.artists, ids)

    async def get_albums(self, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Stored albums by Spotify id."""
        return await self._get_many(self.albums, ids)

    async def note_seen(self, seen: Sequence[SeenTrack], now: datetime) -> Noted:
        """Store placeholders for track ids not stored yet.

        A placeholder holds what the play said (names, artist and album ids); it is never
        overwritten. Name-only tracks go to `named_tracks`. The enriched tracks among the
        seen ones come back too: their artists or audio features may still be missing.
        """
        with_id = {s.spotify_id: s for s in seen if s.spotify_id}
        enriched = await self._get_many(self.tracks, with_id)
        stubs = await self._get_many(self.track_stubs, [i for i in with_id if i not in enriched])
        new_docs = []
        for spotify_id, track in with_id.items():
            if spotify_id in enriched or spotify_id in stubs:
                continue
            artists = [{"spotify_id": a, "name": ""} for a in track.artist_ids]
            if len(artists) == 1 and track.artist_name:
                artists[0]["name"] = track.artist_name
            doc: dict[str, Any] = {
                "_id": spotify_id,
                "doc_id": new_doc_id(),
                "name": track.name,
                "artists": artists,
                "enriched": False,
                "first_seen_at": now,
            }
            if track.album_id:
                doc["album"] = {"spotify_id": track.album_id, "name": track.album_name}
            new_docs.append(doc)
        await _insert_new(self.track_stubs, new_docs)
        named = {name_key(s.artist_name, s.name): s for s in seen if not s.spotify_id and s.name}
        if named:
            known = await self._get_many(self.named_tracks, named)
            await _insert_new(
                self.named_tracks,
                [
                    {"_id": key, "name": s.name, "artist_name": s.artist_name, "first_seen_at": now}
                    for key, s in named.items()
                    if key not in known
                ],
            )
        new = [d["_id"] for d in new_docs]
        to_enrich = [
            i for i in with_id if i not in enriched and not stubs.get(i, {}).get("missing")
        ]
        return Noted(new, to_enrich, enriched)

    async def store_tracks(
        self, fields_by_id: Mapping[str, Mapping[str, Any]], now: datetime
    ) -> None:
        """Store enriched tracks (placeholders keep their `doc_id` for the REST id)."""
        stubs = await self._get_many(self.track_stubs, fields_by_id)
        await self._put(
            self.tracks,
            {i: {**f, "missing": False} for i, f in fields_by_id.items()},
            now,
            doc_ids={i: d["doc_id"] for i, d in stubs.items() if d.get("doc_id")},
        )

    async def store_artists(
        self, fields_by_id: Mapping[str, Mapping[str, Any]], now: datetime
    ) -> None:
        """Store enriched artists."""
        await self._put(self.artists, fields_by_id, now)

    async def store_albums(
        self, fields_by_id: Mapping[str, Mapping[str, Any]], now: datetime
    ) -> None:
        """Store enriched albums (ones already enriched are left as they are)."""
        known = await self._get_many(self.albums, fields_by_id)
        await self._put(
            self.albums,
            {i: f for i, f in fields_by_id.items() if not known.get(i, {}).get("enriched")},
            now,
            known=known,
        )

    async def store_audio_features(
        self, features_by_id: Mapping[str, Mapping[str, Any] | None], now: datetime
    ) -> None:
        """Store audio features (None: Spotify has none for the track; remembered as checked)."""
        rows: dict[str, dict[str, Any]] = {}
        for track_id, features in features_by_id.items():
            rows[track_id] = {"checked_at": now}
            if features is not None:
                rows[track_id]["features"] = dict(features)
        await self._put(self.audio_features, rows, now, with_doc_id=False)

    async def mark_missing(self, collection: str, ids: Iterable[str], now: datetime) -> None:
        """Remember that Spotify does not know these track ids (on their placeholders)."""
        await _write_each(
            self.track_stubs,
            [Write({"_id": i}, {"$set": {"missing": True, "updated_at": now}}) for i in ids],
        )

    async def tracks_by_artists(
        self, artist_ids: Sequence[str], limit: int
    ) -> list[dict[str, Any]]:
        """Enriched tracks credited to any of the artists, with their audio features."""
        cursor = self.tracks.find({"artists.spotify_id": {"$in": list(artist_ids)}}).limit(limit)
        docs = [doc async for doc in cursor]
        features = await self._get_many(self.audio_features, [d["_id"] for d in docs])
        for doc in docs:
            row = features.get(doc["_id"]) or {}
            if row.get("features"):
                doc["audio_features"] = row["features"]
        return docs

    async def artists_with_genres(self, genres: Sequence[str], limit: int) -> list[str]:
        """Ids of stored artists with any of the genres."""
        cursor = self.artists.find({"genres": {"$in": list(genres)}}, {"_id": 1}).limit(limit)
        return [doc["_id"] async for doc in cursor]


async def _insert_new(collection: AsyncCollection, docs: Sequence[dict[str, Any]]) -> None:
    """Insert documents believed new; any that a concurrent writer inserted first are kept."""
    if not docs:
        return
    try:
        await collection.insert_many(list(docs), ordered=False)
    except BulkWriteError as exc:
        # FerretDB stops at the first duplicate, so insert the rest one by one.
        if any(e.get("code") != _DUPLICATE_KEY for e in exc.details.get("writeErrors", ())):
            raise
        for doc in docs:
            with contextlib.suppress(DuplicateKeyError):
                await collection.insert_one(doc)


async def _insert_or_update(
    collection: AsyncCollection,
    fields_by_id: Mapping[str, Mapping[str, Any]],
    now: datetime,
    *,
    existing: Mapping[str, Any],
    doc_ids: Mapping[str, str] | None = None,
    with_doc_id: bool = True,
) -> None:
    """Insert documents for new ids; update the ones in `existing` (a refresh)."""
    if not fields_by_id:
        return
    updates = [
        Write({"_id": i}, {"$set": {**f, "updated_at": now}})
        for i, f in fields_by_id.items()
        if i in existing
    ]
    inserts = []
    for entity_id, fields in fields_by_id.items():
        if entity_id in existing:
            continue
        doc: dict[str, Any] = {"_id": entity_id, **fields, "updated_at": now}
        if with_doc_id:
            doc["doc_id"] = (doc_ids or {}).get(entity_id) or new_doc_id()
        inserts.append(doc)
    await _write_each(collection, updates)
    # A concurrent writer that inserted one of these first wins; its answer is the same.
    await _insert_new(collection, inserts)


class PlaylistRepository:
    """Users' synced playlists."""

    def __init__(self, database: AsyncDatabase) -> None:
        self.playlists = database["playlists"]
        self.top_items = database["top_items"]

    async def ensure_indexes(self) -> None:
        """The per-user listing index."""
        await self.playlists.create_index([("user_id", ASCENDING), ("position", ASCENDING)])

    async def list_for_user(self, user_id: str) -> list[dict[str, Any]]:
        """Every synced playlist of the user, in library order."""
        cursor = self.playlists.find({"user_id": user_id}).sort("position", ASCENDING)
        return [doc async for doc in cursor]

    async def page_for_user(
        self, user_id: str, *, skip: int, limit: int
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of the user's playlists and their total."""
        query = {"user_id": user_id}
        cursor = self.playlists.find(query).sort("position", ASCENDING).skip(skip).limit(limit)
        docs = [doc async for doc in cursor]
        if len(docs) < limit and (docs or skip == 0):
            return docs, skip + len(docs)
        return docs, await self.playlists.count_documents(query)

    async def upsert(
        self, user_id: str, playlists: Sequence[Mapping[str, Any]], now: datetime
    ) -> None:
        """Insert or update the given playlists of the user (keyed by Spotify id)."""
        writes = [
            Write(
                {"_id": f"{user_id}:{p['spotify_id']}"},
                {
                    "$set": {**p, "user_id": user_id, "synced_at": now},
                    "$setOnInsert": {"doc_id": new_doc_id()},
                },
                upsert=True,
            )
            for p in playlists
        ]
        if writes:
            await _write_each(self.playlists, writes)

    async def delete(self, user_id: str, spotify_ids: Iterable[str]) -> int:
        """Remove the user's copies of these playlists; returns how many were removed."""
        removed = 0
        for spotify_id in spotify_ids:
            result = await self.playlists.delete_one({"_id": f"{user_id}:{spotify_id}"})
            removed += result.deleted_count
        return removed

    async def top_synced_at(self, user_id: str) -> datetime | None:
        """When the user's top items were last stored (aware UTC), if ever."""
        doc = await self.top_items.find_one({"_id": user_id})
        if doc is None or doc.get("synced_at") is None:
            return None
        synced = doc["synced_at"]
        return synced if synced.tzinfo else synced.replace(tzinfo=UTC)

    async def store_top(
        self, user_id: str, rankings: Mapping[str, Sequence[str]], now: datetime
    ) -> None:
        """The user's ranked top ids, {"<tracks|artists>:<time range>": [ids]}."""
        await self.top_items.update_one(
            {"_id": user_id},
            {"$set": {"rankings": {k: list(v) for k, v in rankings.items()}, "synced_at": now}},
            upsert=True,
        )
