"""The speed paths (literal prefilter, block reading, `Filter.scan`) change no result."""

from __future__ import annotations

import io

import pytest

from medvault.guard.filterfile import FilterSpec
from medvault.guard.matcher import Filter, read_blocks
from medvault.guard.prefilter import anchored_at_start, build_prefilter, required_literals

from .samplelogs import FILTER_DIR, LOG_DIR


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


def test_read_blocks_yields_the_lines_fail2ban_regex_tests() -> None:
    """Block reading yields a text file's lines across block boundaries, without comments, empty lines
    and a last line that has no newline yet (fail2ban-regex tests none of them)."""
    body = "".join(f"line {i} " + "x" * (i % 7) + "\n" + ("# note\n\n" if i % 50 == 0 else "") for i in range(500))
    text = "\n#first\n" + body + "last without newline"
    expected = [f"line {i} " + "x" * (i % 7) for i in range(500)]
    got = [line for block in read_blocks(io.StringIO(text), size=37) for line in block]
    assert got == expected


def _results(flt: Filter, lines: list[str], now: float) -> list:
    return [(i, repr(r)) for i, r in enumerate(flt.match(line, now) for line in lines) if r is not None]


@pytest.mark.usefixtures("needs_fail2ban")
@pytest.mark.parametrize("name", ["sshd", "apache-badbots", "apache-auth", "nginx-http-auth"])
def test_scan_equals_match_on_sample_logs(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """`scan` (with its prefilter sampling) gives exactly what `match` gives, line by line."""
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


@pytest.mark.usefixtures("needs_fail2ban")
@pytest.mark.parametrize("block", [1, 3, 8192])
def test_scan_takes_lines_with_their_endings(block: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Lines as a file yields them (`\\n`, `\\r\\n`) give what `match` gives, in any chunk, even of one line."""
    from medvault.guard import matcher
    from medvault.guard.filterfile import load_filter

    monkeypatch.setattr(matcher, "_BLOCK_LINES", block)
    sample = (LOG_DIR / "sshd").read_text(encoding="utf-8", errors="replace").splitlines()[:400]
    lines = [line + ("\r\n" if i % 3 == 0 else "\n") for i, line in enumerate(sample)]
    now = 1124013600.0
    expected = _results(Filter(load_filter(FILTER_DIR / "sshd.conf")), sample, now)
    got = [(i, repr(r)) for i, r in Filter(load_filter(FILTER_DIR / "sshd.conf")).scan(lines, now)]
    assert expected and got == expected


def test_prefilter_skips_but_keeps_date_state() -> None:
    """A skipped line still dates a following line that has no date of its own."""
    flt = Filter(FilterSpec(name="t", failregex=(r"^login failed from <HOST>$",)))
    lines = ["2026-01-02 03:04:05 something else", "login failed from 192.0.2.1"]
    stamp = Filter(FilterSpec(name="t", failregex=("x <HOST>",))).dates.find(lines[0], 0.0).time
    got = list(flt.scan(lines, now=stamp + 30))
    assert [(i, r.host, r.time) for i, r in got] == [(1, "192.0.2.1", stamp)]


_BRACKET_DATES = "^[^\\[]*\\[({DATE})\n{^LN-BEG}"


def test_scan_skips_rejected_runs_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs of lines without a literal are skipped in blocks, with the date state kept exact.

    The log switches date formats (so the remembered template stops matching inside a run), has
    undated and badly dated lines, and candidates at block edges; `scan` must equal `match` and
    leave the same state behind (checked with a last, undated line).
    """
    from medvault.guard import matcher

    monkeypatch.setattr(matcher, "_BLOCK_LINES", 7)
    spec = FilterSpec(name="t", failregex=(r'^<HOST> -.*"(?:EvilBot|BadAgent/1\.0)"$',), datepattern=_BRACKET_DATES)
    dates = [
        "14/Nov/2026:12:38:{s:02d} +0000",
        "2026-11-14 12:39:{s:02d}",
        "Nov 14 12:40:{s:02d}",
        "31/Feb/2026:01:02:03",
    ]
    lines = []
    for i in range(400):
        stamp = dates[(i // 13) % len(dates)].format(s=i % 60)
        agent = "EvilBot" if i % 11 == 0 else "BadAgent/1.0" if i % 17 == 5 else "Mozilla/5.0"
        lines.append(f'192.0.2.{i % 250} - - [{stamp}] "GET / HTTP/1.1" 200 1 "-" "{agent}"')
        if i % 29 == 3:
            lines.append(f'192.0.2.9 - - "GET / HTTP/1.1" 200 1 "-" "{agent}"')  # no date
    lines.append('192.0.2.7 - - "GET / HTTP/1.1" 200 1 "-" "EvilBot"')
    now = 1800000000.0
    expected = _results(Filter(spec), lines, now)
    flt = Filter(spec)
    got = [(i, repr(r)) for i, r in flt.scan(lines, now)]
    assert got == expected
    assert len(got) > 40


def test_scan_date_cut_can_form_a_literal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cutting the date out can join text into a literal: such lines are not skipped."""
    from medvault.guard import matcher

    monkeypatch.setattr(matcher, "_BLOCK_LINES", 5)
    spec = FilterSpec(name="t", failregex=(r"^<HOST> x\[\] denied$",), datepattern=_BRACKET_DATES)
    lines = [f"192.0.2.{i} x[14/Nov/2026:12:38:{i:02d} +0000] denied" for i in range(1, 30)]
    now = 1800000000.0
    expected = _results(Filter(spec), lines, now)
    assert len(expected) == 29
    assert [(i, repr(r)) for i, r in Filter(spec).scan(lines, now)] == expected
