"""Benchmark `medvault guard test-filter` against `fail2ban-regex`: the same filter files, the same logs.

Each tool runs as the operator runs it, one command per log, and is measured by `wait4`: wall time, CPU
time (user+sys of the command and every process it waited for, so worker processes cannot pass for
speed) and peak memory (the largest process).  Both report failures per address, and the script checks
that they found the same addresses with the same counts.

Logs (N lines each, generated in a temporary folder):
* sshd: a busy internet-facing auth.log (`tests/guard/sshdlogs.py`: thousands of interleaved
  connections, bots and real users), with the sshd filter in its normal and aggressive modes;
* access: an Apache/nginx combined access log (`tests/guard/accesslogs.py`: browsers, crawlers, bad bots, 404 probes for
  WordPress, phpMyAdmin and webmail), with apache-badbots and nginx-botsearch.

    .venv/bin/python bench/guard_filters.py --lines 1000000
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for the log generators

from tests.guard.accesslogs import write_access_log
from tests.guard.sshdlogs import write_sshd_log

MEDVAULT = Path(sys.executable).with_name("medvault")
FAIL2BAN_REGEX = "fail2ban-regex"
TARGET_RATIO = 10  # issue 10: at least 10 times fail2ban-regex in CPU time, at no more peak memory
def measure(argv: list[str]) -> tuple[float, float, int, str]:
    """Wall seconds, CPU seconds and peak MB of a command, and its standard output.

    `wait4`'s usage of a finished child covers the child and every process it waited for (worker
    processes included); its peak is that of the largest of them.
    """
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status):
            raise SystemExit(f"{' '.join(argv)} failed")
        out.seek(0)
        return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss // 1024, out.read().decode(errors="replace")


# A command's peak memory (`ru_maxrss`) counts the pages of the process it was started from (Linux keeps the
# larger across `exec`), so commands are started from small fresh processes of a fork server, one each, not
# from this script once it holds the logs' results.
_LAUNCHERS: Any = None


def _measured(argv: list[str]) -> tuple[float, float, int, str]:
    return _LAUNCHERS.apply(measure, (argv,))


def medvault_run(spec: str, log: Path, jobs: int) -> tuple[float, float, int, Counter[str]]:
    argv = [str(MEDVAULT), "guard", "test-filter", spec, str(log), "--json", "--jobs", str(jobs)]
    wall, cpu, mb, out = _measured(argv)
    return wall, cpu, mb, Counter(json.loads(out)["hosts"])


def fail2ban_run(spec: str, log: Path) -> tuple[float, float, int, Counter[str]]:
    wall, cpu, mb, out = _measured([FAIL2BAN_REGEX, "--usedns=no", "-o", "ip", str(log), spec])
    return wall, cpu, mb, Counter(line.strip() for line in out.splitlines() if line.strip())


def _generate(auth: Path, access: Path, lines: int, seed: int) -> None:
    write_sshd_log(auth, lines, seed)
    write_access_log(access, lines, seed)


def main() -> None:
    global _LAUNCHERS
    _LAUNCHERS = multiprocessing.get_context("forkserver").Pool(1, maxtasksperchild=1)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=200_000, help="lines per log (default 200,000)")
    parser.add_argument("--jobs", type=int, default=1, help="medvault's --jobs (default 1)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        auth, access = Path(tmp) / "auth.log", Path(tmp) / "access.log"
        # In a child process, for the same reason as `_LAUNCHERS`.
        fork = multiprocessing.get_context("fork")
        child = fork.Process(target=_generate, args=(auth, access, args.lines, args.seed))
        child.start()
        child.join()
        if child.exitcode:
            raise SystemExit("generating the logs failed")
        print(f"{args.lines:,} lines per log; medvault --jobs {args.jobs}; peer: {FAIL2BAN_REGEX} --usedns=no -o ip")
        cases = [
            ("sshd", auth),
            ("sshd[mode=aggressive]", auth),
            ("apache-badbots", access),
            ("nginx-botsearch", access),
        ]
        met = True
        for spec, log in cases:
            m_wall, m_cpu, m_mb, m_hosts = medvault_run(spec, log, args.jobs)
            f_wall, f_cpu, f_mb, f_hosts = fail2ban_run(spec, log)
            same = m_hosts == f_hosts
            cpu_ratio, wall_ratio = f_cpu / m_cpu, f_wall / m_wall
            ok = same and cpu_ratio >= TARGET_RATIO and m_mb <= f_mb
            met &= ok
            print(
                f"[{spec}] medvault {m_wall:6.2f} s wall {m_cpu:6.2f} s cpu {m_mb:4d} MB | "
                f"fail2ban-regex {f_wall:6.2f} s wall {f_cpu:6.2f} s cpu {f_mb:4d} MB | "
                f"cpu {cpu_ratio:4.1f}x wall {wall_ratio:4.1f}x | {sum(f_hosts.values()):,} failures, "
                f"{len(f_hosts):,} hosts, same: {'yes' if same else 'NO'} | "
                f"{args.lines / m_cpu:,.0f} vs {args.lines / f_cpu:,.0f} lines per cpu second"
            )
        print(f"target: same hosts, >= {TARGET_RATIO}x cpu, peak memory <= fail2ban's: {'met' if met else 'NOT met'}")
    _LAUNCHERS.close()
    _LAUNCHERS.join()


if __name__ == "__main__":
    main()
