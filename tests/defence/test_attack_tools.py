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
from tests.support import Server, require_tool, upload

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


def access_lines(server, ip: str) -> list[str]:
    return [line for line in _log(server, "access.log") if line.startswith(ip + " ")]


def requests_from(server, ip: str) -> int:
    return len(access_lines(server, ip))


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


# The login form's failure text: on every answer that did not sign in (wrong password, 429, 403, 503 busy). The
# visible "Invalid username or password" is only on the first: hydra would count 429 and 503 as found passwords.
HYDRA_FAILED = 'F=id="login-message"'


def _hydra(
    server, gid: int, wordlist: Path, user: str, disguise: bool = True, tasks: int = 4, extra: tuple = ()
) -> str:
    """hydra's https-post-form run against /login, as README documents it; its stdout and stderr."""
    form = "/login:username=^USER^&password=^PASS^"
    if disguise:  # hydra's own user agent is a scanner signature: pose as a browser to test the login jails
        form += ":H=User-Agent\\: Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"
    form += ":" + HYDRA_FAILED
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
            str(tasks),
            "-I",
            "-w",
            "10",
            *extra,
            "127.0.0.1",
            "https-post-form",
            form,
        ],
        timeout=120,
        cwd=wordlist.parent,
    )
    return result.stdout + result.stderr


def found_passwords(out: str) -> list[str]:
    """The passwords hydra reports as valid ("[PORT][http-post-form] host: … password: P" lines)."""
    return [line.split("password: ", 1)[1] for line in out.splitlines() if "[http-post-form] host:" in line]


def test_hydra_finds_a_short_list_but_is_stopped_on_a_long_one(server, tmp_path):
    """hydra finds the password in a 3-word list (so the test can fail), but with 200 words and the password
    at 150 it is refused within maxretry, while the legitimate user keeps downloading. Each refusal reads as
    a failure to hydra, not as a found password."""
    user = LegitimateUser(server, "hydravictim")
    with snat_group(60) as gid:
        found = _hydra(server, gid, _wordlist(tmp_path, 3, 2), "hydravictim", extra=("-f",))
    assert found_passwords(found) == [PASSWORD], found
    assert failures_from(server, "127.0.0.60") >= 1  # hydra got the form's failure answer, not only the success
    user.account["client"].post("/api/v1/login", json={"username": "hydravictim", "password": PASSWORD})
    user.start()
    with snat_group(61) as gid:
        out = _hydra(server, gid, _wordlist(tmp_path, 200, 150), "hydravictim", extra=("-f",))
    legit = user.finish()
    assert found_passwords(out) == [], out
    tries = failures_from(server, "127.0.0.61")
    assert tries <= server_policy().login_ip_maxretry + 4, tries  # maxretry, plus hydra's 4 parallel tasks
    assert legit["user_ok"] == legit["user_requests"] > 0, legit
    fresh = server.client()
    assert fresh.post("/api/v1/login", json={"username": "hydravictim", "password": PASSWORD}).status_code in (200, 429)
    record_numbers("hydra", password_tries_before_refusal=tries, **legit)


@pytest.fixture(scope="module")
def open_server(tmp_path_factory):
    """The guard off, so nothing but the application stands between hydra and the login form; one Argon2
    worker and a queue of one, so hydra's default 16 tasks meet the form's 503 busy answer."""
    env = {"MEDVAULT_GUARD_ENABLED": "false", "MEDVAULT_LOGIN_WORKERS": "1", "MEDVAULT_LOGIN_QUEUE": "1"}
    srv = Server(tmp_path_factory.mktemp("open") / "data", env=env)
    srv.init()
    srv.start()
    yield srv
    srv.stop()


def test_plain_hydra_reaches_the_login_form_when_not_banned(open_server, tmp_path):
    """Undisguised hydra, as an operator runs it, completes TLS, gets the form's failure answer for each wrong
    word and finds the right one: a tool that cannot connect would prove nothing in the tests above."""
    open_server.account("plainvictim", password=PASSWORD)
    with snat_group(70) as gid:
        out = _hydra(open_server, gid, _wordlist(tmp_path, 4, 3), "plainvictim", disguise=False, tasks=1, extra=("-V",))
    assert out.count("[ATTEMPT]") == 4, out
    assert found_passwords(out) == [PASSWORD], out
    assert failures_from(open_server, "127.0.0.70") == 3
    assert events_from(open_server, "127.0.0.70", "auth-success") == 1
    posts = [line for line in access_lines(open_server, "127.0.0.70") if "POST /login" in line]
    assert len(posts) == 4 and all('"Mozilla/5.0 (Hydra)"' in line for line in posts), posts
    assert events_from(open_server, "127.0.0.70", "tls-handshake-failure") == 0


def test_hydra_reads_busy_answers_as_failures(open_server, tmp_path):
    """At hydra's default 16 tasks the form also answers 503 (Argon2 pool full); the documented failure text
    makes hydra count those as failures, not as found passwords."""
    open_server.account("busyvictim", password=PASSWORD)
    with snat_group(71) as gid:
        out = _hydra(open_server, gid, _wordlist(tmp_path, 24, None), "busyvictim", disguise=False, tasks=16)
    assert found_passwords(out) == [], out
    assert failures_from(open_server, "127.0.0.71") >= 1
    busy = [line for line in access_lines(open_server, "127.0.0.71") if '" 503 ' in line]
    assert busy, "no 503 busy answer: this test no longer covers it"


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
