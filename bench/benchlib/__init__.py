"""Shared helpers for the benchmark scripts in bench/ (kept in a sub-package so `make bench`,
which runs `bench/*.py`, does not execute it)."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

MIB = 1024 * 1024
BIN = Path(sys.executable).with_name("medvault")


def machine_summary() -> str:
    model = "unknown CPU"
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model == "unknown CPU":
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    accel = [f for f in ("aes", "vaes", "pclmulqdq", "vpclmulqdq", "avx2", "avx512f") if f in flags]
    return (
        f"{os.cpu_count()} logical cores ({len(os.sched_getaffinity(0))} usable), {model}; "
        f"CPU flags: {' '.join(accel) or 'none of aes/avx'}; Python {sys.version.split()[0]}"
    )


def tool(name: str) -> str | None:
    return shutil.which(name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children_cpu() -> float:
    """User+system CPU seconds of all waited-for children so far."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def proc_cpu(pid: int) -> float:
    """User+system CPU seconds of a live process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def proc_status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM (Linux >= 4.0: write 5 to clear_refs); False when not permitted."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def child_pids(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            out += [int(p) for p in (task / "children").read_text().split()]
    return out


def percentiles(values: list[float], *ps: float) -> list[float]:
    s = sorted(values)
    out = []
    for p in ps:
        k = (len(s) - 1) * p / 100
        lo, hi = int(k), min(int(k) + 1, len(s) - 1)
        out.append(s[lo] + (s[hi] - s[lo]) * (k - lo))
    return out


class MedVaultServer:
    """`medvault serve` on free loopback ports in a temp data dir (same approach as tests/support.py)."""

    def __init__(self, data_dir: Path, env: dict | None = None):
        self.data_dir = data_dir
        self.https_port = free_port()
        self.http_port = free_port()
        self.tmp_dir = data_dir.parent / f"{data_dir.name}-tmp"
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "TMPDIR": str(self.tmp_dir), **(env or {})}
        self.log_path = data_dir.parent / f"{data_dir.name}-server.log"
        self.proc: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def cert(self) -> Path:
        return self.data_dir / "tls" / "cert.pem"

    @property
    def key(self) -> Path:
        return self.data_dir / "tls" / "key.pem"

    def cli(self, *args: str) -> str:
        result = subprocess.run(
            [str(BIN), *args, "--data-dir", str(self.data_dir)],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(f"medvault {' '.join(args)} failed: {result.stderr}")
        return result.stdout

    def __enter__(self) -> MedVaultServer:
        self.cli("init")
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                str(BIN),
                "serve",
                "--data-dir",
                str(self.data_dir),
                "--https-port",
                str(self.https_port),
                "--http-port",
                str(self.http_port),
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}; see {self.log_path}")
            try:
                with socket.create_connection(("127.0.0.1", self.https_port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("server did not start within 30 s")

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, verify=str(self.cert), timeout=120)

    def create_account(self, name: str, password: str, role: str = "patient") -> None:
        code = json.loads(self.cli("user", "invite", name, "--role", role, "--json"))["code"]
        with self.client() as c:
            r = c.post("/api/v1/invitations/accept", json={"code": code, "password": password})
            if r.status_code != 201:
                raise RuntimeError(f"accepting the invitation failed: {r.status_code} {r.text}")
