"""The multi-process scan (`parallel.py`) gives exactly the sequential results and end state.

Small byte ranges force many cuts, so every check the parent makes (date template, time of undated
lines, sshd connection ids) is met often, both where a worker's range is taken over and where it
must be re-scanned.
"""

from __future__ import annotations

import itertools
import json
import random
import time
from collections import Counter
from datetime import tzinfo
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medvault.guard import matcher, parallel
from medvault.guard.cli import guard_app
from medvault.guard.errors import GuardError
from medvault.guard.filterfile import FilterSpec, load_filter
from medvault.guard.matcher import IGNORED, Filter, read_blocks

from .accesslogs import write_access_log
from .samplelogs import FILTER_DIR, LOG_DIR, TEST_NOW, TEST_TZ
from .sshdlogs import write_sshd_log

NOW = 1_700_000_000.0
runner = CliRunner()


def _sequential(spec: FilterSpec, path: Path, now: float, tz: tzinfo | None) -> tuple[list, Filter]:
    flt = Filter(spec)
    out: list = []
    base = 0
    with path.open(encoding="utf-8", errors="replace") as handle:
        for block in read_blocks(handle):
            out.extend((base + i, got) for i, got in flt.scan(block, now, tz))
            base += len(block)
    return out, flt


def _state(flt: Filter) -> tuple:
    template = flt.dates._last
    index = None if template is None else flt.dates.templates.index(template)
    return index, flt._last_time, list(flt._mlfid.items())


def _assert_same(spec: FilterSpec, path: Path, now: float, tz: tzinfo | None, block_bytes: int, jobs: int = 2) -> list:
    expected, seq = _sequential(spec, path, now, tz)
    par = Filter(spec)
    got = parallel.scan_file(par, path, now, tz, jobs=jobs, block_bytes=block_bytes)
    assert got == expected
    assert _state(par) == _state(seq)
    tally = parallel.tally_file(Filter(spec), path, now, tz, jobs=jobs, block_bytes=block_bytes, keep_lines=True)
    with path.open(encoding="utf-8", errors="replace") as handle:
        lines = [line for block in read_blocks(handle) for line in block]
    matched = [(i, got) for i, got in expected if got is not IGNORED]
    assert (tally.lines, tally.matched, tally.ignored) == (len(lines), len(matched), len(expected) - len(matched))
    assert list(tally.hosts.items()) == list(Counter(got.host for _, got in matched).items())
    assert tally.matched_lines == [lines[i] for i, _ in matched]
    return expected


def _count_adoptions(monkeypatch: pytest.MonkeyPatch) -> Counter[bool]:
    seen: Counter[bool] = Counter()
    adopt = parallel._adopt

    def counting(flt: Filter, done: parallel._Done, now: float) -> bool:
        ok = adopt(flt, done, now)
        seen[ok] += 1
        return ok

    monkeypatch.setattr(parallel, "_adopt", counting)
    return seen


def _sshd_log(path: Path, n: int, pids: int, seed: int = 7) -> None:
    """sshd lines from `pids` reused process ids: connections span the cuts between ranges."""
    rng = random.Random(seed)
    messages = [
        "Failed password for root from {ip} port 22 ssh2",
        "Failed password for invalid user admin from {ip} port 22 ssh2",
        "Invalid user oracle from {ip} port 22",
        "Accepted publickey for alice from {ip} port 22 ssh2: ED25519 SHA256:abc",
        "Connection closed by {ip} port 22 [preauth]",
        "Connection from {ip} port 4711 on 10.0.0.1 port 22",
        "Disconnected from authenticating user root {ip} port 22 [preauth]",
        "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={ip}",
        "Received disconnect from {ip} port 22:11: Bye Bye [preauth]",
        "Server listening on 0.0.0.0 port 22.",
    ]
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            if rng.random() < 0.03:
                f.write("undated noise line\n")
                continue
            stamp = time.strftime("%b %d %H:%M:%S", time.gmtime(NOW - n + i))
            ip = f"192.0.2.{rng.randint(1, 20)}"
            f.write(f"{stamp} host sshd[{rng.randint(1, pids)}]: {rng.choice(messages).format(ip=ip)}\n")


def test_split_ranges_are_line_aligned(tmp_path: Path) -> None:
    """Split ranges cover the whole file, each ending right after a newline (a lone CR is no cut), at any block size."""
    log = tmp_path / "a.log"
    log.write_bytes(b"one\r\ntwo\nthree\rfour\n\nlast-without-newline")
    data = log.read_bytes()
    for step in range(1, len(data) + 2):
        spans = parallel.split_ranges(log, 2, step)
        assert spans[0][0] == 0 and spans[-1][1] == len(data)
        assert all(a[1] == b[0] and data[a[1] - 1 : a[1]] == b"\n" for a, b in itertools.pairwise(spans))
    assert parallel.split_ranges(tmp_path / "a.log", 1) == [(0, len(data))]


@pytest.mark.usefixtures("needs_fail2ban")
@pytest.mark.parametrize(("pids", "limit"), [(50, None), (5000, 40), (100_000, 200)])
def test_sshd_connections_across_cuts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pids: int, limit: int | None
) -> None:
    """Reused connection ids, and (with a small limit) connections dropped as the state fills."""
    if limit is not None:
        monkeypatch.setattr(matcher, "MLFID_LIMIT", limit)
    seen = _count_adoptions(monkeypatch)
    log = tmp_path / "auth.log"
    _sshd_log(log, 3000, pids)
    spec = load_filter(FILTER_DIR / "sshd.conf")
    results = _assert_same(spec, log, NOW, None, block_bytes=4000)
    assert len(results) > 500
    assert seen[False] if pids < 100 else seen[True]  # few ids: always one the previous range knows


