"""Starts the EchoStats stack as real processes on loopback, for `make dev` and the tests.

`LocalStack` is the entry point: FerretDB, Redis, the Spotify simulator, a GitHub releases
stub, the six gRPC services and the gateway, each with its log in `<run dir>/logs`.
"""

from echostats_devstack.errors import ComponentStartError, StackError
from echostats_devstack.ports import StackPorts, pick_free_port
from echostats_devstack.stack import LocalStack

__all__ = ["ComponentStartError", "LocalStack", "StackError", "StackPorts", "pick_free_port"]
