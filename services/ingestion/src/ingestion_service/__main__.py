"""`python -m ingestion_service`: run the ingestion gRPC service until SIGTERM."""

from echostats_grpc.runtime import run_service
from ingestion_service.server import open_server
from ingestion_service.settings import IngestionSettings

if __name__ == "__main__":
    run_service("ingestion", IngestionSettings(), open_server)
