"""gRPC kit shared by every service and the gateway: server factory, interceptors, channels."""
