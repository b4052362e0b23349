"""Real attack tools against a real server, each from its own loopback address, each bounded in time.

Floods live in test_floods.py, on a server of their own.

Every test states what the tool achieved before its ban (written to test-output/attack-numbers.json)
while a legitimate user on 127.0.0.1 keeps working.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.attackers import client_from, is_refused, run_as, snat_group
from tests.support import require_tool, upload

NUMBERS = Path(__file__).resolve().parents[2] / "test-output" / "attack-numbers.json"
PASSWORD = "correct horse battery"


def record_numbers(tool: str, **numbers) -> None:
    NUMBERS.parent.mkdir(exist_ok=True)
    data = json.loads(NUMBERS.read_text()) if NUMBERS.exists() else {}
    data[tool] = numbers
    NUMBERS.write_text(json.dumps(data, indent=2))


def _log(server, name: str) -> list[str]:
    path = server.data_dir / "logs" / name
    return path.read_text().splitlines() if path.exists() else []


def requests_from(server, ip: str) -> int:
    return sum(1 for line in _log(server, "access.log") if line.startswith(ip + " "))


def events_from(server, ip: str, kind: str) -> int:
    return sum(1 for line in _log(server, "security.log") if f"{kind} ip={ip}" in line)


def failures_from(server, ip: str) -> int:
    return events_from(server, ip, "auth-failure")


class LegitimateUser(threading.Thread):
    """Signs in from `source` (device cookie), then downloads a record every 100 ms until stopped."""

    def __init__(self, server, name: str, source: str = "127.0.0.1"):
        super().__init__(daemon=True)
        self.account = server.account(name, password=PASSWORD, source=source)
        self.rid = upload(self.account["client"], b"x-ray report " * 100).json()["id"]
        self.statuses: list[int | str] = []
        self.latencies: list[float] = []
        self.halt = threading.Event()

    def run(self) -> None:
        c = self.account["client"]
        while not self.halt.is_set() and len(self.statuses) < 5000:
            start = time.perf_counter()
            try:
                status = c.get(f"/api/v1/records/{self.rid}/content").status_code
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            self.latencies.append(time.perf_counter() - start)
            self.statuses.append(status)
            time.sleep(0.1)

    def finish(self) -> dict:
        self.halt.set()
        self.join(timeout=10)
        lat = sorted(self.latencies)
        return {
            "user_requests": len(lat),
            "user_ok": self.statuses.count(200),
            "user_failures": sorted({str(s) for s in self.statuses if s != 200}),
            "user_p50_ms": round(statistics.median(lat) * 1000, 1),
            "user_p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000, 1),
        }


def _wordlist(tmp_path: Path, size: int, right_at: int | None) -> Path:
    words = [f"guess{i:03d}-password" for i in range(size)]
    if right_at is not None:
        words[right_at] = PASSWORD
    path = tmp_path / f"words{size}.txt"
    path.write_text("\n".join(words) + "\n")
    return path


def _hydra(server, gid: int, wordlist: Path, user: str, disguise: bool = True) -> str:
    form = "/login:username=^USER^&password=^PASS^"
    if disguise:  # hydra's own user agent is a scanner signature: pose as a browser to test the login jails
        form += ":H=User-Agent\\: Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"
    form += ":F=Invalid username or password"
    result = run_as(
        gid,
        [
            require_tool("hydra"),
            "-l",
            user,
            "-P",
            str(wordlist),
            "-s",
            str(server.https_port),
            "-t",
            "4",
            "-f",
            "-I",
            "-w",
            "10",
            "127.0.0.1",
            "https-post-form",
            form,
        ],
        timeout=120,
        cwd=wordlist.parent,
    )
    return result.stdout


def test_hydra_finds_a_short_list_but_is_stopped_on_a_long_one(server, tmp_path):
    """hydra finds the password in a 3-word list (so the test can fail), but with 200 words and the password
    at 150 it is refused within maxretry, while the legitimate user keeps downloading."""
    user = LegitimateUser(server, "hydravictim")
    with snat_group(60) as gid:
        found = _hydra(server, gid, _wordlist(tmp_path, 3, 2), "hydravictim")
    assert f"password: {PASSWORD}" in found, found
    user.account["client"].post("/api/v1/login", json={"username": "hydravictim", "password": PASSWORD})
    user.start()
    with snat_group(61) as gid:
        out = _hydra(server, gid, _wordlist(tmp_path, 200, 150), "hydravictim")
    legit = user.finish()
    assert PASSWORD not in out
    tries = failures_from(server, "127.0.0.61")
    assert tries <= server_policy().login_ip_maxretry + 4, tries  # maxretry, plus hydra's 4 parallel tasks
    assert legit["user_ok"] == legit["user_requests"] > 0, legit
    fresh = server.client()
    assert fresh.post("/api/v1/login", json={"username": "hydravictim", "password": PASSWORD}).status_code in (200, 429)
    record_numbers("hydra", password_tries_before_refusal=tries, **legit)


def test_hydra_signature_is_banned_at_the_edge(server, tmp_path):
    """Undisguised hydra is recognised by its user agent and dropped before TLS."""
    with snat_group(62) as gid:
        _hydra(server, gid, _wordlist(tmp_path, 50, None), "nobody", disguise=False)
    assert is_refused(server, "127.0.0.62")
    record_numbers("hydra-undisguised", requests_before_ban=requests_from(server, "127.0.0.62"))


def test_scripted_api_guesser_is_refused(server, tmp_path):
    """A guesser against POST /api/v1/login (hydra stops at 401) never reaches the password at position 150."""
    server.account("apivictim", password=PASSWORD)
    words = _wordlist(tmp_path, 200, 150).read_text().split()
    answers = []
    with client_from(server, "127.0.0.63") as c:
        for word in words:
            answers.append(c.post("/api/v1/login", json={"username": "apivictim", "password": word}).status_code)
    assert 200 not in answers
    assert set(answers[server_policy().login_ip_maxretry :]) <= {403, 429}
    record_numbers("api-guesser", password_tries_before_refusal=failures_from(server, "127.0.0.63"))


def test_nmap_version_scan_is_banned(server):
    """nmap -sV --version-light from its own address is banned within a bounded number of probes."""
    nmap = require_tool("nmap")
    run_as(
        0,
        [
            nmap,
            "-sV",
            "--version-light",
            "-Pn",
            "-n",
            "-S",
            "127.0.0.64",
            "-e",
            "lo",
            "-p",
            str(server.https_port),
            "127.0.0.1",
        ],
        timeout=120,
    )
    assert is_refused(server, "127.0.0.64")
    record_numbers(
        "nmap",
        http_requests_logged=requests_from(server, "127.0.0.64"),
        tls_probes_before_ban=events_from(server, "127.0.0.64", "tls-probe"),
    )


def test_gobuster_is_banned(server, tmp_path):
    """gobuster's directory brute force is banned after a burst of 404s."""
    words = tmp_path / "dirs.txt"
    words.write_text("\n".join(f"dir{i}" for i in range(400)) + "\n")
    with snat_group(65) as gid:
        run_as(
            gid,
            [
                require_tool("gobuster"),
                "dir",
                "-k",
                "-q",
                "-t",
                "4",
                "--timeout",
                "3s",
                "-u",
                server.base,
                "-w",
                str(words),
            ],
            timeout=60,
        )
    assert is_refused(server, "127.0.0.65")
    sent = requests_from(server, "127.0.0.65")
    assert sent < 100, sent
    record_numbers("gobuster", requests_before_ban=sent, wordlist=400)


