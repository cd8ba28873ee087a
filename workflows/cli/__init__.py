"""The ``frontdesk`` command: its subcommands (:mod:`.commands`) and all it prints (:mod:`.render`)."""

from __future__ import annotations

from frontdesk.workflows.cli.commands import (
    build_parser,
    cmd_chat,
    cmd_demo,
    cmd_graph,
    cmd_providers,
    cmd_sessions,
    cmd_simulate,
    cmd_validate,
    cmd_worker,
    main,
)
from frontdesk.workflows.cli.render import console, err_console

__all__ = [
    "build_parser",
    "cmd_chat",
    "cmd_demo",
    "cmd_graph",
    "cmd_providers",
    "cmd_sessions",
    "cmd_simulate",
    "cmd_validate",
    "cmd_worker",
    "console",
    "err_console",
    "main",
]
