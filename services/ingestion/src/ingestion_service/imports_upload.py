"""UploadImport: receive an export file, check it, store it, start its import job.

The steps, in order, each refusing as early as it can:

1. The first message must be the metadata (user, file name); a declared size over
   `import_max_bytes` is refused before any byte is stored (PAYLOAD_TOO_LARGE).
   A user whose import is still pending or running gets `started=false` with that job
   at once: the upload is read to its end (see the servicer) but nothing is stored. This
   and step 5 are the per-user cap: one queued-or-running import per user.
2. The first 64 KiB decide the kind (`detect_kind`): an unsupported name is refused with
   UNSUPPORTED_MEDIA_TYPE, an empty or non-JSON-array file with INVALID_IMPORT.
3. The bytes go to GridFS (`import_uploads`) and to a temporary spool file as they arrive,
   one chunk at a time; more than `import_max_bytes` aborts the upload (PAYLOAD_TOO_LARGE).
4. The spool file is validated and its rows counted in a thread (`count_rows`): bad JSON,
   a wrong shape or an unsafe zip delete the upload (INVALID_IMPORT / UNSAFE_ARCHIVE).
5. StartJob(IMPORT, items_total) in the ledger: one import per user at a time, so when one
   is already pending or running this upload is deleted and the answer is started=false
   with that job's id and counters. Otherwise the job is queued on the import lane.

Nothing is written to `plays` here: the worker does that (import_job.py). Any failure or
cancellation (the client going away mid-stream) before the job is queued deletes what this
request stored; once queued, the upload belongs to the job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from echostats.ingestion.v1 import ingestion_service_pb2 as pb
from echostats.observability.v1 import observability_service_pb2 as pb_obs
from echostats_platform.errors import InvalidArgument
from ingestion_service.import_uploads import ImportUploads
from ingestion_service.imports.formats import (
    DETECT_HEAD_BYTES,
    ImportFileKind,
    InvalidImport,
    UnsafeArchive,
    UnsupportedImport,
    detect_kind,
)
from ingestion_service.imports.reader import ArchiveLimits
from ingestion_service.imports.rules import ImportRules, survey
from ingestion_service.job_ledger import JobLedgerClient, JobType
from ingestion_service.job_starter import JobStarter, dependency_error

log = logging.getLogger(__name__)

REASON_UNSUPPORTED = "UNSUPPORTED_MEDIA_TYPE"
REASON_TOO_LARGE = "PAYLOAD_TOO_LARGE"
REASON_INVALID = "INVALID_IMPORT"
REASON_UNSAFE = "UNSAFE_ARCHIVE"


@dataclass(frozen=True, slots=True)
class UploadOptions:
    """Limits of an upload."""

    max_bytes: int = 512 * 1024 * 1024
    limits: ArchiveLimits | None = None
    spool_dir: str | None = None
    rules: ImportRules = field(default_factory=ImportRules)


@dataclass(frozen=True, slots=True)
class UploadResult:
    """The answer to an upload."""

    started: bool
    job_id: str
    items_processed: int
    items_total: int


def _too_large(max_bytes: int) -> InvalidArgument:
    return InvalidArgument(
        f"The file is larger than the import limit of {max_bytes // (1024 * 1024)} MiB",
        reason=REASON_TOO_LARGE,
    )


async def _data_chunks(requests: AsyncIterator[pb.UploadImportRequest]) -> AsyncIterator[bytes]:
    """The data chunks of the stream after its metadata message."""
    async for request in requests:
        if request.WhichOneof("part") == "metadata":
            raise InvalidArgument("metadata may only be sent once, first")
        if request.data:
            yield request.data


class ImportUploader:
    """Receives uploads and starts their import jobs."""

    def __init__(
        self,
        *,
        uploads: ImportUploads,
        starter: JobStarter,
        ledger: JobLedgerClient,
        options: UploadOptions,
    ) -> None:
        self._uploads = uploads
        self._starter = starter
        self._ledger = ledger
        self._options = options

    async def upload(self, requests: AsyncIterator[pb.UploadImportRequest]) -> UploadResult:
        """Run one upload to the end (see the module docstring)."""
        first = await anext(aiter(requests), None)
        if first is None or first.WhichOneof("part") != "metadata":
            raise InvalidArgument("the first message must carry the upload's metadata")
        meta = first.metadata
        if not meta.user_id:
            raise InvalidArgument("user_id is required")
        if not meta.filename:
            raise InvalidArgument("filename is required")
        max_bytes = self._options.max_bytes
        if meta.declared_size > max_bytes:
            raise _too_large(max_bytes)

        chunks = _data_chunks(requests)
        active = await self._active_import(meta.user_id)
        if active is not None:
            async for _ in chunks:
                pass  # drained, not stored
            return UploadResult(False, active.id, active.items_processed, active.items_total)
        head, pending = await self._read_head(chunks)
        try:
            kind = detect_kind(meta.filename, head)
        except UnsupportedImport as exc:
            raise InvalidArgument(exc.message, reason=REASON_UNSUPPORTED) from None
        except InvalidImport as exc:
            raise InvalidArgument(exc.message, reason=REASON_INVALID) from None

        fd, spool_name = tempfile.mkstemp(prefix="import-upload-", dir=self._options.spool_dir)
        os.close(fd)
        spool = Path(spool_name)
        file_id: str | None = None
        handed_off = False
        try:
            file_id = await self._store(meta, kind, pending, chunks, spool)
            items_total = await self._survey(spool, meta.filename, kind)
            result = await self._start(meta.user_id, file_id, meta.filename, items_total)
            # From here on a started job owns the upload (the worker deletes it).
            handed_off = result.started
            return result
        finally:
            # Runs on errors and on cancellation (the client went away) as well.
            spool.unlink(missing_ok=True)  # noqa: ASYNC240 - instant, and must run when cancelled
            if file_id is not None and not handed_off:
                await asyncio.shield(self._uploads.delete_quietly(file_id))

    async def _read_head(self, chunks: AsyncIterator[bytes]) -> tuple[bytes, list[bytes]]:
        """Read chunks until `DETECT_HEAD_BYTES` (or the end); returns (head, chunks read)."""
        pending: list[bytes] = []
        size = 0
        async for chunk in chunks:
            pending.append(chunk)
            size += len(chunk)
            if size > self._options.max_bytes:
                raise _too_large(self._options.max_bytes)
            if size >= DETECT_HEAD_BYTES:
                break
        return b"".join(pending)[:DETECT_HEAD_BYTES], pending

    async def _store(
        self,
        meta: pb.UploadImportMetadata,
        kind: ImportFileKind,
        pending: list[bytes],
        chunks: AsyncIterator[bytes],
        spool: Path,
    ) -> str:
        """Write every chunk to GridFS and the spool file; returns the GridFS id."""
        upload = self._uploads.open_upload(
            meta.filename,
            metadata={
                "user_id": meta.user_id,
                "kind": kind.value,
                "content_type": meta.content_type,
            },
        )
        max_bytes = self._options.max_bytes
        size = 0
        try:
            with spool.open("wb") as out:

                async def write(chunk: bytes) -> None:
                    nonlocal size
                    size += len(chunk)
                    if size > max_bytes:
                        raise _too_large(max_bytes)
                    out.write(chunk)
                    await upload.write(chunk)

                for chunk in pending:
                    await write(chunk)
                pending.clear()
                async for chunk in chunks:
                    await write(chunk)
            await upload.close()
        except BaseException:
            # Removes the chunks written so far; shielded so a cancelled request cleans up.
            with contextlib.suppress(Exception):
                await asyncio.shield(upload.abort())
            raise
        return str(upload._id)

    async def _survey(self, spool: Path, filename: str, kind: ImportFileKind) -> int:
        """Validate the spooled file and count its rows (sync parsing, in a thread).

        A file with rows but no music play at all is refused here: importing it would
        store nothing, so the client hears why at once rather than from a failed job.
        """
        try:
            found = await asyncio.to_thread(
                survey,
                spool,
                filename,
                kind,
                self._options.rules,
                limits=self._options.limits or ArchiveLimits(),
            )
        except UnsafeArchive as exc:
            raise InvalidArgument(exc.message, reason=REASON_UNSAFE) from None
        except InvalidImport as exc:
            raise InvalidArgument(exc.message, reason=REASON_INVALID) from None
        except UnsupportedImport as exc:
            raise InvalidArgument(exc.message, reason=REASON_UNSUPPORTED) from None
        if found.usable == 0:
            reasons = ", ".join(
                f"{count} {reason}" for reason, count in sorted(found.skipped.items())
            )
            raise InvalidArgument(
                f"No music plays to import: all {found.rows} rows were skipped ({reasons})",
                reason=REASON_INVALID,
            )
        return found.rows

    async def _active_import(self, user_id: str) -> pb_obs.Job | None:
        try:
            return await self._ledger.active(user_id=user_id, job_type=JobType.IMPORT)
        except grpc.aio.AioRpcError as exc:
            raise dependency_error("Observability", exc) from exc

    async def _start(
        self, user_id: str, file_id: str, filename: str, items_total: int
    ) -> UploadResult:
        started = await self._starter.start_import(
            user_id=user_id, file_id=file_id, filename=filename, items_total=items_total
        )
        if started.started:
            return UploadResult(True, started.job_id, 0, items_total)
        # Already importing: answer with that job's progress.
        try:
            job = await self._ledger.get(job_id=started.job_id, user_id=user_id)
        except grpc.aio.AioRpcError as exc:
            raise dependency_error("Observability", exc) from exc
        return UploadResult(False, started.job_id, job.items_processed, job.items_total)
