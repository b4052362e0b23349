"""The matcher's fast paths (fused date + prefregex, first-character dispatch) change no result."""

from __future__ import annotations

import re

import pytest

from medvault.guard.dispatch import first_chars
from medvault.guard.filterfile import load_filter
from medvault.guard.fused import fuse
from medvault.guard.matcher import Failure, Filter
from medvault.guard.memo import Memo

from .samplelogs import FILTER_DIR, LOG_DIR, TEST_NOW, TEST_TZ

DATE = re.compile(r"^(?:\W{0,2})?(?P<_date>\d+)(?=\b|\W|$)")


def test_fuse_refuses_prefregexes_that_look_before_their_start() -> None:
    """Look-behind, `\\b`, a top-level alternation, global flags or shared group names keep two steps."""
    assert fuse(DATE, re.compile(r"^ x(?P<content>.+)$")) is not None
    for unsafe in (r"^(?<=x)a", r"^\ba", r"^a|b", r"(?i)^a", r"^(?P<_date>a)", r"a", r"^(a)\1"):
        assert fuse(DATE, re.compile(unsafe)) is None, unsafe


def test_first_chars_is_conservative() -> None:
    """Literal starts are tracked through groups and optional parts; anything unclear means "any"."""
    assert first_chars(r"^Failed \S+") == frozenset("F")
    assert first_chars(r"^[iI](?:llegal|nvalid) user") == frozenset("iI")
    assert first_chars(r"^(?:error: )?Failed") == frozenset("eF")
    assert first_chars(r"^(?P<x>A|B)c") == frozenset("AB")
    for unclear in (r"^(?i)failed", r"^\S+ x", r"^.x", r"^(?:a)?", r"^[^a]"):
        assert first_chars(unclear) is None, unclear


def _results(flt: Filter, lines: list[str]) -> list:
    out = []
    for line in lines:
        got = flt.match(line, TEST_NOW, TEST_TZ)
        out.append((got.host, got.time, got.fid, got.fields, got.regex_index) if isinstance(got, Failure) else got)
    return out


def _slow(flt: Filter) -> Filter:
    flt._fused = Memo(lambda template: None)
    if flt._dispatch is not None:
        full = flt._dispatch.full
        flt._dispatch.by_first = Memo(lambda first: full)
    return flt


@pytest.mark.usefixtures("needs_fail2ban")
def test_fast_paths_agree_with_the_two_step_path_on_every_sample_log() -> None:
    """Every line of every fail2ban sample log gives the same result with and without the fast paths."""
    names = sorted(p.name for p in LOG_DIR.iterdir() if (FILTER_DIR / f"{p.name}.conf").is_file())
    fused_filters = 0
    for name in names:
        spec = load_filter(FILTER_DIR / f"{name}.conf", {})
        lines = [x for x in (LOG_DIR / name).read_text(errors="replace").splitlines() if x and not x.startswith("#")]
        fast = Filter(spec)
        assert _results(fast, lines) == _results(_slow(Filter(spec)), lines), name
        fused_filters += any(v is not None for v in fast._fused.values())
    assert fused_filters >= 10  # sshd and the other prefregex filters really took the fused path
