"""`python -m player_proxy_service`: run the player-proxy gRPC service until SIGTERM."""

from echostats_grpc.runtime import run_service
from player_proxy_service.server import open_server
from player_proxy_service.settings import PlayerProxySettings

if __name__ == "__main__":
    run_service("player-proxy", PlayerProxySettings(), open_server)
