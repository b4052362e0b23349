"""The `guard` CLI: test-filter output and errors, and `run` end to end."""

import json
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from medvault.guard.cli import guard_app

FILTERS = Path(__file__).resolve().parents[2] / "src/medvault/guard/filters"
runner = CliRunner()

ACCESS_LOG = """\
127.0.0.1 - - [26/Nov/2026:01:53:40 +0000] "GET /x HTTP/1.1" 404 12 "-" "curl/8"
192.0.2.1 - - [26/Nov/2026:01:53:41 +0000] "GET /.env HTTP/1.1" 404 12 "-" "curl/8"
192.0.2.1 - - [26/Nov/2026:01:53:42 +0000] "GET /wp-login.php HTTP/1.1" 404 12 "-" "curl/8"
192.0.2.3 - - [26/Nov/2026:01:53:43 +0000] "GET / HTTP/1.1" 200 12 "-" "sqlmap/1.7#stable"
"""


def test_test_filter_json(tmp_path: Path) -> None:
    """--json prints one object with line counts and matches per host."""
    log = tmp_path / "access.log"
    log.write_text(ACCESS_LOG, encoding="utf-8")
    result = runner.invoke(guard_app, ["test-filter", str(FILTERS / "medvault-scan.conf"), str(log), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data == {"lines": 4, "matched": 3, "ignored": 0, "missed": 1, "hosts": {"192.0.2.1": 2, "192.0.2.3": 1}}


def test_test_filter_text_and_print_matched(tmp_path: Path) -> None:
    """The text summary counts lines and --print-matched echoes the matched lines."""
    log = tmp_path / "access.log"
    log.write_text(ACCESS_LOG, encoding="utf-8")
    result = runner.invoke(guard_app, ["test-filter", str(FILTERS / "medvault-scan.conf"), str(log), "--print-matched"])
    assert result.exit_code == 0
    assert "Lines: 4, 3 matched, 0 ignored, 1 missed" in result.stdout
    assert "/.env" in result.stdout and '"GET /x ' not in result.stdout


def test_test_filter_missing_log_exits_2(tmp_path: Path) -> None:
    """A missing log file is reported on stderr with exit code 2."""
    result = runner.invoke(guard_app, ["test-filter", str(FILTERS / "medvault-scan.conf"), str(tmp_path / "nope.log")])
    assert result.exit_code == 2 and "cannot read" in result.stderr


def test_test_filter_bad_filter_exits_2(tmp_path: Path) -> None:
    """A filter without a host group or that does not exist exits with code 2 and a message."""
    bad = tmp_path / "bad.conf"
    bad.write_text("[Definition]\nfailregex = ^no host here\n", encoding="utf-8")
    log = tmp_path / "a.log"
    log.write_text("x\n", encoding="utf-8")
    for spec in (str(bad), "no-such-filter-anywhere"):
        result = runner.invoke(guard_app, ["test-filter", spec, str(log)])
        assert result.exit_code == 2 and "error:" in result.stderr, spec


def _syslog(t: float) -> str:
    return time.strftime("%b %d %H:%M:%S", time.localtime(t))


def test_run_bans_sshd_seed_case_end_to_end(tmp_path: Path) -> None:
    """run --config bans the sshd attackers through a command action, once, and resumes without repeats."""
    now = time.time()
    attacker, scanner, innocent = "203.0.113.5", "203.0.113.6", "198.51.100.1"
    lines = [
        f"{_syslog(now - 5)} host sshd[1]: Failed password for root from {attacker} port 1 ssh2",
        f"{_syslog(now - 4)} host sshd[2]: Failed password for invalid user admin from {attacker} port 2 ssh2",
        f"{_syslog(now - 3)} host sshd[3]: Invalid user oracle from {attacker} port 3",
        f"{_syslog(now - 5)} host sshd[4]: Did not receive identification string from {scanner}",
        f"{_syslog(now - 4)} host sshd[5]: Did not receive identification string from {scanner}",
        f"{_syslog(now - 3)} host sshd[6]: Did not receive identification string from {scanner}",
        f"{_syslog(now - 2)} host sshd[7]: Failed password for bob from {innocent} port 4 ssh2",
        f"{_syslog(now - 1)} host sshd[8]: Accepted password for bob from {innocent} port 5 ssh2",
    ]
    log = tmp_path / "auth.log"
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    banned = tmp_path / "banned.txt"
    config = tmp_path / "guard.toml"
    config.write_text(
        f"""
state_file = "{tmp_path / "state.json"}"
poll_interval = 0.05

[jails.sshd]
filter = "sshd[mode=aggressive]"
logpath = "{log}"
maxretry = 3
findtime = 600
bantime = 3600
ignoreip = ["127.0.0.0/8"]

[jails.sshd.action]
actionban = "sh -c 'echo \\"$0\\" >> {banned}' <ip>"
""",
        encoding="utf-8",
    )
    result = runner.invoke(guard_app, ["run", "--config", str(config), "--once"])
    assert result.exit_code == 0, result.output
    assert sorted(banned.read_text(encoding="utf-8").split()) == [attacker, scanner]
    state = json.loads((tmp_path / "state.json").read_text(encoding="utf-8"))
    assert {b[0] for b in state["banlist"]["bans"]} == {f"{attacker}/32", f"{scanner}/32"}
    result = runner.invoke(guard_app, ["run", "--config", str(config), "--duration", "0.2"])
    assert result.exit_code == 0, result.output
    assert len(banned.read_text(encoding="utf-8").split()) == 2


def test_run_bad_config_exits_2(tmp_path: Path) -> None:
    """A config without jails names the missing key and exits with code 2."""
    config = tmp_path / "guard.toml"
    config.write_text("poll_interval = 1\n", encoding="utf-8")
    result = runner.invoke(guard_app, ["run", "--config", str(config), "--once"])
    assert result.exit_code == 2 and "jails" in result.stderr


def _launch(*argv: str) -> tuple[int, set[str]]:
    """Exit code of `medvault ARGV` through the entry point, and which of our heavy packages it imported."""
    code = (
        "import sys\nfrom medvault.launcher import main\nsys.argv = ['medvault', *sys.argv[1:]]\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    rc = exc.code or 0\nelse:\n    rc = 0\n"
        "heavy = ('medvault.web', 'medvault.core', 'cryptography', 'pydantic')\n"
        "print('\\nRESULT', rc, *sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=60).stdout
    result = out.rsplit("RESULT", 1)[1].split()
    return int(result[0]), set(result[1:])


def test_guard_commands_load_only_what_they_need(tmp_path: Path) -> None:
    """`guard test-filter` runs without the web application, key handling or Pydantic (Typer's argument
    coercion, 14 MB); `guard list` (data folder) and `guard --help` still reach the full CLI."""
    log = tmp_path / "access.log"
    log.write_text(ACCESS_LOG, encoding="utf-8")
    assert _launch("guard", "test-filter", str(FILTERS / "medvault-scan.conf"), str(log)) == (0, set())
    code, loaded = _launch("guard", "list", "--data-dir", str(tmp_path / "none"))
    assert code == 2 and "medvault.core" in loaded
    assert _launch("guard", "--help")[1]


def test_plain_test_filter_arguments_match_typer(tmp_path: Path) -> None:
    """The entry point's own parse of plain `test-filter` arguments prints what Typer's does; other
    arguments (a bad `--jobs`, an unknown or repeated option) are left to Typer."""
    from medvault.guard.cli import _plain_test_filter

    log = tmp_path / "access.log"
    log.write_text(ACCESS_LOG, encoding="utf-8")
    spec = str(FILTERS / "medvault-scan.conf")
    forms = (
        [spec, str(log)],
        [spec, str(log), "--json"],
        ["--json", spec, "--jobs", "2", str(log)],
        [spec, "--print-matched", str(log), "--jobs=1"],
    )
    for form in forms:
        argv = ["test-filter", *form]
        assert _plain_test_filter(argv) is not None, form
        typer_out = runner.invoke(guard_app, argv).stdout
        plain = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys\nfrom medvault.launcher import main\nsys.argv = ['medvault', *sys.argv[1:]]\nmain()",
                "guard",
                *argv,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert plain.returncode == 0 and plain.stdout == typer_out, form
    for bad in ([spec, str(log), "--jobs", "0"], [spec, str(log), "--json", "--json"], [spec, "--help"], [spec]):
        assert _plain_test_filter(["test-filter", *bad]) is None, bad
