"""`python -m catalog_service`: run the catalog gRPC service until SIGTERM."""

from catalog_service.server import open_server
from catalog_service.settings import CatalogSettings
from echostats_grpc.runtime import run_service

if __name__ == "__main__":
    run_service("catalog", CatalogSettings(), open_server)
