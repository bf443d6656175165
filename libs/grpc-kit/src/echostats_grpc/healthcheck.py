"""`python -m echostats_grpc.healthcheck`: exit 0 when the local service's gRPC health is SERVING.

The container HEALTHCHECK of every service image (and compose's healthcheck) runs it, so an
image needs no separate probe binary. It asks the standard health service at
`127.0.0.1:$ECHOSTATS_GRPC_PORT` (or `--target host:port`) and exits 1 on anything else:
NOT_SERVING (a graceful stop), a refused connection or a timeout. Kubernetes does not use it:
its probes speak gRPC health natively.
"""

from __future__ import annotations

import argparse
import os
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def check(target: str, *, service: str = "", timeout: float = 2.0) -> bool:
    """Whether `target`'s health service answers SERVING for `service` within `timeout`."""
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError:
            return False
    return response.status == health_pb2.HealthCheckResponse.SERVING


def main(argv: list[str] | None = None) -> int:
    """Probe once; 0 = healthy, 1 = not."""
    parser = argparse.ArgumentParser(prog="python -m echostats_grpc.healthcheck")
    parser.add_argument(
        "--target",
        default=f"127.0.0.1:{os.environ.get('ECHOSTATS_GRPC_PORT', '50051')}",
        help="host:port of the gRPC server (default 127.0.0.1:$ECHOSTATS_GRPC_PORT)",
    )
    parser.add_argument("--service", default="", help="health service name ('' = the server)")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds")
    args = parser.parse_args(argv)
    healthy = check(args.target, service=args.service, timeout=args.timeout)
    if not healthy:
        print(f"{args.target}: not serving", file=sys.stderr)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
