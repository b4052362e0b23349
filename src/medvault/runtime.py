"""Process start-up for `medvault serve`: migrate, sweep crash leftovers, wire the guard, serve."""

from __future__ import annotations

import asyncio
import logging

from medvault.core import MedVault
from medvault.db.engine import migrate
from medvault.guard.actions import ActionRunner, Nftables
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
    settings = medvault.settings
    if settings.guard_enabled:
        actions = None
        if settings.guard_nftables or settings.guard_actionban or settings.guard_actionunban:
            actions = ActionRunner(
                Nftables() if settings.guard_nftables else None,
                settings.guard_actionban or None,
                settings.guard_actionunban or None,
            )
        guard = ServerGuard(
            BanStore(medvault.engine),
            ignoreip=settings.trusted_proxies,
            actions=actions,
            snapshot=medvault.data_dir / "guard-status.json",
            redis_url=settings.redis_url,
        )
        medvault.events.listeners.append(guard.on_event)
    app = create_app(medvault, guard)
    asyncio.run(serve(medvault, app, guard))