def test_sqlmap_is_banned(server):
    """sqlmap is banned after a handful of requests."""
    with snat_group(66) as gid:
        run_as(
            gid,
            [
                require_tool("sqlmap"),
                "-u",
                f"{server.base}/login",
                "--data",
                "username=a&password=b",
                "--batch",
                "--timeout",
                "3",
                "--retries",
                "0",
                "--level",
                "1",
                "--disable-coloring",
                "--output-dir",
                "/tmp/mv-sqlmap",
            ],
            timeout=60,
        )
    assert is_refused(server, "127.0.0.66")
    record_numbers("sqlmap", requests_before_ban=requests_from(server, "127.0.0.66"))


def test_wapiti_is_banned(server, tmp_path):
    """wapiti is banned after a handful of requests."""
    with snat_group(67) as gid:
        run_as(
            gid,
            [
                require_tool("wapiti"),
                "-u",
                f"{server.base}/login?next=records",
                "--scope",
                "url",
                "-m",
                "sql,xss,exec,file",
                "--max-scan-time",
                "20",
                "--flush-session",
                "-f",
                "txt",
                "-o",
                str(tmp_path / "wapiti"),
                "--verify-ssl",
                "0",
            ],
            timeout=60,
            env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        )
    assert is_refused(server, "127.0.0.67")
    record_numbers("wapiti", requests_before_ban=requests_from(server, "127.0.0.67"))


def server_policy():
    from medvault.guard.policy import GuardPolicy

    return GuardPolicy()


@pytest.fixture(autouse=True)
def _bounded():
    """Each attack test is bounded (pytest-timeout in pyproject also applies)."""
    start = time.monotonic()
    yield
    assert time.monotonic() - start < 240
