"""The in-server guard's thresholds, tuned for a clinic and documented in docs/architecture.md.

Edge jails (scanner, flood, TLS noise) ban the address for everyone, before TLS. Login jails only
refuse logins, inside the application, and never a browser that has signed in to that account before.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GuardPolicy:
    # Edge: probes of paths MedVault does not have and scanner signatures (medvault-scan filter).
    scan_maxretry: int = 3
    scan_findtime: float = 300
    # Edge: bursts of 4xx answers (directory brute force) — a person mistyping a URL stays far below.
    errors_maxretry: int = 20
    errors_findtime: float = 60
    # Edge: request flood, N requests in T seconds from one address.
    flood_maxretry: int = 400
    flood_findtime: float = 10
    # Edge: failed TLS handshakes, connections without a request, header timeouts (TLS scanners, slowloris).
    noise_maxretry: int = 15
    noise_findtime: float = 60
    # Edge: TLS handshakes no browser makes (plain text on the TLS port, refused protocols or suites).
    probe_maxretry: int = 3
    probe_findtime: float = 300
    # Edge ban length and growth for repeat offenders.
    bantime: float = 3600
    bantime_factor: float = 2.0
    bantime_max: float = 7 * 86400
    # Login, per address: failed logins, and distinct user names tried.
    login_ip_maxretry: int = 10
    login_ip_users: int = 5
    login_findtime: float = 900
    login_bantime: float = 900
    # Login, per user name: after this many failures a growing delay, capped so the owner waits minutes at most.
    user_free_failures: int = 5
    user_delay_max: float = 300
    user_findtime: float = 900
    # Connections: cap per address, and time allowed for the first request's head.
    max_connections_per_ip: int = 64
    header_timeout: float = 10