@pytest.mark.parametrize("pushed", [2, 3, 4, 5])
def test_sshd_connection_of_previous_range_pushed_out_or_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pushed: int
) -> None:
    """The second range opens `pushed` new connections, then closes one the first range opened.

    With 4 remembered connections, it is still known (a re-scan) while fewer than 4 were pushed
    out, and forgotten (the worker's range is taken over) from then on.
    """
    monkeypatch.setattr(matcher, "MLFID_LIMIT", 4)
    seen = _count_adoptions(monkeypatch)
    stamp = time.strftime("%b %d %H:%M:%S", time.gmtime(NOW - 10))
    first = "".join(
        f"{stamp} host sshd[{pid}]: Failed password for root from 192.0.2.{pid} port 22 ssh2\n" for pid in (1, 2, 3, 4)
    )
    second = "".join(
        f"{stamp} host sshd[{pid}]: Failed password for bob from 192.0.2.{pid} port 22 ssh2\n"
        for pid in range(10, 10 + pushed)
    )
    second += f"{stamp} host sshd[4]: Connection closed by authenticating user root 192.0.2.4 port 22 [preauth]\n"
    first += f"{stamp} host sshd[99]: Server listening on 0.0.0.0 port 22.\n" * 10  # the longer range
    log = tmp_path / "auth.log"
    log.write_text(first + second, encoding="utf-8")
    _assert_same(load_filter(FILTER_DIR / "sshd.conf"), log, NOW, None, block_bytes=len(first.encode()))
    assert seen == Counter({pushed >= 4: 2})  # one cut, scanned twice (results, then tally)


def test_generated_bench_logs(tmp_path: Path) -> None:
    """The benchmark's own logs (interleaved sshd connections, Apache access log), cut into many ranges."""
    access, auth = tmp_path / "access.log", tmp_path / "auth.log"
    write_access_log(access, 4000, 3)
    write_sshd_log(auth, 4000, 3)
    now = time.time()
    assert _assert_same(load_filter(FILTER_DIR / "apache-badbots.conf"), access, now, None, 20_000)
    assert _assert_same(load_filter(FILTER_DIR / "sshd.conf"), auth, now, None, 20_000)


@pytest.mark.usefixtures("needs_fail2ban")
def test_fail2ban_sample_logs() -> None:
    """Each of fail2ban's sample logs with its filter, cut every ~300 bytes, gives the sequential results."""
    names = sorted(p.name for p in LOG_DIR.iterdir() if p.is_file() and (FILTER_DIR / f"{p.name}.conf").is_file())
    compared = []
    for name in names:
        try:
            spec = load_filter(FILTER_DIR / f"{name}.conf")
        except GuardError:
            continue  # a filter that needs options the sample log sets (e.g. zzz-* test filters)
        _assert_same(spec, LOG_DIR / name, TEST_NOW, TEST_TZ, block_bytes=300)
        compared.append(name)
    assert len(compared) >= 80, compared


@pytest.mark.usefixtures("needs_fail2ban")
@pytest.mark.parametrize("name", ["sshd", "apache-badbots", "apache-auth", "nginx-http-auth"])
def test_all_sample_logs_concatenated(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every sample log in one file: date formats change all along, so cuts are often re-scanned."""
    seen = _count_adoptions(monkeypatch)
    log = tmp_path / "all.log"
    log.write_bytes(b"".join(p.read_bytes().rstrip(b"\n") + b"\n" for p in sorted(LOG_DIR.iterdir()) if p.is_file()))
    _assert_same(load_filter(FILTER_DIR / f"{name}.conf"), log, TEST_NOW, TEST_TZ, block_bytes=2000)
    assert seen[True] and (seen[False] or name != "sshd")


def test_cli_jobs_give_the_same_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`test-filter --jobs 2` cuts the log and prints the same JSON and matched lines as `--jobs 1`."""
    monkeypatch.setattr(parallel, "_MIN_SPLIT_BYTES", 0)  # split even this small log
    seen = _count_adoptions(monkeypatch)
    log = tmp_path / "auth.log"
    _sshd_log(log, 2000, 30)
    outputs = []
    for jobs in ("1", "2"):
        for extra in (["--json"], ["--print-matched"]):
            result = runner.invoke(guard_app, ["test-filter", "sshd", str(log), "--jobs", jobs, *extra])
            assert result.exit_code == 0, result.output
            outputs.append(result.stdout)
    assert outputs[:2] == outputs[2:]
    assert sum(seen.values()) == 2  # --jobs 2 did cut the log (twice: --json, --print-matched)
    assert json.loads(outputs[0])["matched"] > 0


def test_ranges_cover_the_file_at_line_ends_with_a_longer_first(tmp_path: Path) -> None:
    """`split_ranges` cuts right after newlines, covers every byte once, and weights the parent's range."""
    log = tmp_path / "auth.log"
    _sshd_log(log, 3000, 30)
    data = log.read_bytes()
    for parts, weight in ((2, 1.0), (2, 1.5), (3, 1.1)):
        spans = parallel.split_ranges(log, parts, None, weight)
        assert len(spans) == parts
        assert spans[0][0] == 0 and spans[-1][1] == len(data)
        assert all(end == start for (_, end), (start, _) in itertools.pairwise(spans))
        assert all(data[end - 1 : end] == b"\n" for _, end in spans)
        lengths = [end - start for start, end in spans]
        assert abs(lengths[0] / lengths[1] - weight) < 0.05
