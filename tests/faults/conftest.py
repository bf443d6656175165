"""Fixtures of the fault suite: the integration clients (one rate-limit identity each)."""

from tests.integration.conftest import client, make_client, simulator  # noqa: F401
