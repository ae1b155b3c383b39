"""How ``make test`` shares the suite between pytest-xdist's processes (tests/README.md "Running in parallel").

Only this hook lives here: the Django suites' fixtures stay in their own conftests (tests/fixtures.py).
"""

from __future__ import annotations

import pytest


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under ``--dist loadgroup``, a test module is one unit of work, as ``--dist loadfile`` would make it
    (its module-scoped fixtures and live servers are set up once, in one process), and a test marked
    ``@pytest.mark.xdist_group("name")`` joins every other test of that name in one process instead, so
    tests that share a singular resource never run at the same time."""
    if not config.getoption("loadgroup", False):  # xdist sets it in its workers for --dist loadgroup
        return
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))
