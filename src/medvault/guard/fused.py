"""One regex for a line's date and its `prefregex`, where that gives exactly the two-step result.

A line normally costs a date search, a cut (`line[:start] + line[end:]`) and a `prefregex` search on
what is left.  When the date stands at the very start of the line, what is left is `line[end:]`, and
a `^`-anchored prefregex that never looks behind its start (no look-behind, `\\b`, or `^` elsewhere)
matches there exactly as it matches that text on its own.  So `(?>DATE)PREFREGEX` applied to the
line finds both in one call.  The date part is atomic: the engine cannot back into it and pick
another date span to make the prefregex match, which the two-step path would never do.

The caller checks the date starts at 0 and is not empty, and falls back to the two steps otherwise.
"""

from __future__ import annotations

import re
from typing import Any

from medvault.guard.dates import FIELD_NAMES
from medvault.guard.regexparse import REPEATS as _REPEATS
from medvault.guard.regexparse import constants as _c
from medvault.guard.regexparse import parser as _p

_LOOKS_BEHIND_START = {_c.AT_BEGINNING, _c.AT_BEGINNING_STRING, _c.AT_BOUNDARY, _c.AT_NON_BOUNDARY}
# Numbered back-references: another regex before this one in a combined pattern would shift their numbers.
NUMBERED_REF = re.compile(r"\\[1-9]|\(\?\(\d+\)")


def _width(items: Any, item: tuple) -> int:
    """The fewest characters `item` (of the parsed sequence `items`) can match."""
    return _p.SubPattern(items.state, [item]).getwidth()[0]


def _self_contained(items: Any, consumed: int = 0) -> bool:
    """True when nothing in the parsed sequence looks at text before where the match started, given that at
    least `consumed` characters were matched before the sequence: a look-behind, `^` or `\\b` after some
    text only looks at text of the match (IP6's `(?<=:):` comes after its first group)."""
    for op, av in items:
        if op is _c.AT and av in _LOOKS_BEHIND_START and not consumed:
            return False
        if op in (_c.ASSERT, _c.ASSERT_NOT):
            direction, sub = av
            back = sub.getwidth()[1] if direction < 0 else 0
            if back > consumed or not _self_contained(sub, consumed - back):
                return False
        elif op is _c.SUBPATTERN:
            if not _self_contained(av[3], consumed):
                return False
        elif op is _c.BRANCH:
            if not all(_self_contained(sub, consumed) for sub in av[1]):
                return False
        elif op is _c.GROUPREF_EXISTS:
            if not _self_contained(av[1], consumed) or (av[2] is not None and not _self_contained(av[2], consumed)):
                return False
        elif op in _REPEATS:
            if not _self_contained(av[2], consumed):
                return False
        elif op is _c.ATOMIC_GROUP and not _self_contained(av, consumed):
            return False
        consumed += _width(items, (op, av))
    return True


def _anchored_self_contained(regex: str) -> bool:
    """True when `regex` is `^` followed by a self-contained sequence (`^a|b` is a top-level alternation)."""
    try:
        parsed = _p.parse(regex)
        rest = _p.parse(regex[1:])
    except re.error:
        return False
    return len(parsed) > 0 and parsed[0] == (_c.AT, _c.AT_BEGINNING) and _self_contained(rest)


def fuse(date: re.Pattern[str], prefregex: re.Pattern[str]) -> re.Pattern[str] | None:
    """`(?>date)prefregex-without-its-^`, or None when the result could differ from the two steps."""
    pref = prefregex.pattern
    if (date.flags | prefregex.flags) & ~re.UNICODE or not date.pattern.startswith("^") or not pref.startswith("^"):
        return None  # global flags would move into the middle of the fused pattern
    if (set(date.groupindex) | FIELD_NAMES) & set(prefregex.groupindex) or NUMBERED_REF.search(pref):
        return None  # names the date is read by, or numbered references that the date's groups shift
    if not _anchored_self_contained(pref):
        return None
    try:
        return re.compile(f"(?>{date.pattern}){pref[1:]}")
    except re.error:
        return None


_CONTENT_TAIL = "(?P<content>.+)$"
LINE_GROUPS = ("_c", "_none")  # the content's start, and "no failregex matched"


def fuse_line(date: re.Pattern[str], prefregex: re.Pattern[str], failregexes: list[str]) -> re.Pattern[str] | None:
    """The date, the prefregex and the failregexes as one regex: `(?>date)(?>prefix(?=.))(?P<_c>)` and the
    failregexes' `marked_alternation`.

    `failregexes` are the alternatives' texts (`^`-anchored, groups prefixed `_{i}_`). The prefregex must end
    in `(?P<content>.+)$`: its prefix is then the first one of its choices that leaves a character, as the
    two-step path finds it, and the failregexes see from there what they see in `content + "\\n"` (each must
    be self-contained, as the prefregex for `fuse`). A line without its date or prefregex does not match.
    """
    pref = prefregex.pattern
    if fuse(date, prefregex) is None or not pref.endswith(_CONTENT_TAIL):
        return None
    alternatives = []
    for source in failregexes:
        if not _anchored_self_contained(source):
            return None
        alternatives.append(source[1:])
    prefix = pref[1 : -len(_CONTENT_TAIL)]
    try:
        return re.compile(f"(?>{date.pattern})(?>{prefix}(?=.))(?P<_c>){marked_alternation(alternatives)}")
    except re.error:
        return None


def marked_alternation(failregexes: list[str]) -> str:
    """`(?:A0(?P<_e0>)|…|(?P<_none>))`: the group `_e{i}` marks the first failregex (in file order) that
    matched, and the empty `_none` a text that none matched (the match still gives the date's groups)."""
    marked = "|".join(f"(?:{source})(?P<_e{i}>)" for i, source in enumerate(failregexes))
    return f"(?:{marked}|(?P<_none>))"
