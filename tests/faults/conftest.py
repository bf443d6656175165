"""The fault suite runs on a stack of its own, started for the package and stopped after it.

Its faults (FerretDB and Redis stopped, processes killed) then never touch the session's
stack, and its jobs run on a database holding only its own data: on the session's stack,
by the time the disruptive tests run, FerretDB holds every other test's plays, and since
it scans a whole collection for any filter (reference/ferretdb.md §4), an import's batch
insert and tag count after a FerretDB restart could exceed the 10 s socket timeout on a
contended machine and dead-letter the job, which measured the machine, not the recovery.
The integration clients (`client`, `make_client`, `simulator`) are reused against it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from echostats_devstack import LocalStack
from tests.conftest import STACK_COMPONENT_ENV
from tests.integration.conftest import client, make_client, simulator  # noqa: F401


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """A stack for the fault suite alone, configured like the session's."""
    local = LocalStack(tmp_path_factory.mktemp("fault-stack"), component_env=STACK_COMPONENT_ENV)
    with local:
        yield local


@pytest.fixture(scope="package")
def gateway_url(stack: LocalStack) -> str:
    return stack.gateway_url


@pytest.fixture(scope="package")
def simulator_url(stack: LocalStack) -> str:
    return stack.simulator_url
