"""Uploaded export files, kept in ingestion's MongoDB (GridFS bucket `import_uploads`).

An upload is written chunk by chunk as it arrives (never whole in memory) and lives until
its import job ends: the worker downloads it to a temporary file, parses it, and deletes it.
A refused or abandoned upload is aborted or deleted by the request that wrote it, so a
failed request leaves no file behind. GridFS is two plain collections
(`import_uploads.files`, `import_uploads.chunks`) with `_id`/`files_id` lookups, which works
the same on FerretDB and MongoDB.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId
from gridfs import AsyncGridFSBucket
from gridfs.asynchronous.grid_file import AsyncGridIn
from gridfs.errors import NoFile
from pymongo.asynchronous.database import AsyncDatabase

log = logging.getLogger(__name__)

BUCKET = "import_uploads"


class UploadMissing(Exception):
    """The upload named by a job is not (or no longer) stored."""


def _object_id(file_id: str) -> ObjectId:
    try:
        return ObjectId(file_id)
    except (InvalidId, TypeError):
        raise UploadMissing(f"not an upload id: {file_id!r}") from None


class ImportUploads:
    """The GridFS bucket of uploaded export files."""

    def __init__(self, database: AsyncDatabase, *, chunk_size_bytes: int = 1024 * 1024) -> None:
        self._bucket = AsyncGridFSBucket(
            database, bucket_name=BUCKET, chunk_size_bytes=chunk_size_bytes
        )
        self._files = database[f"{BUCKET}.files"]

    def open_upload(self, filename: str, *, metadata: dict[str, Any]) -> AsyncGridIn:
        """A new upload stream (write, then close; abort on failure)."""
        return self._bucket.open_upload_stream(filename, metadata=metadata)

    async def delete(self, file_id: str) -> None:
        """Delete an upload (already gone is fine)."""
        with contextlib.suppress(NoFile, UploadMissing):
            await self._bucket.delete(_object_id(file_id))

    async def delete_quietly(self, file_id: str) -> None:
        """Delete an upload on a cleanup path: a failure is logged, never raised."""
        try:
            await self.delete(file_id)
        except Exception as exc:
            log.warning("could not delete upload", extra={"file_id": file_id, "error": repr(exc)})

    async def download_to(self, file_id: str, path: Path) -> int:
        """Write the upload to `path` chunk by chunk; returns its size (UploadMissing if gone)."""
        try:
            stream = await self._bucket.open_download_stream(_object_id(file_id))
        except NoFile:
            raise UploadMissing(f"upload {file_id} is not stored") from None
        size = 0
        with path.open("wb") as out:
            while chunk := await stream.readchunk():
                out.write(chunk)
                size += len(chunk)
        return size

    async def exists(self, file_id: str) -> bool:
        """Whether the upload is stored (tests and cleanup checks)."""
        try:
            return await self._files.find_one({"_id": _object_id(file_id)}) is not None
        except UploadMissing:
            return False

    async def count(self) -> int:
        """How many uploads are stored (tests)."""
        return await self._files.count_documents({})
