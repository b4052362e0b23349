"""MedVault's guard: log-based intrusion prevention with fail2ban-compatible filters.

The pipeline is sources (`tail`) → filters (`filterfile`, `dates`, `matcher`) → jails (`jail`)
→ decisions (`banlist`) → actions (`runner`).  Everything but `tail` and `runner` is pure and
takes time as an argument, so the server can feed its own log events in-process and tests need
no clock.

Nothing is imported here: `medvault guard test-filter` loads only the modules a filter needs.
"""
