"""Benchmark MedVault's filter engine against fail2ban-regex on the same filter files.

Generates an Apache combined access log and an sshd auth.log (N lines each, in a temp dir),
then runs, in separate child processes so peak memory is measured per tool, MedVault's matcher
and `fail2ban-regex` with the same filter (apache-badbots for the access log, sshd for auth.log)
and prints lines/s, peak RSS and the speed ratio.

    .venv/bin/python bench/guard_filters.py --lines 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FILTER_DIR = Path("/etc/fail2ban/filter.d")
AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/129.0 Safari/537.36",
    "curl/8.5.0",
]
BAD_AGENTS = ["EmailCollector", "WebEMailExtrac", "Atomic_Email_Hunter/4.0"]
TARGET_RATIO = 10  # the guard issue's target: >= 10x fail2ban-regex's lines per second, in the same run
PATHS = ["/", "/records/42", "/static/app.css", "/login", "/api/v1/files?page=2"]


def _ip(rng: random.Random) -> str:
    return f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def generate_access(path: Path, n: int, rng: random.Random) -> None:
    t0 = time.time() - n
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(t0 + i))
            agent = rng.choice(BAD_AGENTS) if rng.random() < 0.02 else rng.choice(AGENTS)
            f.write(
                f'{_ip(rng)} - - [{stamp}] "GET {rng.choice(PATHS)} HTTP/1.1" 200 {rng.randint(100, 9999)} '
                f'"-" "{agent}"\n'
            )


def generate_sshd(path: Path, n: int, rng: random.Random) -> None:
    t0 = time.time() - n
    templates = [
        "Failed password for root from {ip} port {port} ssh2",
        "Failed password for invalid user admin from {ip} port {port} ssh2",
        "Invalid user oracle from {ip} port {port}",
        "Did not receive identification string from {ip}",
        "Accepted publickey for alice from {ip} port {port} ssh2: ED25519 SHA256:abc",
        "Connection closed by {ip} port {port} [preauth]",
        "pam_unix(sshd:session): session opened for user alice(uid=1000) by (uid=0)",
        "Received disconnect from {ip} port {port}:11: disconnected by user",
        "Disconnected from user alice {ip} port {port}",
        "Server listening on 0.0.0.0 port 22.",
    ]
    # Each line is its own connection, with its own pid, as sshd forks one process per
    # connection and the kernel does not reuse a pid soon (pid_max is 4194304 on 64-bit Linux).
    # Random pids would make unrelated lines share sshd's multi-line connection id (`<F-MLFID>`),
    # and then the result depends on how many connections each tool remembers (fail2ban: 100,
    # MedVault: 10,000), so the two tools could not be compared line for line.
    pid = rng.randint(1000, 9999)
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            stamp = time.strftime("%b %d %H:%M:%S", time.localtime(t0 + i))
            msg = rng.choice(templates).format(ip=_ip(rng), port=rng.randint(1024, 65535))
            pid = pid + rng.randint(1, 3) if pid < 4_194_000 else 1000
            f.write(f"{stamp} host sshd[{pid}]: {msg}\n")


def child_medvault(filter_spec: str, log: str, jobs: int) -> None:
    """Run in a child process: match every line (on `jobs` processes) and print counts as JSON."""
    from medvault.guard.filterfile import load_filter, resolve_filter_path
    from medvault.guard.matcher import Filter
    from medvault.guard.parallel import tally_file

    path, opts = resolve_filter_path(filter_spec)
    flt = Filter(load_filter(path, opts))
    tally = tally_file(flt, log, time.time(), jobs=jobs)
    print(json.dumps({"lines": tally.lines, "matched": tally.matched, "ignored": tally.ignored}))


def _measure(argv: list[str]) -> tuple[float, int, str, float]:
    """Wall seconds, peak RSS in MB (the largest single process), stdout and CPU seconds of one child
    process and the processes it waited for (MedVault's workers)."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        elapsed = time.perf_counter() - start
        out.seek(0)
        text = out.read().decode(errors="replace")
    if proc.returncode:
        raise SystemExit(f"{argv[0]} failed with {proc.returncode}")
    return elapsed, usage.ru_maxrss // 1024, text, usage.ru_utime + usage.ru_stime


def _f2b_matched(text: str) -> str:
    for line in text.splitlines():
        if line.startswith("Lines:"):
            return line.strip()
    return "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--access-filter", default="apache-badbots")
    parser.add_argument("--sshd-filter", default="sshd")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="MedVault processes (default: CPUs)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_medvault(*args.child, args.jobs)
        return
    f2b = shutil.which("fail2ban-regex")
    rng = random.Random(42)
    with tempfile.TemporaryDirectory() as tmp:
        access, auth = Path(tmp) / "access.log", Path(tmp) / "auth.log"
        generate_access(access, args.lines, rng)
        generate_sshd(auth, args.lines, rng)
        print(f"{args.lines} lines per log; MedVault jobs: {args.jobs}; fail2ban-regex: {f2b or 'not installed'}")
        for name, log in ((args.access_filter, access), (args.sshd_filter, auth)):
            child = [sys.executable, __file__, "--jobs", str(args.jobs), "--child", name, str(log)]
            mv_s, mv_mb, mv_out, mv_cpu = _measure(child)
            counts = json.loads(mv_out)
            mv_rate = counts["lines"] / mv_s
            print(
                f"[{name}] medvault:       {mv_rate:>10,.0f} lines/s  {mv_s:6.1f} s  cpu {mv_cpu:6.1f} s  "
                f"peak {mv_mb:5d} MB  "
                f"matched {counts['matched']} ignored {counts['ignored']}"
            )
            if not f2b:
                continue
            spec = str(FILTER_DIR / f"{name}.conf") if "[" not in name else name
            f_s, f_mb, f_out, f_cpu = _measure([f2b, str(log), spec])
            f_rate = args.lines / f_s
            print(
                f"[{name}] fail2ban-regex: {f_rate:>10,.0f} lines/s  {f_s:6.1f} s  cpu {f_cpu:6.1f} s  "
                f"peak {f_mb:5d} MB  "
                f"{_f2b_matched(f_out)}"
            )
            ratio = mv_rate / f_rate
            print(
                f"[{name}] speed ratio medvault/fail2ban: {ratio:.1f}x "
                f"(target >= {TARGET_RATIO}x: {'met' if ratio >= TARGET_RATIO else 'NOT met'}); "
                f"peak memory {'lower' if mv_mb < f_mb else 'NOT lower'}"
            )


if __name__ == "__main__":
    main()
