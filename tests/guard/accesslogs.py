"""A combined (Apache/nginx) access log of a busy site, deterministic from a seed.

`write_access_log(path, lines, seed)`: mostly browsing from a few thousand visitors, 3 % of requests
with bad-bot user agents (apache-badbots' list), 5 % 404 probes for WordPress, phpMyAdmin and webmail
(nginx-botsearch's) from a few hundred scanners; one request every 50 ms from 2026-03-06.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

_START = 1772755200  # 2026-03-06 00:00 UTC: the same log for the same seed
BROWSERS = [
    "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/129.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "curl/8.5.0",
]
BAD_BOTS = ["EmailCollector", "WebEMailExtrac", "Atomic_Email_Hunter/4.0", "ContactBot/0.2", "EmailSiphon"]
PAGES = ["/", "/records/42", "/static/app.css", "/static/app.js", "/login", "/api/v1/files?page=2", "/favicon.ico"]
PROBES = [
    "/wp-login.php",
    "/phpmyadmin/index.php",
    "/pma/",
    "/roundcube/",
    "/webmail/",
    "/cgi-bin/test.cgi",
    "/.env",
    "/admin/config.php",
    "/mysqladmin/",
    "/wp-admin/setup.php",
]


def _ip(rng: random.Random) -> str:
    return f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def write_access_log(path: Path, n: int, seed: int) -> None:
    """A combined access log: mostly browsing from a few thousand visitors, 3 % bad-bot agents, 5 % 404
    probes from a few hundred scanners."""
    rng = random.Random(seed)
    visitors = [_ip(rng) for _ in range(3000)]
    scanners = [_ip(rng) for _ in range(300)]
    t0 = _START
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(t0 + i / 20))
            roll = rng.random()
            if roll < 0.05:
                ip, page, status, agent = rng.choice(scanners), rng.choice(PROBES), 404, rng.choice(BROWSERS)
            else:
                ip, page, agent = rng.choice(visitors), rng.choice(PAGES), rng.choice(BROWSERS)
                status = rng.choice((200, 200, 200, 200, 304, 302, 404))
                if roll > 0.97:
                    agent = rng.choice(BAD_BOTS)
            method = "POST" if page == "/login" and rng.random() < 0.3 else "GET"
            f.write(
                f'{ip} - - [{stamp}] "{method} {page} HTTP/1.1" {status} {rng.randint(100, 99999)} '
                f'"https://example.org/" "{agent}"\n'
            )
