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
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from medvault.guard.regexparse import REPEATS as _REPEATS
from medvault.guard.regexparse import ZERO_WIDTH as _ZERO_WIDTH
from medvault.guard.regexparse import constants as _c
from medvault.guard.regexparse import parser as _p

_MAX_SET = 64  # largest set of alternative strings tracked exactly
_MAX_CLASS = 4  # `[aA]` is two alternatives; `[a-z]` is not tracked
_Info = tuple[frozenset[str] | None, frozenset[str] | None]  # (exact strings, required strings)
_EMPTY: frozenset[str] = frozenset({""})


def _score(strings: frozenset[str] | None) -> tuple[int, int]:
    """Higher is more selective: longest shortest string, then fewest strings."""
    if not strings or "" in strings:
        return (0, 0)
    return (min(len(x) for x in strings), -len(strings))


def _best(*candidates: frozenset[str] | None) -> frozenset[str] | None:
    best = max(candidates, key=_score)
    return best if _score(best) > (0, 0) else None


def _product(a: frozenset[str], b: frozenset[str]) -> frozenset[str] | None:
    if len(a) * len(b) > _MAX_SET:
        return None
    return frozenset(x + y for x in a for y in b)


def _sequence(items: Iterable[Any], icase: bool) -> _Info:
    exact: frozenset[str] = _EMPTY
    broken = False
    required: frozenset[str] | None = None
    for op, av in items:
        sub_exact, sub_req = _node(op, av, icase)
        required = _best(required, sub_req)
        joined = _product(exact, sub_exact) if sub_exact is not None else None
        if joined is None:
            required = _best(required, exact)
            broken = True
            exact = sub_exact if sub_exact is not None else _EMPTY
        else:
            exact = joined
    required = _best(required, exact)
    return (None if broken else exact), required


def _node(op: Any, av: Any, icase: bool) -> _Info:
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
        return _sequence(sub, inner)
    if op is _c.ATOMIC_GROUP:
        return _sequence(av, icase)
    if op is _c.BRANCH:
        alternatives = [_sequence(sub, icase) for sub in av[1]]
        return _alternation(alternatives)
    if op is _c.GROUPREF_EXISTS:
        _group, yes, no = av
        return _alternation([_sequence(yes, icase), _sequence(no, icase) if no else (_EMPTY, None)])
    if op in _REPEATS:
        low, high, sub = av
        sub_exact, sub_req = _sequence(sub, icase)
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
        return None, _best(sub_req, sub_exact)
    return None, None  # ANY, NOT_LITERAL, GROUPREF, classes, categories…


def _alternation(alternatives: list[_Info]) -> _Info:
    exacts = [e for e, _ in alternatives]
    exact: frozenset[str] | None = None
    if all(e is not None for e in exacts):
        union = frozenset().union(*exacts)  # type: ignore[arg-type]
        exact = union if len(union) <= _MAX_SET else None
    required: set[str] = set()
    for sub_exact, sub_req in alternatives:
        choice = _best(sub_req, sub_exact)
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
def required_literals(regex: str, flags: int = 0) -> frozenset[str] | None:
    """Strings one of which every match of `regex` contains, or None when that cannot be shown.

    The strings are cut at the first newline: the matcher appends one to the text it matches, and
    only the part before it is guaranteed to be in the line.
    """
    parsed = _parse(regex, flags)
    if parsed is None:
        return None
    icase = bool(parsed.state.flags & re.IGNORECASE)
    exact, required = _sequence(parsed, icase)
    found = _best(required, exact)
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

    def might_match(self, text: str) -> bool:
        if self.search is None:
            return self.literals[0] in text
        return self.search(text) is not None


def build_prefilter(failregexes: Iterable[str], flags: int = 0) -> Prefilter | None:
    """A prefilter for a list of failregexes (already in Python syntax), or None if any has none."""
    return _build_prefilter(tuple(failregexes), flags)


@lru_cache(maxsize=1024)
def _build_prefilter(failregexes: tuple[str, ...], flags: int) -> Prefilter | None:
    union: set[str] = set()
    for regex in failregexes:
        found = required_literals(regex, flags)
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
