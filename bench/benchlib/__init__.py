"""Shared helpers for the benchmark scripts in bench/ (kept in a sub-package so `make bench`,
which runs `bench/*.py`, does not execute it)."""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root, for tests.support

from tests.support import BIN, Server, cli, free_port  # noqa: F401 - re-exported for the scripts

MIB = 1024 * 1024


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


class MedVaultServer(Server):
    """The test suite's real-server harness, as a context manager with the paths the benchmarks need."""

    @property
    def cert(self) -> Path:
        return self.data_dir / "tls" / "cert.pem"

    @property
    def key(self) -> Path:
        return self.data_dir / "tls" / "key.pem"

    def cli(self, *args: str) -> str:
        return cli(self.data_dir, *args, env=self.env).stdout

    def __enter__(self) -> MedVaultServer:
        self.init()
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def create_account(self, name: str, password: str, role: str = "patient") -> None:
        self.account(name, role, password)["client"].close()
