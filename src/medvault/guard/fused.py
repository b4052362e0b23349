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


def _self_contained(items: Any) -> bool:
    """True when nothing in the parsed sequence looks at text before where the match started."""
    for op, av in items:
        if op is _c.AT and av in _LOOKS_BEHIND_START:
            return False
        if op in (_c.ASSERT, _c.ASSERT_NOT):
            direction, sub = av
            if direction < 0 or not _self_contained(sub):
                return False
        elif op is _c.SUBPATTERN:
            if not _self_contained(av[3]):
                return False
        elif op is _c.BRANCH:
            if not all(_self_contained(sub) for sub in av[1]):
                return False
        elif op is _c.GROUPREF_EXISTS:
            if not _self_contained(av[1]) or (av[2] is not None and not _self_contained(av[2])):
                return False
        elif op in _REPEATS:
            if not _self_contained(av[2]):
                return False
        elif op is _c.ATOMIC_GROUP and not _self_contained(av):
            return False
    return True


def fuse(date: re.Pattern[str], prefregex: re.Pattern[str]) -> re.Pattern[str] | None:
    """`(?>date)prefregex-without-its-^`, or None when the result could differ from the two steps."""
    pref = prefregex.pattern
    if (date.flags | prefregex.flags) & ~re.UNICODE or not date.pattern.startswith("^") or not pref.startswith("^"):
        return None  # global flags would move into the middle of the fused pattern
    if (set(date.groupindex) | FIELD_NAMES) & set(prefregex.groupindex) or NUMBERED_REF.search(pref):
        return None  # names the date is read by, or numbered references that the date's groups shift
    try:
        parsed = _p.parse(pref)
    except re.error:
        return None
    # The leading `^` must anchor the whole prefregex: `^a|b` parses as one top-level alternation.
    if not len(parsed) or parsed[0] != (_c.AT, _c.AT_BEGINNING) or not _self_contained(parsed[1:]):
        return None
    try:
        return re.compile(f"(?>{date.pattern}){pref[1:]}")
    except re.error:
        return None
