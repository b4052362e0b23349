"""End-to-end HTTPS upload and download through a real `medvault serve` vs nginx on the same machine.

In one run, with one random file (temp dir) and curl as the client for both:

* MedVault: a fresh data dir, a patient account, login through the API (cookie jar + CSRF token), then
  `curl -F file=@...` to `POST /api/v1/records` and `curl -o /dev/null` of `GET /api/v1/records/{id}/content`;
* nginx (Debian): a temp `nginx.conf` (`daemon off`, temp prefix, one worker, `ssl_protocols TLSv1.2 TLSv1.3`)
  with MedVault's own certificate and key, serving the file for download and receiving uploads with
  `dav_methods PUT` (the body is really read and stored, into `client_body_temp_path` then renamed);

and prints MiB/s, CPU seconds of server and client, the MedVault server's peak RSS (VmHWM, reset per
transfer) and MedVault's throughput as a percentage of nginx's (targets: downloads >= 50 %, uploads >= 25 %).
With `--profile` it repeats one upload and one download under py-spy (if installed in the venv) and prints
where the server's time goes.

    .venv/bin/python bench/https_transfer.py                           # 256 MiB, ~1 min
    .venv/bin/python bench/https_transfer.py --size-mib 1024 --profile  # the 1 GiB figures
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (
    MIB,
    MedVaultServer,
    child_pids,
    children_cpu,
    free_port,
    machine_summary,
    proc_cpu,
    proc_status_kib,
    reset_peak_rss,
    tool,
)

PASSWORD = "correct horse battery staple"  # noqa: S105 - a throwaway bench account


@dataclass
class Transfer:
    label: str
    wall: float
    server_cpu: float
    client_cpu: float
    peak_rss_mib: float | None = None

    def mib_s(self, size: int) -> float:
        return size / MIB / self.wall


class RssSampler:
    """Peak VmRSS of a process sampled every 20 ms, alongside the kernel's VmHWM."""

    def __init__(self, pid: int):
        self.pid = pid
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak_kib = max(self.peak_kib, proc_status_kib(self.pid, "VmRSS"))
            except OSError:
                return
            self._stop.wait(0.02)

    def __enter__(self) -> RssSampler:
        self.hwm_reset = reset_peak_rss(self.pid)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mib(self) -> float:
        hwm = proc_status_kib(self.pid, "VmHWM") if self.hwm_reset else 0
        return max(hwm, self.peak_kib) / 1024


