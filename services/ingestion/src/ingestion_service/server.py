"""Builds the ingestion gRPC service: the shared runtime, the servicer and the server.

The service starts jobs (TriggerSync, SeedDemoHistory, UploadImport, which also stores the
uploaded file) and serves history (ListPlays); it never calls Spotify itself — the work
runs in `python -m ingestion_service.worker`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from echostats.ingestion.v1 import ingestion_service_pb2, ingestion_service_pb2_grpc
from echostats_grpc.server import BuiltServer, build_server
from ingestion_service.import_job import archive_limits, import_rules
from ingestion_service.imports_upload import ImportUploader, UploadOptions
from ingestion_service.runtime import open_runtime
from ingestion_service.servicer import IngestionServicer
from ingestion_service.settings import IngestionSettings

SERVICE_NAME = ingestion_service_pb2.DESCRIPTOR.services_by_name["IngestionService"].full_name


@contextlib.asynccontextmanager
async def open_server(
    settings: IngestionSettings, *, port: int | None = None
) -> AsyncIterator[BuiltServer]:
    """Wire the service and yield its (not yet started) server; closes clients on exit."""
    async with open_runtime(settings) as runtime:
        uploader = ImportUploader(
            uploads=runtime.uploads,
            starter=runtime.starter,
            ledger=runtime.ledger,
            options=UploadOptions(
                max_bytes=settings.import_max_bytes,
                limits=archive_limits(settings),
                spool_dir=settings.import_spool_dir,
                rules=import_rules(settings),
            ),
        )
        servicer = IngestionServicer(
            starter=runtime.starter, plays=runtime.plays, uploader=uploader
        )
        built = build_server(
            registrars=[
                lambda server: ingestion_service_pb2_grpc.add_IngestionServiceServicer_to_server(
                    servicer, server
                )
            ],
            service_names=[SERVICE_NAME],
            host=settings.grpc_host,
            port=settings.grpc_port if port is None else port,
        )
        yield built
