"""Root pytest configuration.

With --import-mode=importlib pytest names test modules after their folders
(`gateway/tests/test_x.py` → `gateway.tests.test_x`) and would register the `gateway/` folder
as a stand-in `gateway` package, hiding the real one (gateway/src/gateway). Importing the
real package first keeps it in place.
"""

import gateway  # noqa: F401
