"""Login latency through the API of a real `medvault serve`, vs the bare Argon2id cost with the same parameters.

Starts a server on a temp data dir, creates one patient account, then times N sequential
`POST /api/v1/login` calls over one kept-alive HTTPS connection (p50/p95/max). In the same run it times the
same Argon2id parameters (read from the settings the server uses: `argon2_time_cost`, `argon2_memory_kib`,
`Argon2Profile.parallelism`, 32-byte output, 16-byte salt):

* in process with argon2-cffi (the library MedVault calls): the floor of a login;
* with the Debian `argon2` CLI (package `argon2`), per run as reported by the CLI itself and as wall time
  including process start.

    .venv/bin/python bench/login_latency.py                 # 30 logins, ~15 s
    .venv/bin/python bench/login_latency.py --logins 100 --concurrency 4
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from argon2.low_level import Type, hash_secret_raw
from benchlib import MedVaultServer, machine_summary, percentiles, tool

from medvault.config import load_settings
from medvault.crypto.passwords import DEFAULT_PROFILE, derive_login_secrets

PASSWORD = "correct horse battery staple"  # noqa: S105 - a throwaway bench account


def summary(label: str, seconds: list[float]) -> str:
    p50, p95 = percentiles(seconds, 50, 95)
    return (
        f"{label:46} p50 {1000 * p50:7.1f} ms   p95 {1000 * p95:7.1f} ms   max {1000 * max(seconds):7.1f} ms"
        f"   (n={len(seconds)})"
    )


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--logins", type=int, default=30, help="timed logins (default 30)")
    ap.add_argument(
        "--concurrency", type=int, default=1, help="clients logging in at once, each on its own connection (default 1)"
    )
    ap.add_argument("--tmp-dir", default=None)
    args = ap.parse_args()
    print(f"machine: {machine_summary()}")

    with tempfile.TemporaryDirectory(prefix="mv-bench-login-", dir=args.tmp_dir) as tmp_name:
        data = Path(tmp_name) / "data"
        settings = load_settings({"data_dir": data})
        t_cost, m_kib, par = settings.argon2_time_cost, settings.argon2_memory_kib, DEFAULT_PROFILE.parallelism
        print(
            f"Argon2id in use: time_cost={t_cost}, memory={m_kib} KiB ({m_kib // 1024} MiB), parallelism={par}, "
            f"hash_len=32 (+2 HKDF-SHA256); login pool: {settings.login_workers} workers, "
            f"queue {settings.login_queue}\n"
        )

        with MedVaultServer(data) as mv:
            mv.create_account("bench", PASSWORD)

            def login_many(n: int) -> list[float]:
                times = []
                with mv.client() as client:
                    client.post("/api/v1/login", json={"username": "bench", "password": PASSWORD})  # warm-up
                    for _ in range(n):
                        t0 = time.perf_counter()
                        r = client.post("/api/v1/login", json={"username": "bench", "password": PASSWORD})
                        times.append(time.perf_counter() - t0)
                        if r.status_code != 200:
                            raise SystemExit(f"login failed: {r.status_code} {r.text}")
                return times

            if args.concurrency == 1:
                api = login_many(args.logins)
            else:
                per = max(1, args.logins // args.concurrency)
                with concurrent.futures.ThreadPoolExecutor(args.concurrency) as pool:
                    api = [t for ts in pool.map(login_many, [per] * args.concurrency) for t in ts]
            wrong_t, unknown_t, throttled = [], [], 0
            for i in range(4):  # each from its own address and name: repeated failures are throttled by design
                for username, times in (("bench", wrong_t), (f"nobody{i}", unknown_t)):
                    with mv.client(f"127.0.4.{len(times) * 2 + (username == 'bench') + 1}") as client:
                        t0 = time.perf_counter()
                        r = client.post("/api/v1/login", json={"username": username, "password": "wrong " + PASSWORD})
                        if r.status_code == 429:
                            throttled += 1
                        elif r.status_code == 401:
                            times.append(time.perf_counter() - t0)
                        else:
                            raise SystemExit(f"failed login answered {r.status_code}")

        salt = os.urandom(16)
        lib = []
        for _ in range(args.logins):
            t0 = time.perf_counter()
            hash_secret_raw(
                PASSWORD.encode(), salt, time_cost=t_cost, memory_cost=m_kib, parallelism=par, hash_len=32, type=Type.ID
            )
            lib.append(time.perf_counter() - t0)
        derive = []
        for _ in range(min(10, args.logins)):
            t0 = time.perf_counter()
            derive_login_secrets(PASSWORD, salt)
            derive.append(time.perf_counter() - t0)

        cli_self, cli_wall = [], []
        argon2 = tool("argon2")
        if argon2:
            log2_m = m_kib.bit_length() - 1
            exact = 1 << log2_m == m_kib
            mem_flag = ["-k", str(m_kib)]
            probe = subprocess.run(
                [argon2, "somesalt12345678", "-id", "-t", "1", *mem_flag, "-p", "1", "-l", "32"],
                input=PASSWORD,
                capture_output=True,
                text=True,
            )
            if probe.returncode != 0:  # older CLIs only take -m log2(KiB)
                mem_flag = ["-m", str(log2_m)]
                if not exact:
                    print(f"note: argon2 CLI takes memory as a power of two; using 2^{log2_m} KiB")
            for _ in range(args.logins):
                t0 = time.perf_counter()
                out = subprocess.run(
                    [argon2, salt.hex()[:16], "-id", "-t", str(t_cost), *mem_flag, "-p", str(par), "-l", "32"],
                    input=PASSWORD,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                cli_wall.append(time.perf_counter() - t0)
                match = re.search(r"([\d.]+) seconds", out.stdout)
                if match:
                    cli_self.append(float(match.group(1)))

    concurrency = f", {args.concurrency} concurrent clients" if args.concurrency > 1 else ""
    print(summary(f"MedVault API login (HTTPS keep-alive{concurrency})", api))
    if wrong_t:
        print(
            summary("MedVault API login, wrong password", wrong_t)
            + (f"  [{throttled} more answered 429]" if throttled else "")
        )
    if unknown_t:
        print(summary("MedVault API login, unknown user (same answer)", unknown_t))
    print(summary("argon2-cffi hash_secret_raw (in process)", lib))
    print(summary("medvault derive_login_secrets (in process)", derive))
    if argon2:
        if cli_self:
            print(summary("argon2 CLI (Debian), its own timing", cli_self))
        print(summary("argon2 CLI (Debian), wall incl. process start", cli_wall))
    else:
        print("argon2 CLI not installed (Debian package `argon2`): skipped")
    api50, lib50 = percentiles(api, 50)[0], percentiles(lib, 50)[0]
    print(
        f"\nAPI overhead over bare Argon2id at p50: {1000 * (api50 - lib50):.1f} ms "
        f"({100 * lib50 / api50:.0f} % of a login is the Argon2id run)"
    )
    if cli_self:
        cli50 = percentiles(cli_self, 50)[0]
        print(f"MedVault login p50 = {100 * api50 / cli50:.0f} % of the argon2 CLI's p50 with the same parameters")


if __name__ == "__main__":
    main()
