"""Guard reaction: ban latency (in-process and from a tailed file), the cost of refusing a banned client,
and a legitimate user's latency while 10,000 banned requests arrive.

Peer: fail2ban's daemon, whose figures (0.3 to 1.6 s from log line to firewall rule, polling backend) are
measured facts in shared/notes/fail2ban.md; its daemon is not started here. Run: python bench/guard_latency.py
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from benchlib import BIN, MedVaultServer, percentiles

from medvault.guard.banlist import BanList
from medvault.web.gate import BanGate

FAIL2BAN_LATENCY = "0.3-1.6 s (shared/notes/fail2ban.md)"


def refused(base_port: int, source: str) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", base_port), timeout=1, source_address=(source, 0)) as s:
            s.settimeout(1)
            s.sendall(b"\x16\x03\x01\x00\x00")
            return s.recv(1) == b""
    except OSError:
        return True


def in_process_latency(mv: MedVaultServer, rounds: int) -> list[float]:
    """Time from the answer to the third probe until a new connection from that address is refused."""
    out = []
    for i in range(rounds):
        source = f"127.0.3.{i + 1}"
        transport = httpx.HTTPTransport(local_address=source, verify=mv.ssl_context(), retries=0)
        with httpx.Client(base_url=mv.base, transport=transport, timeout=5) as c:
            c.get("/.env")
            c.get("/.git/config")
            c.get("/wp-login.php")
            answered = time.perf_counter()
        while not refused(mv.https_port, source):
            if time.perf_counter() - answered > 5:
                break
        out.append(time.perf_counter() - answered)
    return out


def tailed_file_latency(tmp: Path, rounds: int) -> list[float]:
    """`medvault guard run` on an sshd log: time from appending the failing line to the ban command's write."""
    log, bans = tmp / "auth.log", tmp / "bans.txt"
    log.write_text("")
    config = tmp / "guard.toml"
    config.write_text(f"""poll_interval = 0.05
state = "{tmp / "state.json"}"
[jails.sshd]
filter = "/etc/fail2ban/filter.d/sshd.conf"
logpath = ["{log}"]
maxretry = 1
findtime = 600
bantime = 600
[jails.sshd.action]
actionban = "sh -c 'echo <ip> >> {bans}'"
""")
    proc = subprocess.Popen(
        [str(BIN), "guard", "run", "--config", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    out = []
    try:
        time.sleep(1.5)
        for i in range(rounds):
            ip = f"203.0.113.{i + 1}"
            stamp = time.strftime("%b %d %H:%M:%S")
            start = time.perf_counter()
            with log.open("a") as fh:
                fh.write(f"{stamp} host sshd[{1000 + i}]: Failed password for root from {ip} port 22 ssh2\n")
            while not (bans.exists() and ip in bans.read_text()) and time.perf_counter() - start < 5:
                time.sleep(0.002)
            out.append(time.perf_counter() - start)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return out


def gate_cost(n: int) -> float:
    """Microseconds for the ASGI gate to refuse one request from a banned address."""
    bans = BanList(ipv6_prefix=64)
    bans.ban("198.51.100.7", time.time() + 3600)
    now = time.time()

    async def app(scope, receive, send):
        raise AssertionError("a banned request reached the app")

    async def send(message):
        return None

    gate = BanGate(app, lambda ip: bans.is_banned(ip, now))
    scope = {"type": "http", "medvault.client_ip": "198.51.100.7", "client": ("198.51.100.7", 1)}

    async def run() -> float:
        start = time.perf_counter()
        for _ in range(n):
            await gate(scope, None, send)
        return (time.perf_counter() - start) / n * 1e6

    return asyncio.run(run())


def lookup_cost(n: int) -> float:
    bans = BanList(ipv6_prefix=64)
    for i in range(10_000):
        bans.ban(f"10.{i // 256}.{i % 256}.1", time.time() + 3600)
    now = time.time()
    start = time.perf_counter()
    for _ in range(n):
        bans.is_banned("10.3.4.1", now)
    return (time.perf_counter() - start) / n * 1e6


def user_under_banned_storm(mv: MedVaultServer, attempts: int) -> tuple[list[float], float, int]:
    """A legitimate user's request latency while a banned address makes `attempts` connections."""
    transport = httpx.HTTPTransport(local_address="127.0.3.200", verify=mv.ssl_context(), retries=0)
    with httpx.Client(base_url=mv.base, transport=transport, timeout=5) as c:
        for path in ("/.env", "/.git/config", "/wp-login.php"):
            c.get(path)
    done = threading.Event()
    made = [0]

    def storm() -> None:
        for _ in range(attempts):
            refused(mv.https_port, "127.0.3.200")
            made[0] += 1
        done.set()

    user = mv.account("stormuser")["client"]
    thread = threading.Thread(target=storm, daemon=True)
    start = time.perf_counter()
    thread.start()
    latencies = []
    while not done.is_set() and len(latencies) < 100_000:
        t = time.perf_counter()
        answer = user.get("/api/v1/records")
        assert answer.status_code == 200, (answer.status_code, answer.text)
        latencies.append(time.perf_counter() - t)
        time.sleep(0.02)  # a person's pace; flat out, the user would be a flood (400 requests in 10 s)
    return latencies, time.perf_counter() - start, made[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--storm", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        with MedVaultServer(Path(tmp) / "data") as mv:
            lat = in_process_latency(mv, args.rounds)
            p50, p99 = percentiles(lat, 50, 99)
            print(
                f"ban latency in process: p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms "
                f"(n={len(lat)}); fail2ban daemon: {FAIL2BAN_LATENCY}"
            )
            users, wall, made = user_under_banned_storm(mv, args.storm)
            u50, u99 = percentiles(users, 50, 99)
            print(
                f"legitimate user during {made} banned connection attempts ({made / wall:.0f}/s): "
                f"p50 {u50 * 1000:.1f} ms, p99 {u99 * 1000:.1f} ms (n={len(users)})"
            )
        if Path("/etc/fail2ban/filter.d/sshd.conf").exists():
            tail = tailed_file_latency(Path(tmp), args.rounds)
            t50, t99 = percentiles(tail, 50, 99)
            print(
                f"ban latency from a tailed file (medvault guard run, 50 ms poll): p50 {t50 * 1000:.0f} ms, "
                f"p99 {t99 * 1000:.0f} ms; fail2ban daemon: {FAIL2BAN_LATENCY}"
            )
        else:
            print("fail2ban's sshd filter not installed: tailed-file latency skipped", file=sys.stderr)
    print(f"cost of refusing a banned request in the ASGI gate: {gate_cost(200_000):.2f} µs")
    print(f"ban-list lookup with 10,000 bans: {lookup_cost(1_000_000):.3f} µs")


if __name__ == "__main__":
    main()
