"""Literal prefilters: skip log lines that no failregex can match without running a regex.

Most lines of any log are clean.  Every failregex has text it cannot match without (`Failed `,
`"EmailCollector"`…); `required_literals` works out, from the parsed regex, a set of strings at
least one of which any match must contain.  A line containing none of the strings of any
failregex cannot match, so only lines passing this check (one `in` test or one search of a
literal alternation) go through the real regexes.

The analysis is conservative: whenever a construct is not understood (case-insensitive parts,
back-references, classes with many characters) it yields "no requirement", never a wrong one.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from medvault.guard.regexparse import REPEATS as _REPEATS
from medvault.guard.regexparse import ZERO_WIDTH as _ZERO_WIDTH
from medvault.guard.regexparse import constants as _c
from medvault.guard.regexparse import parser as _p

_MAX_SET = 64  # largest set of alternative strings tracked exactly
_MAX_CLASS = 4  # `[aA]` is two alternatives; `[a-z]` is not tracked
_HYPERSCAN_MIN_STARTS = 20  # distinct first characters of the literals from which Hyperscan searches them
_Info = tuple[frozenset[str] | None, frozenset[str] | None]  # (exact strings, required strings)
_EMPTY: frozenset[str] = frozenset({""})


def _score(strings: frozenset[str] | None, avoid: str = "") -> tuple[int, int]:
    """Higher is more selective: longest shortest string, then fewest strings; (0, 0) is unusable, and so is
    a set with a string holding one of the `avoid` characters anywhere but at its end."""
    if not strings or "" in strings:
        return (0, 0)
    if avoid and any(c in x[:-1] for x in strings for c in avoid):
        return (0, 0)
    return (min(len(x) for x in strings), -len(strings))


def _best(avoid: str, *candidates: frozenset[str] | None) -> frozenset[str] | None:
    best = max(candidates, key=lambda strings: _score(strings, avoid))
    return best if _score(best, avoid) > (0, 0) else None


def _product(a: frozenset[str], b: frozenset[str]) -> frozenset[str] | None:
    if len(a) * len(b) > _MAX_SET:
        return None
    return frozenset(x + y for x in a for y in b)


def _sequence(items: Iterable[Any], icase: bool, avoid: str) -> _Info:
    exact: frozenset[str] = _EMPTY
    broken = False
    required: frozenset[str] | None = None
    for op, av in items:
        sub_exact, sub_req = _node(op, av, icase, avoid)
        required = _best(avoid, required, sub_req)
        joined = _product(exact, sub_exact) if sub_exact is not None else None
        if joined is None:
            required = _best(avoid, required, exact)
            broken = True
            exact = sub_exact if sub_exact is not None else _EMPTY
        else:
            exact = joined
    required = _best(avoid, required, exact)
    return (None if broken else exact), required


def _node(op: Any, av: Any, icase: bool, avoid: str) -> _Info:
    if op is _c.LITERAL:
        return (None, None) if icase else (frozenset({chr(av)}), None)
    if op is _c.IN:
        if icase or len(av) > _MAX_CLASS or any(o is not _c.LITERAL for o, _ in av):
            return None, None
        return frozenset(chr(v) for _, v in av), None
    if op in _ZERO_WIDTH:
        return _EMPTY, None
    if op is _c.SUBPATTERN:
        _group, add, delete, sub = av
        inner = (icase or bool(add & re.IGNORECASE)) and not (delete & re.IGNORECASE)
        return _sequence(sub, inner, avoid)
    if op is _c.ATOMIC_GROUP:
        return _sequence(av, icase, avoid)
    if op is _c.BRANCH:
        alternatives = [_sequence(sub, icase, avoid) for sub in av[1]]
        return _alternation(alternatives, avoid)
    if op is _c.GROUPREF_EXISTS:
        _group, yes, no = av
        no_info = _sequence(no, icase, avoid) if no else (_EMPTY, None)
        return _alternation([_sequence(yes, icase, avoid), no_info], avoid)
    if op in _REPEATS:
        low, high, sub = av
        sub_exact, sub_req = _sequence(sub, icase, avoid)
        if high == 0:
            return _EMPTY, None
        if low == 0:
            if high == 1 and sub_exact is not None and len(sub_exact) < _MAX_SET:
                return sub_exact | _EMPTY, None
            return None, None
        if low == high and sub_exact is not None:
            exact: frozenset[str] | None = _EMPTY
            for _ in range(low):
                exact = _product(exact, sub_exact) if exact is not None else None
            if exact is not None:
                return exact, None
        return None, _best(avoid, sub_req, sub_exact)
    return None, None  # ANY, NOT_LITERAL, GROUPREF, classes, categories…


def _alternation(alternatives: list[_Info], avoid: str) -> _Info:
    exacts = [e for e, _ in alternatives]
    exact: frozenset[str] | None = None
    if all(e is not None for e in exacts):
        union = frozenset().union(*exacts)  # type: ignore[arg-type]
        exact = union if len(union) <= _MAX_SET else None
    required: set[str] = set()
    for sub_exact, sub_req in alternatives:
        choice = _best(avoid, sub_req, sub_exact)
        if choice is None:
            return exact, None
        required |= choice
    return exact, frozenset(required)


@lru_cache(maxsize=4096)
def _parse(regex: str, flags: int) -> Any:
    try:
        return _p.parse(regex, flags)
    except re.error:
        return None


@lru_cache(maxsize=4096)
def required_literals(regex: str, flags: int = 0, avoid: str = "") -> frozenset[str] | None:
    """Strings one of which every match of `regex` contains, or None when that cannot be shown.

    With `avoid`, no string holds one of those characters but at its end (see `build_prefilter`).

    The strings are cut at the first newline: the matcher appends one to the text it matches, and
    only the part before it is guaranteed to be in the line.
    """
    parsed = _parse(regex, flags)
    if parsed is None:
        return None
    icase = bool(parsed.state.flags & re.IGNORECASE)
    exact, required = _sequence(parsed, icase, avoid)
    found = _best(avoid, required, exact)
    if found is None:
        return None
    cut = frozenset(x.split("\n", 1)[0] for x in found)
    return None if "" in cut else cut


def _trie_regex(strings: Iterable[str]) -> str:
    """An alternation of literals factored by common prefix, which `re` scans much faster."""
    trie: dict = {}
    for s in strings:
        node = trie
        for ch in s:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict) -> str:
        end = "" in node
        branches = [re.escape(ch) + build(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if end:
            return f"(?:{body})?"
        return body

    return build(trie)


class Prefilter:
    """`might_match(text)` is False only when no failregex can match `text`."""

    def __init__(self, literals: frozenset[str]) -> None:
        # Drop strings containing another one: the shorter is found whenever the longer is.
        kept = sorted({x for x in literals if not any(y != x and y in x for y in literals)})
        self.literals = tuple(kept)
        self.regex = re.compile(_trie_regex(kept))
        self.search = self.regex.search if len(kept) > 1 else None
        # `re` tests each position of a text against the trie's first characters: with few distinct ones it
        # passes over most positions at once, and Hyperscan's import and compile (8 MB more at the peak for
        # apache-badbots' literals) do not pay (measured: sshd, nginx-botsearch).
        self._scanner = None if len({x[0] for x in kept}) >= _HYPERSCAN_MIN_STARTS else False

    def might_match(self, text: str) -> bool:
        if self.search is None:
            return self.literals[0] in text
        return self.search(text) is not None

    def ends(self, text: str) -> list[int] | None:
        """Where occurrences of the literals in `text` end (exclusive), in any order, or None when that is
        not worked out here (then the caller searches `self.regex`).

        With literals starting with many different characters `re` enters the trie at most positions of
        the text; Hyperscan (the `hyperscan` wheel, when installed) finds them all at once, 15 times
        faster on apache-badbots' 95.  It scans bytes: only ASCII text, whose byte offsets are its
        character offsets, is handed to it.
        """
        scanner = self._scanner
        if scanner is False or not text.isascii():
            return None
        if scanner is None:
            scanner = self._scanner = _hyperscan_scanner(self.literals)
        if scanner is False:
            return None
        return scanner(text.encode("ascii"))


def _hyperscan_scanner(literals: tuple[str, ...]) -> Any:
    """A function `bytes -> [end offsets]` finding the literals with Hyperscan, or False without it."""
    try:
        import hyperscan
    except ImportError:
        return False
    # Every byte as `\xHH`: a pure literal whatever characters it holds.
    patterns = ["".join(f"\\x{b:02x}" for b in lit.encode()).encode() for lit in literals]
    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    try:
        db.compile(expressions=patterns, ids=list(range(len(patterns))), elements=len(patterns))
    except hyperscan.error:
        return False
    local = threading.local()  # scratch space is per thread: Hyperscan refuses one in use by another scan

    def scan(data: bytes) -> list[int]:
        scratch = getattr(local, "scratch", None)
        if scratch is None:
            scratch = local.scratch = hyperscan.Scratch(db)
        found: list[int] = []
        append = found.append
        db.scan(data, match_event_handler=lambda _id, _start, end, _flags, _ctx: append(end), scratch=scratch)
        return found

    return scan


def build_prefilter(failregexes: Iterable[str], flags: int = 0, avoid: str = "") -> Prefilter | None:
    """A prefilter for a list of failregexes (already in Python syntax), or None if any has none.

    `avoid`: the characters that stand right before a date the matcher cuts out of lines.  Literals
    holding one of them but at their end could straddle the cut, so they are not found in the uncut line
    (`Filter.scan` searches whole blocks of uncut lines): literals without them are preferred, if every
    failregex has some.
    """
    failregexes = tuple(failregexes)
    found = _build_prefilter(failregexes, flags, "".join(sorted(set(avoid)))) if avoid else None
    return found if found is not None else _build_prefilter(failregexes, flags, "")


@lru_cache(maxsize=1024)
def _build_prefilter(failregexes: tuple[str, ...], flags: int, avoid: str) -> Prefilter | None:
    union: set[str] = set()
    for regex in failregexes:
        found = required_literals(regex, flags, avoid)
        if found is None:
            return None
        union |= found
    return Prefilter(frozenset(union)) if union else None


def anchored_at_start(regex: str, flags: int = 0) -> bool:
    """True when every match of `regex` must start at the beginning of the string (`^…`, no `|`)."""
    if flags & re.MULTILINE:
        return False
    parsed = _parse(regex, flags)
    if parsed is None or parsed.state.flags & re.MULTILINE or not len(parsed):
        return False
    op, av = parsed[0]
    return op is _c.AT and av is _c.AT_BEGINNING
