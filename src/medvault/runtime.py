"""Process start-up for `medvault serve`: migrate, sweep crash leftovers, wire the guard, serve."""

from __future__ import annotations

import asyncio
import logging

from medvault.core import MedVault
from medvault.db.engine import migrate
from medvault.server import serve
from medvault.web.app import create_app


def run_server(medvault: MedVault) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    migrate(medvault.engine)
    removed = medvault.sweep_leftovers()
    if removed:
        logging.getLogger("medvault").warning("removed %d leftovers of an interrupted upload", removed)
    app = create_app(medvault)
    asyncio.run(serve(medvault, app, on_event=lambda kind, ip: medvault.events.emit(kind, ip)))
