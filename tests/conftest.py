"""Fixtures for the tests that drive the real local stack, started once per session.

The stack (FerretDB, Redis, simulator, GitHub stub, six services, gateway on free loopback
ports) starts only when a collected test asks for `stack`, `gateway_url` or
`simulator_url`; such tests are marked `integration` automatically, so
`pytest -m "not integration"` never starts it. Component logs stay in the session's temp
dir (`<tmp>/stack0/logs`), and a failing test's report says where. The gateway trusts
X-Forwarded-For from 127.0.0.2 only (see TRUSTED_PROXY).
"""

from __future__ import annotations

from collections.abc import Generator, Iterator

import pytest

from echostats_devstack import LocalStack

STACK_FIXTURES = frozenset({"stack", "gateway_url", "simulator_url"})

# The integration clients connect from 127.0.0.2 when they play a reverse proxy that names
# the client in X-Forwarded-For (one rate-limit bucket per test); every other loopback
# address is an untrusted peer. Extra gateways inherit this.
TRUSTED_PROXY = "127.0.0.2/32"

# Per-component settings of the test stacks (the session's, and the fault suite's own).
STACK_COMPONENT_ENV: dict[str, dict[str, str]] = {
    "gateway": {"ECHOSTATS_TRUSTED_PROXIES": TRUSTED_PROXY},
    # A killed worker's job is taken over after 5 s instead of a minute, so the restart
    # tests finish quickly; the heartbeat must stay well below it.
    "ingestion-worker": {
        "ECHOSTATS_QUEUE_CLAIM_IDLE_MS": "5000",
        "ECHOSTATS_QUEUE_HEARTBEAT_SECONDS": "1",
        # A Retry-After over 5 s pauses background work (tests/faults wait it out).
        "ECHOSTATS_SPOTIFY_MAX_RETRY_AFTER_SECONDS": "5",
    },
}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that uses the stack as an integration test; disruptive ones go last.

    Tests marked `disruptive` stop FerretDB or Redis; the stack recovers on its own, but its
    recovery (e.g. the scheduler's catch-up round after Redis lost its keys) would race the
    tests that follow, so they run after everything else.
    """
    for item in items:
        if STACK_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)
    items.sort(key=lambda item: item.get_closest_marker("disruptive") is not None)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Point a failing stack test at the component logs."""
    report = yield
    local = getattr(item, "funcargs", {}).get("stack")
    if report.failed and isinstance(local, LocalStack):
        report.sections.append(("local stack", f"component logs: {local.log_dir}"))
    return report


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """The whole local stack, started once per session and stopped at its end."""
    local = LocalStack(tmp_path_factory.mktemp("stack"), component_env=STACK_COMPONENT_ENV)
    with local:
        yield local


@pytest.fixture(scope="session")
def gateway_url(stack: LocalStack) -> str:
    """Base URL of the stack's gateway."""
    return stack.gateway_url


@pytest.fixture(scope="session")
def simulator_url(stack: LocalStack) -> str:
    """Base URL of the stack's Spotify simulator."""
    return stack.simulator_url
