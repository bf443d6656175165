"""POST /api/v1/history/import: multipart streaming into a real in-process UploadImport server."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import SimpleNamespace

import grpc
import httpx
import pytest
from fastapi import FastAPI

from echostats.auth.v1 import auth_service_pb2 as auth_pb
from echostats.ingestion.v1 import ingestion_service_pb2 as ingestion_pb
from echostats.ingestion.v1 import ingestion_service_pb2_grpc
from echostats_grpc.client import create_channel
from echostats_grpc.status import REASON_METADATA_KEY
from gateway.dependencies import AuthenticatedUser, current_user, get_clients, get_settings
from gateway.errors import install_error_handlers
from gateway.routers import imports
from gateway.routers.imports import CHUNK_BYTES
from gateway.settings import GatewaySettings

USER_ID = "user-1"
LIMIT = 2 * 1024 * 1024


@dataclass
class Upload:
    """What the fake ingestion received in one UploadImport call."""

    metadata: ingestion_pb.UploadImportMetadata | None = None
    chunk_sizes: list[int] = field(default_factory=list)
    digest: hashlib._Hash = field(default_factory=hashlib.sha256)
    completed: bool = False


class FakeIngestion(ingestion_service_pb2_grpc.IngestionServiceServicer):
    """UploadImport as the contract describes it; `refuse` makes it fail with a reason."""

    def __init__(self) -> None:
        self.uploads: list[Upload] = []
        self.refuse: tuple[grpc.StatusCode, str, str] | None = None
        self.already_running = False

    async def UploadImport(self, request_iterator, context):
        upload = Upload()
        self.uploads.append(upload)
        async for message in request_iterator:
            if message.HasField("metadata"):
                upload.metadata = message.metadata
            else:
                upload.chunk_sizes.append(len(message.data))
                upload.digest.update(message.data)
        if self.refuse:
            # Like the real servicer, refuse only once the request stream has been read: a
            # status sent while the client still writes can reach it as a bare INTERNAL.
            code, reason, text = self.refuse
            context.set_trailing_metadata(((REASON_METADATA_KEY, reason),))
            await context.abort(code, text)
        # A client's cancellation ends the request stream like a normal end of stream; the
        # real servicer must check this before it treats the upload as whole.
        await asyncio.sleep(0)
        if context.cancelled():
            return ingestion_pb.UploadImportResponse()
        upload.completed = True
        if self.already_running:
            return ingestion_pb.UploadImportResponse(
                started=False, job_id="job-0", items_processed=5, items_total=9
            )
        return ingestion_pb.UploadImportResponse(
            started=True, job_id="job-1", items_processed=0, items_total=42
        )


@pytest.fixture
async def ingestion() -> AsyncIterator[tuple[FakeIngestion, grpc.aio.Channel]]:
    server = grpc.aio.server()
    fake = FakeIngestion()
    ingestion_service_pb2_grpc.add_IngestionServiceServicer_to_server(fake, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    # The kit's channel, interceptors included, as the gateway builds it.
    channel = create_channel(f"127.0.0.1:{port}")
    yield fake, channel
    await channel.close()
    await server.stop(None)


@pytest.fixture
async def client(ingestion) -> AsyncIterator[httpx.AsyncClient]:
    _, channel = ingestion
    settings = GatewaySettings(environment="test", import_max_bytes=LIMIT)
    app = FastAPI()
    app.include_router(imports.router)
    install_error_handlers(app, settings)
    clients = SimpleNamespace(ingestion=ingestion_service_pb2_grpc.IngestionServiceStub(channel))
    app.dependency_overrides[get_settings] = lambda: settings
    app.dependency_overrides[get_clients] = lambda: clients
    app.dependency_overrides[current_user] = lambda: AuthenticatedUser(
        id=USER_ID, session=auth_pb.AuthenticateSessionResponse()
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


def multipart(parts: list[tuple[str, str | None, bytes]], boundary: str = "b0undary") -> bytes:
    """A multipart/form-data body of (field name, filename, content) parts."""
    body = bytearray()
    for name, filename, content in parts:
        body += f"--{boundary}\r\n".encode()
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        body += f"Content-Disposition: {disposition}\r\n".encode()
        if filename is not None:
            body += b"Content-Type: application/json\r\n"
        body += b"\r\n" + content + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return bytes(body)


async def dribble(body: bytes, piece: int = 10_000) -> AsyncIterator[bytes]:
    """The body in small pieces, as a slow client sends it."""
    for start in range(0, len(body), piece):
        yield body[start : start + piece]
        await asyncio.sleep(0)


MULTIPART = {"Content-Type": "multipart/form-data; boundary=b0undary"}


async def test_file_is_streamed_in_bounded_chunks(client, ingestion):
    fake, _ = ingestion
    content = os.urandom(CHUNK_BYTES * 3 + 1234)
    body = multipart([("note", None, b"ignored"), ("file", "Streaming_History.json", content)])
    response = await client.post("/api/v1/history/import", content=dribble(body), headers=MULTIPART)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "job_id": "job-1",
        "status": "pending",
        "items_processed": 0,
        "items_total": 42,
    }
    (upload,) = fake.uploads
    assert upload.metadata.user_id == USER_ID
    assert upload.metadata.filename == "Streaming_History.json"
    assert upload.metadata.content_type == "application/json"
    assert max(upload.chunk_sizes) <= CHUNK_BYTES
    assert sum(upload.chunk_sizes) == len(content)
    assert upload.digest.hexdigest() == hashlib.sha256(content).hexdigest()


async def test_file_spanning_reads_keeps_every_byte(client, ingestion):
    fake, _ = ingestion
    # Bytes that look like the boundary's start must survive being split across reads.
    content = (b"\r\n--b0und" + os.urandom(97)) * 5000
    body = multipart([("file", "endsong_0.json", content)])
    response = await client.post(
        "/api/v1/history/import", content=dribble(body, 4093), headers=MULTIPART
    )
    assert response.status_code == 200, response.text
    assert fake.uploads[0].digest.hexdigest() == hashlib.sha256(content).hexdigest()


async def test_already_running_names_the_running_job(client, ingestion):
    fake, _ = ingestion
    fake.already_running = True
    body = multipart([("file", "a.json", b"[]")])
    response = await client.post("/api/v1/history/import", content=body, headers=MULTIPART)
    assert response.status_code == 200
    assert response.json() == {
        "job_id": "job-0",
        "status": "already_running",
        "items_processed": 5,
        "items_total": 9,
    }


async def test_missing_file_is_422_in_the_spec_shape(client, ingestion):
    fake, _ = ingestion
    body = multipart([("other", "a.json", b"[]")])
    response = await client.post("/api/v1/history/import", content=body, headers=MULTIPART)
    assert response.status_code == 422
    assert response.json() == {
        "detail": [{"loc": ["body", "file"], "msg": "Field required", "type": "missing"}]
    }
    assert fake.uploads == []


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "application/json"},
        {"Content-Type": "multipart/form-data"},  # no boundary
        {},
    ],
)
async def test_not_multipart_is_415(client, ingestion, headers):
    fake, _ = ingestion
    response = await client.post("/api/v1/history/import", content=b"[]", headers=headers)
    assert response.status_code == 415
    assert isinstance(response.json()["detail"], str)
    assert fake.uploads == []


async def test_declared_length_over_the_limit_is_413_unread(client, ingestion):
    fake, _ = ingestion
    read = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal read
        read += 1
        yield b"x"

    headers = {**MULTIPART, "Content-Length": str(LIMIT * 2)}
    response = await client.post("/api/v1/history/import", content=body(), headers=headers)
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]
    assert read == 0
    assert fake.uploads == []


async def test_streamed_bytes_over_the_limit_are_413_and_the_upload_cancelled(client, ingestion):
    fake, _ = ingestion
    body = multipart([("file", "big.json", os.urandom(LIMIT + 1))])
    # Chunked (no Content-Length): only the streamed count can catch it.
    response = await client.post("/api/v1/history/import", content=dribble(body), headers=MULTIPART)
    assert response.status_code == 413
    await asyncio.sleep(0.1)
    assert all(not upload.completed for upload in fake.uploads)


async def test_malformed_body_is_400(client, ingestion):
    body = b"--other\r\nContent-Disposition: form-data; name=file\r\n\r\n[]"
    response = await client.post("/api/v1/history/import", content=body, headers=MULTIPART)
    assert response.status_code == 400


async def test_truncated_file_is_400_and_the_upload_cancelled(client, ingestion):
    fake, _ = ingestion
    body = multipart([("file", "a.json", os.urandom(CHUNK_BYTES * 2))])[:-200]
    response = await client.post("/api/v1/history/import", content=dribble(body), headers=MULTIPART)
    assert response.status_code == 400
    await asyncio.sleep(0.1)
    assert all(not upload.completed for upload in fake.uploads)


@pytest.mark.parametrize(
    ("reason", "status"),
    [
        ("UNSUPPORTED_MEDIA_TYPE", 415),
        ("PAYLOAD_TOO_LARGE", 413),
        ("INVALID_IMPORT", 400),
        ("UNSAFE_ARCHIVE", 400),
    ],
)
async def test_ingestion_refusals_map_through_the_table(client, ingestion, reason, status):
    fake, _ = ingestion
    fake.refuse = (grpc.StatusCode.INVALID_ARGUMENT, reason, f"refused: {reason}")
    body = multipart([("file", "a.json", os.urandom(CHUNK_BYTES * 4))])
    response = await client.post("/api/v1/history/import", content=dribble(body), headers=MULTIPART)
    assert response.status_code == status
    assert response.json() == {"detail": f"refused: {reason}"}


def test_openapi_documents_the_multipart_file():
    app = FastAPI()
    app.include_router(imports.router)
    operation = app.openapi()["paths"]["/api/v1/history/import"]["post"]
    schema = operation["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert schema["properties"]["file"] == {**schema["properties"]["file"], "format": "binary"}
    assert schema["required"] == ["file"]
