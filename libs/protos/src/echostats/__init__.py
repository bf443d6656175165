"""Generated protobuf and gRPC stubs for every EchoStats context (`make protos`); not committed."""
