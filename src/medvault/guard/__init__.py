"""MedVault's guard: log-based intrusion prevention with fail2ban-compatible filters.

The pipeline is sources (`tail`) → filters (`filterfile`, `dates`, `matcher`) → jails (`jail`)
→ decisions (`banlist`) → actions (`runner`).  Everything but `tail` and `runner` is pure and
takes time as an argument, so the server can feed its own log events in-process and tests need
no clock.
"""

from medvault.guard.banlist import BanList
from medvault.guard.errors import ConfigError, FilterError, GuardError
from medvault.guard.filterfile import FilterSpec, load_filter
from medvault.guard.jail import Ban, BantimeIncrement, Jail
from medvault.guard.matcher import IGNORED, Failure, Filter

__all__ = [
    "IGNORED",
    "Ban",
    "BanList",
    "BantimeIncrement",
    "ConfigError",
    "Failure",
    "Filter",
    "FilterError",
    "FilterSpec",
    "GuardError",
    "Jail",
    "load_filter",
]
