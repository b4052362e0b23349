"""PCRE2's JIT (`jitmatch.pyx`) gives `Filter.scan` exactly the answers of `re`, line for line.

Each scan is compared with the same scan on a filter whose JIT is switched off (`_jit_ready = False`):
every (line, host, time, fid, fields, failregex) and IGNORED, in order, and the multi-line state after.
"""

from __future__ import annotations

import os
import random

import pytest

from medvault.guard.filterfile import load_filter, resolve_filter_path
from medvault.guard.matcher import Filter, LineMatcher, read_byte_blocks
from medvault.guard.pcresyntax import to_pcre2

from .samplelogs import FILTER_DIR, LOG_DIR
from .sshdlogs import write_sshd_log

NOW = 1772841600.0  # 2026-03-07, after the generated logs' dates

pytestmark = pytest.mark.skipif(
    LineMatcher is None and os.environ.get("CI") != "true",
    reason="jitmatch is not built (no C compiler or libpcre2-8); on CI these tests run and fail instead",
)


def _outcomes(flt: Filter, blocks: list[list[str]], jit: bool) -> tuple[list, dict]:
    flt._jit_ready = jit and flt._jit_ready
    found = [
        (base, k, got if not hasattr(got, "host") else (got.host, got.time, got.fid, got.fields, got.regex_index))
        for base, block in enumerate(blocks)
        for k, got in flt.scan(block, NOW)
    ]
    return found, dict(flt._mlfid)


def _agree(spec, blocks: list[list[str]], raw_hosts: bool = False) -> int:
    """Asserts both engines agree on `blocks`; their number of lines if the JIT had a `LineMatcher` at the end."""
    jit_filter, re_filter = Filter(spec, raw_hosts=raw_hosts), Filter(spec, raw_hosts=raw_hosts)
    assert _outcomes(jit_filter, blocks, True) == _outcomes(re_filter, blocks, False)
    used = jit_filter._jit_ready and jit_filter._jit[jit_filter.dates._last] is not None
    return sum(len(block) for block in blocks) if used else 0


def _blocks(lines: list[str], size: int = 97) -> list[list[str]]:
    return [lines[i : i + size] for i in range(0, len(lines), size)]


def test_every_fail2ban_filter_on_its_sample_log(needs_fail2ban) -> None:
    """Every filter with a same-named sample log, default options: sshd, nginx-botsearch and others use the JIT."""
    using = []
    for log in sorted(LOG_DIR.iterdir()):
        conf = FILTER_DIR / f"{log.name}.conf"
        if not conf.is_file():
            continue
        spec = load_filter(conf)
        lines = [line for line in log.read_text(encoding="utf-8", errors="replace").splitlines() if line]
        if _agree(spec, _blocks(lines), raw_hosts=True):
            using.append(log.name)
    assert {"sshd", "nginx-botsearch"} <= set(using), using


def test_generated_sshd_logs_in_every_mode(tmp_path) -> None:
    log = tmp_path / "auth.log"
    write_sshd_log(log, 30_000, seed=7)
    with log.open("rb") as raw:
        blocks = list(read_byte_blocks(raw, size=1 << 16))
    for mode in ("normal", "ddos", "aggressive"):
        assert _agree(load_filter(*resolve_filter_path(f"sshd[mode={mode}]")), blocks)


def test_lines_the_jit_must_leave_to_re() -> None:
    """Non-ASCII and control characters, a date not at the start, impossible dates, dateless lines, a line
    that makes the regex backtrack for long, lines ending a block: each outcome is `re`'s."""
    rng = random.Random(3)
    base = [
        "Mar  6 20:43:27 web1 sshd[13]: Invalid user {u} from 10.0.0.{n} port 4404",
        "Mar  6 20:43:27 web1 sshd[13]: Failed password for invalid user {u} from 10.0.0.{n} port 22 ssh2",
        "Mar  6 20:43:28 web1 sshd[14]: Connection closed by authenticating user {u} 10.0.0.{n} port 1 [preauth]",
        "Feb 30 20:43:28 web1 sshd[15]: Invalid user {u} from 10.0.1.{n} port 4404",
        "web1 Mar  6 20:43:29 sshd[16]: Invalid user {u} from 10.0.2.{n} port 4404",
        "sshd[17]: Invalid user {u} from 10.0.3.{n} port 4404",
        "Mar  6 20:43:30 web1 sshd[18]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh"
        " ruser= rhost=10.0.4.{n}  user={u}",
        "Mar  6 20:43:31 web1 sshd[19]: Failed password for {u} from 10.0.5.{n} port 22 ssh2" + " from x" * 300,
    ]
    users = ["root", "jos\u00e9", "a\x1cb", "tab\tuser", "", "x" * 2000, "admin from 10.9.9.9"]
    lines = [rng.choice(base).format(u=rng.choice(users), n=rng.randrange(256)) for _ in range(3000)]
    for mode in ("normal", "aggressive"):
        spec = load_filter(*resolve_filter_path(f"sshd[mode={mode}]"))
        for size in (1, 7, 500):
            assert _agree(spec, _blocks(lines, size))
    paths = ["wp-login.php", "index.html", "caf\u00e9", "phpmyadmin/\x1c"]
    access = [
        f'10.1.{rng.randrange(4)}.{rng.randrange(256)} - - [{rng.choice(["06", "31"])}/{rng.choice(["Mar", "Feb"])}'
        f'/2026:10:00:{rng.randrange(60):02d} +0000] "GET /{rng.choice(paths)} HTTP/1.1" {rng.choice([200, 404])} 12'
        ' "-" "curl"'
        for _ in range(3000)
    ]
    assert _agree(load_filter(*resolve_filter_path("nginx-botsearch")), _blocks(access, 300))


def test_rewrite_keeps_group_numbers_and_refuses_what_differs() -> None:
    assert to_pcre2(r"(?P<a>x){,3}(?P=a)\Z") == r"(?:(x)){0,3}(?:\g{1})\z"
    assert to_pcre2(r"[\d]{1,3}a?b*(?:cd)+") == r"\d{1,3}a?b*(?:cd)+"
    assert to_pcre2(r"(?i:ab)c") == r"(?:(?i:ab))c"
    assert to_pcre2("caf\u00e9") is None  # a non-ASCII literal: the engines' case and classes could differ
    assert to_pcre2(r"(?m)^x") is None  # multi-line mode is not used by the JIT
