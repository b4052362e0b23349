"""First-character dispatch for an alternation of `^`-anchored failregexes.

`re` tries the alternatives of `A0|A1|…` one after the other, and each failed try costs the set-up
of its named groups before the first character is even looked at: on sshd's 22 failregexes, most of
the time of a line goes there.  Every failregex can only start with a few characters (`Failed …`,
`[iI]nvalid user …`), so for a text starting with `c` only the alternatives that may start with `c`
need trying.  `Dispatcher.by_first[c]` compiles that sub-alternation once per first character, keeping
the order and the group names (`_r{i}`, `_{i}_name`) of the full alternation: the first alternative that
matches, and its groups, are the same as with all of them.

`first_chars` is conservative: a construct it does not understand (case-insensitive text, classes
of many characters, an alternative that may match the empty string) means "may start with anything".
"""

from __future__ import annotations

import re
from typing import Any

from medvault.guard.memo import Memo
from medvault.guard.regexparse import REPEATS as _REPEATS
from medvault.guard.regexparse import ZERO_WIDTH as _ZERO_WIDTH
from medvault.guard.regexparse import constants as _c
from medvault.guard.regexparse import parser as _p

_MAX_CLASS = 64  # characters of a class `[…]` tracked exactly
_MAX_PATTERNS = 128  # first characters with a compiled sub-alternation; others use the full one
_ANY: None = None  # "may start with any character"

# Per alternative, by the number of its own group `_r{i}`: (i, its groups' numbers, their names).
Alternatives = dict[int, tuple[int, tuple[int, ...], tuple[str, ...]]]


def _class_chars(items: Any) -> frozenset[str] | None:
    chars: set[str] = set()
    for op, av in items:
        if op is _c.LITERAL:
            chars.add(chr(av))
        elif op is _c.RANGE and av[1] - av[0] < _MAX_CLASS:
            chars.update(chr(x) for x in range(av[0], av[1] + 1))
        else:  # NEGATE, CATEGORY (`\d`, `\s`), large ranges
            return _ANY
        if len(chars) > _MAX_CLASS:
            return _ANY
    return frozenset(chars)


def _first(items: Any, icase: bool) -> tuple[frozenset[str] | None, bool]:
    """(characters a match of the sequence may start with, whether it may match the empty string)."""
    found: set[str] = set()
    for op, av in items:
        if op in _ZERO_WIDTH:
            continue  # consumes nothing: the next item supplies the first character
        if op is _c.SUBPATTERN:
            _group, add, delete, sub = av
            chars, nullable = _first(sub, (icase or bool(add & re.IGNORECASE)) and not (delete & re.IGNORECASE))
        elif op is _c.ATOMIC_GROUP:
            chars, nullable = _first(av, icase)
        elif op is _c.BRANCH:
            chars, nullable = _union([_first(sub, icase) for sub in av[1]])
        elif op is _c.GROUPREF_EXISTS:
            _group, yes, no = av
            chars, nullable = _union([_first(yes, icase), _first(no, icase) if no else (frozenset(), True)])
        elif op in _REPEATS:
            low, _high, sub = av
            chars, nullable = _first(sub, icase)
            nullable = nullable or low == 0
        elif op is _c.LITERAL and not icase:
            chars, nullable = frozenset(chr(av)), False
        elif op is _c.IN and not icase:
            chars, nullable = _class_chars(av), False
        else:  # ANY, NOT_LITERAL, GROUPREF, case-insensitive text…
            return _ANY, False
        if chars is _ANY:
            return _ANY, False
        found |= chars
        if not nullable:
            return frozenset(found), False
    return frozenset(found), True


def _union(parts: list[tuple[frozenset[str] | None, bool]]) -> tuple[frozenset[str] | None, bool]:
    if any(chars is _ANY for chars, _ in parts):
        return _ANY, False
    return frozenset().union(*(chars for chars, _ in parts)), any(nullable for _, nullable in parts)  # type: ignore[arg-type]


def first_chars(regex: str, flags: int = 0) -> frozenset[str] | None:
    """Characters every match of `regex` starts with one of, or None when that cannot be shown."""
    try:
        parsed = _p.parse(regex, flags)
    except re.error:
        return _ANY
    chars, nullable = _first(parsed, bool(parsed.state.flags & re.IGNORECASE))
    return _ANY if nullable else chars


class Dispatcher:
    """Sub-alternations of `parts` (`(?P<_r{i}>…)` texts, in order) by the text's first character."""

    def __init__(self, parts: list[str], sources: list[str], flags: int) -> None:
        self._parts = parts
        self._flags = flags
        self._starts = [first_chars(s, flags) for s in sources]
        self.full = self._build(list(range(len(parts))))
        # Sub-alternations by first character; beyond `_MAX_PATTERNS` characters, the full one.
        self.by_first: Memo = Memo(self._pattern, _MAX_PATTERNS)

    def _pattern(self, first: str) -> tuple[re.Pattern[str], Alternatives]:
        """The sub-alternation for texts starting with `first`, and its alternatives by group number."""
        if len(self.by_first) >= _MAX_PATTERNS:
            return self.full
        chosen = [i for i, chars in enumerate(self._starts) if chars is _ANY or first in chars]
        return self._build(chosen)

    def _build(self, chosen: list[int]) -> tuple[re.Pattern[str], Alternatives]:
        pattern = re.compile("|".join(self._parts[i] for i in chosen) or "(?!)", self._flags)
        groups: dict[int, tuple[list[int], list[str]]] = {i: ([], []) for i in chosen}
        for name, number in sorted(pattern.groupindex.items(), key=lambda kv: kv[1]):
            m = re.match(r"_(\d+)_(.+)$", name)
            if m:
                numbers, names = groups[int(m.group(1))]
                numbers.append(number)
                names.append(m.group(2))
        index = pattern.groupindex
        return pattern, {index[f"_r{i}"]: (i, tuple(n), tuple(k)) for i, (n, k) in groups.items()}
