"""Process start-up for `medvault serve`: migrate, sweep crash leftovers, wire the guard, serve."""

from __future__ import annotations

import asyncio
import logging

from medvault.core import MedVault
from medvault.db.engine import migrate
from medvault.guard.service import ServerGuard
from medvault.guard.store import BanStore
from medvault.server import serve
from medvault.web.app import create_app


def run_server(medvault: MedVault) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    migrate(medvault.engine)
    removed = medvault.sweep_leftovers()
    if removed:
        logging.getLogger("medvault").warning("removed %d leftovers of an interrupted upload", removed)
    guard = None
    if medvault.settings.guard_enabled:
        guard = ServerGuard(
            BanStore(medvault.engine),
            ignoreip=medvault.settings.trusted_proxies,
            snapshot=medvault.data_dir / "guard-status.json",
        )
        medvault.events.listeners.append(guard.on_event)
    app = create_app(medvault, guard)
    asyncio.run(serve(medvault, app, guard))
