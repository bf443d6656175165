"""`python -m auth_service`: run the auth gRPC service until SIGTERM."""

from auth_service.server import open_server
from auth_service.settings import AuthSettings
from echostats_grpc.runtime import run_service

if __name__ == "__main__":
    run_service("auth", AuthSettings(), open_server)
