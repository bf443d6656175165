"""`python -m analytics_service`: run the analytics gRPC service until SIGTERM."""

from analytics_service.server import open_server
from analytics_service.settings import AnalyticsSettings
from echostats_grpc.runtime import run_service

if __name__ == "__main__":
    run_service("analytics", AnalyticsSettings(), open_server)
