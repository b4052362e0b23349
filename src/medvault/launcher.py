"""The `medvault` command's entry point: `medvault guard …` loads the guard alone.

The guard's commands run on log hosts and in scripts; importing the web application, the database
layer and the key handling for them would cost them about half a second and 50 MB per call.
"""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:2] == ["guard"]:
        from medvault.guard.cli import guard_app

        guard_app(args=sys.argv[2:], prog_name="medvault guard")
        return
    from medvault.cli import main as everything

    everything()
