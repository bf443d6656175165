"""POST /api/v1/history/import: stream a privacy-export upload to ingestion's UploadImport.

The multipart body is parsed incrementally as it arrives (python-multipart's streaming
parser) and the `file` part's bytes go on to ingestion as gRPC `data` chunks of at most
CHUNK_BYTES, so the gateway never holds more than one chunk of an upload, whatever its size.
Ingestion validates the content, stores it and starts the import job; its refusals come back
through errors.py's table (415 unsupported type, 413 too large, 400 invalid).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from echostats.ingestion.v1 import ingestion_service_pb2 as ingestion_pb
from gateway.dependencies import Clients, CurrentUser, Settings
from gateway.errors import ApiError
from gateway.schemas.imports import ImportResponse

router = APIRouter(prefix="/api/v1/history", tags=["history"])

# Largest gRPC `data` message; well under the channels' 16 MiB message limit.
CHUNK_BYTES = 256 * 1024
FILE_FIELD = "file"
# Multipart framing around the file (boundaries, part headers, small extra fields) that a
# Content-Length may carry beyond the file itself before it is refused unread.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
# Part headers are buffered until complete; a client may not make that buffer unbounded.
MAX_PART_HEADER_BYTES = 16 * 1024

NOT_MULTIPART = "Unsupported media type: send multipart/form-data with a 'file' field"
TOO_LARGE = "Upload too large: the limit is {limit} bytes"
MALFORMED = "Malformed multipart body"
TRUNCATED = "The upload ended before the file was complete"

IMPORT_REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": [FILE_FIELD],
                "properties": {
                    FILE_FIELD: {
                        "type": "string",
                        "format": "binary",
                        "description": (
                            "A Spotify privacy export: extended streaming history"
                            " (Streaming_History_Audio_*.json, endsong_*.json), account data"
                            " (StreamingHistory*.json) or the export's .zip"
                        ),
                    }
                },
            }
        }
    },
}


@dataclass
class _FilePart:
    """What the streaming parser has seen of the body so far (filled by its callbacks)."""

    started: bool = False
    finished: bool = False
    filename: str = ""
    content_type: str = ""
    data: bytearray = field(default_factory=bytearray)
    # The part being parsed: its raw headers, and whether it is the file.
    header_bytes: int = 0
    headers: dict[bytes, bytes] = field(default_factory=dict)
    header_field: bytearray = field(default_factory=bytearray)
    header_value: bytearray = field(default_factory=bytearray)
    in_file: bool = False


def _parser(boundary: bytes, part: _FilePart) -> MultipartParser:
    """A streaming multipart parser that keeps only the first `file` part's data."""

    def on_part_begin() -> None:
        part.headers.clear()
        part.header_bytes = 0
        part.in_file = False

    def on_header_field(data: bytes, start: int, end: int) -> None:
        _count_header(end - start)
        part.header_field += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        _count_header(end - start)
        part.header_value += data[start:end]

    def on_header_end() -> None:
        part.headers[bytes(part.header_field).lower()] = bytes(part.header_value)
        part.header_field.clear()
        part.header_value.clear()

    def on_headers_finished() -> None:
        _, options = parse_options_header(part.headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        # Only the first `file` part is the upload; a repeated field is ignored.
        if name == FILE_FIELD and not part.started:
            part.started = part.in_file = True
            part.filename = options.get(b"filename", b"").decode("utf-8", "replace")
            part.content_type = part.headers.get(b"content-type", b"").decode("latin-1").strip()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if part.in_file:
            part.data += data[start:end]

    def on_part_end() -> None:
        if part.in_file:
            part.finished = True
            part.in_file = False

    def _count_header(size: int) -> None:
        part.header_bytes += size
        if part.header_bytes > MAX_PART_HEADER_BYTES:
            raise ApiError(400, MALFORMED)

    return MultipartParser(
        boundary,
        callbacks={
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )


async def _file_chunks(
    body: AsyncIterator[bytes], boundary: bytes, part: _FilePart, *, max_bytes: int
) -> AsyncIterator[bytes]:
    """The `file` part's bytes in chunks of at most CHUNK_BYTES, parsed as the body arrives.

    Nothing is yielded before the part's headers are complete, so `part` names the file by
    the time the first chunk (possibly empty) is yielded. Raises ApiError on a malformed or
    truncated body and when the file exceeds `max_bytes`.
    """
    parser = _parser(boundary, part)
    announced = False
    received = 0
    async for piece in body:
        buffered = len(part.data)
        try:
            parser.write(piece)
        except MultipartParseError as exc:
            raise ApiError(400, MALFORMED) from exc
        if not part.started:
            continue
        received += len(part.data) - buffered
        if received > max_bytes:
            raise ApiError(413, TOO_LARGE.format(limit=max_bytes))
        if not announced:
            announced = True
            yield b""
        while len(part.data) >= CHUNK_BYTES:
            yield bytes(part.data[:CHUNK_BYTES])
            del part.data[:CHUNK_BYTES]
        if part.finished:
            break
    if part.started and not part.finished:
        raise ApiError(400, TRUNCATED)
    if part.data:
        # The part ended with less than a full chunk buffered.
        remaining = bytes(part.data)
        part.data.clear()
        yield remaining


def _multipart_boundary(request: Request) -> bytes:
    """The boundary of a multipart/form-data request, else 415."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary", b"")
    if content_type != b"multipart/form-data" or not boundary:
        raise ApiError(415, NOT_MULTIPART)
    return boundary


async def _upload(
    clients: Clients,
    settings: Settings,
    user_id: str,
    part: _FilePart,
    chunks: AsyncIterator[bytes],
) -> ingestion_pb.UploadImportResponse:
    """Send the metadata and then the file's chunks to UploadImport; its answer."""
    # The reader/writer style rather than a request iterator: the route's own task reads the
    # body, so a failure here (413, a malformed or truncated body, a client gone) is raised
    # here as itself, and the call is cancelled so ingestion discards the partial upload.
    call = clients.ingestion.UploadImport(timeout=settings.slow_request_timeout_seconds)
    try:
        await call.write(
            ingestion_pb.UploadImportRequest(
                metadata=ingestion_pb.UploadImportMetadata(
                    user_id=user_id, filename=part.filename, content_type=part.content_type
                )
            )
        )
        async for chunk in chunks:
            if chunk:
                await call.write(ingestion_pb.UploadImportRequest(data=chunk))
        await call.done_writing()
    except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
        # Ingestion ended the call early (it refused the upload); its status is awaited below.
        pass
    except BaseException:
        call.cancel()
        raise
    return await call


def _missing_file() -> RequestValidationError:
    return RequestValidationError(
        [{"loc": ("body", FILE_FIELD), "msg": "Field required", "type": "missing", "input": None}]
    )


@router.post(
    "/import",
    response_model=ImportResponse,
    openapi_extra={"requestBody": IMPORT_REQUEST_BODY},
    responses={
        400: {"description": "Not JSON, JSON of the wrong shape, an empty file, an unsafe zip"},
        413: {"description": "Larger than the configured limit (default 512 MiB)"},
        415: {"description": "Not multipart/form-data, or a file type that is not an export"},
        422: {"description": "No `file` field"},
    },
)
async def import_history(
    request: Request, user: CurrentUser, clients: Clients, settings: Settings
) -> ImportResponse:
    """Import a Spotify privacy export (multipart `file`); the work runs as an import job.

    Answers at once with `{job_id, status: "pending", items_processed: 0, items_total}`;
    progress is in /api/v1/sync-jobs (job_type=import). When the user already has an import
    pending or running, nothing new starts and the answer is that job with
    `status: "already_running"` and its progress so far.
    """
    boundary = _multipart_boundary(request)
    limit = settings.import_max_bytes
    declared = request.headers.get("content-length", "")
    # Refuse what cannot fit before reading a byte of it.
    if declared.isdigit() and int(declared) > limit + MULTIPART_OVERHEAD_BYTES:
        raise ApiError(413, TOO_LARGE.format(limit=limit))

    part = _FilePart()
    chunks = _file_chunks(request.stream(), boundary, part, max_bytes=limit)
    try:
        # Read up to the file part's headers: without them there is nothing to send.
        if await anext(chunks, None) is None:
            raise _missing_file()
        response = await _upload(clients, settings, user.id, part, chunks)
    finally:
        await chunks.aclose()
    return ImportResponse(
        job_id=response.job_id,
        status="pending" if response.started else "already_running",
        items_processed=response.items_processed,
        items_total=response.items_total,
    )
