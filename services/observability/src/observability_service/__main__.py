"""`python -m observability_service`: run the observability gRPC service until SIGTERM."""

from echostats_grpc.runtime import run_service
from observability_service.server import open_server
from observability_service.settings import ObservabilitySettings

if __name__ == "__main__":
    run_service("observability", ObservabilitySettings(), open_server)
