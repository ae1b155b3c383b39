"""assay.server.commands: what the in-process ``assay admin`` / ``assay manage`` commands leave behind."""

from __future__ import annotations

import logging

from assay.server import commands


def test_setting_up_again_leaves_the_log_handlers_alone():
    """A second setup (an admin command run in-process, as tests and ``assay demo`` do) must not point the
    root handler at the stderr of that moment: CliRunner closes it, and later log lines fail to print."""
    before = list(logging.getLogger().handlers)
    commands.setup()
    assert logging.getLogger().handlers == before
