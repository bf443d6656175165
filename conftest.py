"""Root pytest configuration.

With --import-mode=importlib pytest names test modules after their folders
(`gateway/tests/test_x.py` → `gateway.tests.test_x`) and would register the `gateway/` folder
as a stand-in `gateway` package, hiding the real one (gateway/src/gateway). Importing the
real package first keeps it in place.

The devstack's plugin gives every test the session's real backing servers (`redis_server`,
`ferretdb_server`), so no test folder starts copies of its own.
"""

import gateway  # noqa: F401

pytest_plugins = ["echostats_devstack.pytest_plugin"]
