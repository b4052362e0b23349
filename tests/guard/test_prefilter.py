"""The speed paths (literal prefilter, block reading, `Filter.scan`) change no result."""

from __future__ import annotations

import io

import pytest

from medvault.guard.filterfile import FilterSpec
from medvault.guard.matcher import Filter, read_blocks
from medvault.guard.prefilter import anchored_at_start, build_prefilter, required_literals

from .samplelogs import FILTER_DIR, LOG_DIR, fail2ban_installed


@pytest.mark.parametrize(
    ("regex", "expected"),
    [
        (r"^Failed \S+ for", {"Failed "}),
        (r"^(?:Invalid|Illegal) user x", {"Invalid user x", "Illegal user x"}),
        (r"^[iI]nvalid user", {"invalid user", "Invalid user"}),
        (r'"(?:EmailCollector|WebEMailExtrac)"$', {'"EmailCollector"', '"WebEMailExtrac"'}),
        (r"(?i)failed password", None),  # case-insensitive: no claim
        (r"^(?:foo|\S+) bar", {" bar"}),
        (r"^x?\d+$", None),
        (r"ab(?:cd)?\nef", {"ab", "abcd"}),  # only the part before the newline is in the line
    ],
)
def test_required_literals(regex: str, expected: set[str] | None) -> None:
    """Every match contains one of the strings found; unclear constructs give no requirement."""
    got = required_literals(regex)
    assert (set(got) if got is not None else None) == expected


def test_prefilter_and_anchoring() -> None:
    """The prefilter rejects only lines without any literal; `^a|b` is not anchored."""
    pf = build_prefilter([r"^Failed \S+", r"Invalid user (?P<ip4>\S+)"])
    assert pf is not None
    assert pf.might_match("x Failed password") and pf.might_match("Invalid user 1.2.3.4")
    assert not pf.might_match("Accepted publickey for alice")
    assert build_prefilter([r"^Failed", r"\d+"]) is None
    assert anchored_at_start(r"^abc") and not anchored_at_start(r"^abc|def")
    assert not anchored_at_start(r"abc")


def test_read_blocks_matches_file_iteration() -> None:
    """Block reading yields the same lines as iterating a text file, across block boundaries."""
    text = "".join(f"line {i} " + "x" * (i % 7) + "\n" for i in range(500)) + "last without newline"
    expected = [line.rstrip("\n") for line in io.StringIO(text)]
    got = [line for block in read_blocks(io.StringIO(text), size=37) for line in block]
    assert got == expected


def _results(flt: Filter, lines: list[str], now: float) -> list:
    return [(i, repr(r)) for i, r in enumerate(flt.match(line, now) for line in lines) if r is not None]


@pytest.mark.parametrize("name", ["sshd", "apache-badbots", "apache-auth", "nginx-http-auth"])
def test_scan_equals_match_on_sample_logs(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """`scan` (with its prefilter sampling) gives exactly what `match` gives, line by line."""
    if not fail2ban_installed():
        pytest.skip("fail2ban is not installed")
    from medvault.guard import matcher
    from medvault.guard.filterfile import load_filter

    monkeypatch.setattr(matcher, "_SAMPLE_LINES", 200)
    lines = [
        line
        for p in sorted(LOG_DIR.iterdir())
        if p.is_file()
        for line in p.read_text(encoding="utf-8", errors="replace").splitlines()
    ]
    now = 1124013600.0
    expected = _results(Filter(load_filter(FILTER_DIR / f"{name}.conf")), lines, now)
    got = [(i, repr(r)) for i, r in Filter(load_filter(FILTER_DIR / f"{name}.conf")).scan(lines, now)]
    assert got == expected


def test_prefilter_skips_but_keeps_date_state() -> None:
    """A skipped line still dates a following line that has no date of its own."""
    flt = Filter(FilterSpec(name="t", failregex=(r"^login failed from <HOST>$",)))
    lines = ["2026-01-02 03:04:05 something else", "login failed from 192.0.2.1"]
    stamp = Filter(FilterSpec(name="t", failregex=("x <HOST>",))).dates.find(lines[0], 0.0).time
    got = list(flt.scan(lines, now=stamp + 30))
    assert [(i, r.host, r.time) for i, r in got] == [(1, "192.0.2.1", stamp)]