def curl(argv: list[str]) -> dict:
    """Run curl with a JSON -w report; return it (raises on a transport error)."""
    fmt = '{"code":%{http_code},"total":%{time_total},"up":%{size_upload},"down":%{size_download}}'
    out = subprocess.run([tool("curl"), "-sS", "-w", fmt, *argv], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def tls_summary(url: str, cacert: Path) -> str:
    out = subprocess.run(
        [tool("curl"), "-sS", "-v", "--cacert", str(cacert), "-o", "/dev/null", url], capture_output=True, text=True
    )
    match = re.search(r"SSL connection using (.+)", out.stderr)
    return match.group(1).strip() if match else "unknown"


def timed(
    label: str, argv: list[str], server_pids: list[int], expect: tuple[int, ...], rss_pid: int | None = None
) -> tuple[Transfer, dict]:
    cpu0 = sum(proc_cpu(p) for p in server_pids)
    ccpu0 = children_cpu()
    sampler = RssSampler(rss_pid) if rss_pid else None
    if sampler:
        sampler.__enter__()
    t0 = time.perf_counter()
    report = curl(argv)
    wall = time.perf_counter() - t0
    if sampler:
        sampler.__exit__()
    if report["code"] not in expect:
        raise SystemExit(f"{label}: unexpected HTTP status {report['code']}")
    server_cpu = sum(proc_cpu(p) for p in server_pids) - cpu0
    return Transfer(label, wall, server_cpu, children_cpu() - ccpu0, sampler.peak_mib if sampler else None), report


# --- nginx ------------------------------------------------------------------------------------------------

NGINX_CONF = """\
{user}worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    default_type application/octet-stream;
    sendfile on;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        root {prefix}/www;
        location /up/ {{
            dav_methods PUT;
            create_full_put_path on;
            client_max_body_size 0;
            client_body_buffer_size 1m;
        }}
    }}
}}
"""


class Nginx:
    def __init__(self, prefix: Path, cert: Path, key: Path, payload: Path):
        self.prefix = prefix
        self.port = free_port()
        (prefix / "www" / "up").mkdir(parents=True)
        os.link(payload, prefix / "www" / "file.bin")
        user = f"user {pwd.getpwuid(0).pw_name};\n" if os.geteuid() == 0 else ""
        self.conf = prefix / "nginx.conf"
        self.conf.write_text(NGINX_CONF.format(user=user, prefix=prefix, port=self.port, cert=cert, key=key))
        self.proc: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def __enter__(self) -> Nginx:
        self.proc = subprocess.Popen(
            [tool("nginx"), "-p", str(self.prefix), "-c", str(self.conf), "-e", str(self.prefix / "error.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"nginx exited: {(self.prefix / 'error.log').read_text()}")
            if child_pids(self.proc.pid):
                return self
            time.sleep(0.05)
        raise SystemExit("nginx did not start")

    def workers(self) -> list[int]:
        return child_pids(self.proc.pid)

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --- profiling --------------------------------------------------------------------------------------------


def profile_server(pid: int, out: Path, argv: list[str]) -> None:
    """Sample the server with py-spy while curl runs `argv`; print self time by function."""
    py_spy = Path(sys.executable).with_name("py-spy")
    spy = subprocess.Popen(
        [
            str(py_spy),
            "record",
            "--pid",
            str(pid),
            "--format",
            "raw",
            "--rate",
            "200",
            "--nonblocking",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    time.sleep(1.0)  # let py-spy attach
    curl(argv)
    time.sleep(0.3)
    spy.send_signal(signal.SIGINT)
    try:
        spy.wait(timeout=30)
    except subprocess.TimeoutExpired:
        spy.kill()
    if not out.exists():
        print(f"    py-spy produced no profile: {spy.stderr.read().decode()[-300:]}")
        return
    self_time: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]
        frames = [f for f in frames if not f.startswith("process ") and not f.startswith("thread ")]
        if frames:
            self_time[frames[-1]] += n
        for f in set(frames):
            inclusive[f] += n
    if not total:
        print("    (no samples)")
        return
    print(f"    {total} busy samples; self time (leaf Python function, C calls included):")
    for name, n in self_time.most_common(12):
        print(f"    {100 * n / total:5.1f} %  {short(name)}")
    interesting = (
        "receive_upload",
        "write (medvault/vault/records.py)",
        "update (medvault/crypto/stream.py)",
        "read_range",
        "open_chunk",
        "sslproto",
        "h11_impl",
        "streaming",
        "hash_secret",
    )
    print("    inclusive time of selected functions:")
    for name, n in inclusive.most_common():
        if any(k in name for k in interesting):
            print(f"    {100 * n / total:5.1f} %  {short(name)}")


def short(frame: str) -> str:
    return re.sub(r"\(/.*?/(site-packages|lib/python3\.\d+|src)/", "(", frame)


# ----------------------------------------------------------------------------------------------------------


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mib", type=int, default=256, help="file size in MiB (default 256; 1024 = 1 GiB)")
    ap.add_argument("--repeat", type=int, default=1, help="transfers per server and direction; fastest kept")
    ap.add_argument("--profile", action="store_true", help="also profile the MedVault server with py-spy")
    ap.add_argument("--tmp-dir", default=None, help="where the temp files go (default: $TMPDIR)")
    args = ap.parse_args()
    size = args.size_mib * MIB
    missing = [t for t in ("curl", "nginx") if tool(t) is None]
    if missing:
        print(f"https_transfer: skipped, missing {' '.join(missing)} (make test-tools installs them)")
        return
    print(f"machine: {machine_summary()}")

    with tempfile.TemporaryDirectory(prefix="mv-bench-https-", dir=args.tmp_dir) as tmp_name:
        tmp = Path(tmp_name)
        payload = tmp / "payload.bin"
        with payload.open("wb") as out:
            for _ in range(args.size_mib):
                out.write(os.urandom(MIB))

        with MedVaultServer(tmp / "data") as mv:
            mv.create_account("bench", PASSWORD)
            jar = tmp / "cookies.txt"
            cacert = ["--cacert", str(mv.cert)]
            login = subprocess.run(
                [
                    tool("curl"),
                    "-sS",
                    *cacert,
                    "-c",
                    str(jar),
                    "-H",
                    "content-type: application/json",
                    "--data",
                    json.dumps({"username": "bench", "password": PASSWORD}),
                    f"{mv.base}/api/v1/login",
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            csrf = json.loads(login.stdout)["csrf_token"]
            pid = mv.proc.pid
            idle_rss = proc_status_kib(pid, "VmRSS") / 1024

            with Nginx(tmp / "nginx", mv.cert, mv.key, payload) as ngx:
                print(f"file: {args.size_mib} MiB; client: curl; same certificate (P-256) for both")
                print(
                    f"TLS  MedVault: {tls_summary(mv.base + '/', mv.cert)}; "
                    f"nginx: {tls_summary(ngx.base + '/file.bin', mv.cert)}"
                )
                print(f"MedVault server idle RSS after login: {idle_rss:.0f} MiB\n")
                common = [*cacert, "-H", "Expect:"]  # no 100-continue round trip for either
                mv_up_argv = [
                    *common,
                    "-b",
                    str(jar),
                    "-H",
                    f"X-CSRF-Token: {csrf}",
                    "-o",
                    str(tmp / "up.json"),
                    "-F",
                    f"file=@{payload};type=application/octet-stream",
                    f"{mv.base}/api/v1/records",
                ]
                best: dict[str, Transfer] = {}
                record_id = ""
                for i in range(args.repeat):
                    rounds = [
                        ("MedVault upload", mv_up_argv, [pid], (201,), pid),
                        (
                            "nginx upload",
                            [*common, "-o", "/dev/null", "-T", str(payload), f"{ngx.base}/up/copy{i}.bin"],
                            ngx.workers(),
                            (201, 204),
                            None,
                        ),
                    ]
                    for label, argv, pids, expect, rss_pid in rounds:
                        t, _ = timed(label, argv, pids, expect, rss_pid)
                        if label.startswith("MedVault"):
                            record_id = json.loads((tmp / "up.json").read_text())["id"]
                        if label not in best or t.wall < best[label].wall:
                            best[label] = t
                    (tmp / "nginx" / "www" / "up" / f"copy{i}.bin").unlink(missing_ok=True)
                    mv_down_argv = [
                        *common,
                        "-b",
                        str(jar),
                        "-o",
                        "/dev/null",
                        f"{mv.base}/api/v1/records/{record_id}/content",
                    ]
                    for label, argv, pids, rss_pid in (
                        ("MedVault download", mv_down_argv, [pid], pid),
                        ("nginx download", [*common, "-o", "/dev/null", f"{ngx.base}/file.bin"], ngx.workers(), None),
                    ):
                        t, report = timed(label, argv, pids, (200,), rss_pid)
                        if report["down"] != size:
                            raise SystemExit(f"{label}: got {report['down']} bytes, expected {size}")
                        if label not in best or t.wall < best[label].wall:
                            best[label] = t
                nginx_rss = max(proc_status_kib(w, "VmHWM") for w in ngx.workers()) / 1024

                # The download is checked byte for byte once, outside the timings.
                check = tmp / "check.bin"
                curl([*common, "-b", str(jar), "-o", str(check), f"{mv.base}/api/v1/records/{record_id}/content"])
                same = subprocess.run(["cmp", "-s", str(payload), str(check)]).returncode == 0
                check.unlink()

                print(
                    f"{'transfer':20}{'MiB/s':>8}{'wall s':>9}{'server CPU s':>14}{'server CPU %':>14}"
                    f"{'curl CPU s':>12}{'peak RSS MiB':>14}"
                )
                for t in best.values():
                    rss = f"{t.peak_rss_mib:.0f}" if t.peak_rss_mib is not None else "-"
                    print(
                        f"{t.label:20}{t.mib_s(size):>8.0f}{t.wall:>9.2f}{t.server_cpu:>14.2f}"
                        f"{100 * t.server_cpu / t.wall:>13.0f}%{t.client_cpu:>12.2f}{rss:>14}"
                    )
                print(
                    f"(nginx worker peak RSS over the run: {nginx_rss:.0f} MiB; MedVault download byte-exact: "
                    f"{'yes' if same else 'NO'})\n"
                )
                for direction, target in (("download", 50), ("upload", 25)):
                    pct = 100 * best[f"MedVault {direction}"].mib_s(size) / best[f"nginx {direction}"].mib_s(size)
                    print(
                        f"MedVault {direction:8} = {pct:5.1f} % of nginx (target >= {target} %: "
                        f"{'meets' if pct >= target else 'BELOW'})"
                    )
                mv_up = best["MedVault upload"]
                print(
                    f"MedVault server CPU per GiB: upload {mv_up.server_cpu * 1024 / args.size_mib:.1f} s, "
                    f"download {best['MedVault download'].server_cpu * 1024 / args.size_mib:.1f} s"
                )

                if args.profile:
                    if not Path(sys.executable).with_name("py-spy").exists():
                        print("\n--profile: py-spy is not installed in the venv (.venv/bin/pip install py-spy)")
                    else:
                        print("\nprofile of the MedVault server during one upload (py-spy, 200 Hz):")
                        profile_server(pid, tmp / "up.prof", mv_up_argv)
                        record_id = json.loads((tmp / "up.json").read_text())["id"]
                        print("\nprofile of the MedVault server during one download:")
                        profile_server(
                            pid,
                            tmp / "down.prof",
                            [
                                *common,
                                "-b",
                                str(jar),
                                "-o",
                                "/dev/null",
                                f"{mv.base}/api/v1/records/{record_id}/content",
                            ],
                        )
        shutil.rmtree(tmp / "data", ignore_errors=True)


if __name__ == "__main__":
    main()
