"""How ``make test`` shares the suite between pytest-xdist's processes (tests/README.md "Running in parallel").

Only these hooks live here: the Django suites' fixtures stay in their own conftests (tests/fixtures.py); the
teardown check that no test leaves a thread's database connection open is tests/connection_guard.py's.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests import connection_guard


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadgroup``, with a test module as the unit of work unless its tests say otherwise.

    As with ``--dist loadfile``, a module runs in one process, so its module-scoped fixtures and live
    servers are set up once; a test marked ``@pytest.mark.xdist_group("name")`` joins every other test of
    that name (from any module) in one process instead, so those tests never run at the same time. Only
    marked tests carry xdist's ``@name`` suffix in their ids; the rest keep ids that ``pytest`` takes back.
    """
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class ModuleOrGroupScheduling(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            group = super()._split_scope(nodeid)
            return group if group != nodeid else nodeid.split("::", 1)[0]

    return ModuleOrGroupScheduling(config, log)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Any:
    connection_guard.start_watching(item.nodeid)
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    result = yield
    connection_guard.check(item)
    return result
