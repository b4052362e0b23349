"""The `medvault` command's entry point: `medvault guard test-filter|run` load the guard alone.

Those two run on log hosts and in scripts; importing the web application, the database layer and the
key handling for them would cost each call about half a second and 50 MB.  Every other command, and
the guard's commands that use the data folder (`list`, `status`, `ban`, `unban`), go through the full CLI.
"""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:2] == ["guard"] and len(sys.argv) > 2:
        from medvault.guard.cli import guard_app

        if sys.argv[2] in {command.name for command in guard_app.registered_commands}:
            guard_app(args=sys.argv[2:], prog_name="medvault guard")
            return
    from medvault.cli import main as everything

    everything()
