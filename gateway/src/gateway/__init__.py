"""The EchoStats REST gateway: the one documented API; authenticates, limits and delegates."""
