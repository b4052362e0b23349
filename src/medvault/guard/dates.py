"""Find and parse the timestamp of a log line.

A failure counts at the time written in the line, not when the guard reads it: a replayed or
late-read log must not ban (or fail to ban) on wall-clock time.  The date is also cut out of the
line before the failregexes run, as fail2ban does, so filters written for fail2ban see the same
text here.

Patterns use fail2ban's strftime-like syntax (`%Y-%m-%d`, `%b %d %H:%M:%S`, `{^LN-BEG}`,
`{DATE}`, `EPOCH`), compiled to one regex each.  Everything is pure: `now` (for syslog dates that
carry no year) and the default time zone are arguments, never read from the clock here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import lru_cache

from medvault.guard.regexparse import REPEATS, constants, parser

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTHS_LONG = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
_DAYS = "(?i:mon|tue|wed|thu|fri|sat|sun)"
_DAYS_LONG = "(?i:monday|tuesday|wednesday|thursday|friday|saturday|sunday)"

# The directive regexes are MedVault's own, chosen to accept what fail2ban accepts: optional leading
# zeros or space for the plain forms, exact two digits for the `%Ex…` forms, years 20xx for `%ExY`.
_DIRECTIVES = {
    "ExY": r"(?P<Y>20\d\d)",
    "Exy": r"(?P<y>\d\d)",
    "Exm": r"(?P<m>0[1-9]|1[0-2])",
    "Exd": r"(?P<d>0[1-9]|[12]\d|3[01])",
    "ExH": r"(?P<H>[01]\d|2[0-3])",
    "Exk": r" ?(?P<H>[01]?\d|2[0-3])",
    "Exl": r" ?(?P<I>1[0-2]|\d)",
    "ExM": r"(?P<M>[0-5]\d)",
    "ExS": r"(?P<S>[0-5]\d|6[01])",
    "Exz": r"(?P<z>(?:[A-Z]{1,5})?[+-][01]\d(?::?\d{2})?|[A-Z]{1,5})",
    "ExZ": r"(?P<Z>[A-Z](?:[A-Z]{2,4})?)",
    "Y": r"(?P<Y>\d{4})",
    "y": r"(?P<y>\d\d)",
    "m": r"(?P<m>1[0-2]|0?[1-9])",
    "d": r"(?P<d>[12]\d|3[01]|[0 ]?[1-9])",
    "H": r"(?P<H>2[0-3]|[01]?\d)",
    "k": r" ?(?P<H>[0-2]?\d)",
    "I": r"(?P<I>1[0-2]|0?[1-9])",
    "l": r" ?(?P<I>1?\d)",
    "M": r"(?P<M>[0-5]?\d)",
    "S": r"(?P<S>6[01]|[0-5]?\d)",
    "f": r"(?P<f>\d{1,6})",
    "p": r"(?P<p>(?i:am|pm))",
    "b": r"(?P<b>(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec))",
    "B": "(?P<B>(?i:" + "|".join(_MONTHS_LONG) + "))",
    "a": _DAYS,
    "A": _DAYS_LONG,
    "j": r"(?P<j>36[0-6]|3[0-5]\d|[12]\d\d|0?[1-9]\d|0?0?[1-9])",
    "z": r"(?P<z>Z|UTC|GMT|[+-][01]\d(?::?\d{2})?)",
    "Z": r"(?P<Z>Z|[A-Z]{3,5})",
    "%": "%",
}
_DIRECTIVE_RE = re.compile(r"%(" + "|".join(sorted(_DIRECTIVES, key=len, reverse=True)) + ")")
# Group names a date match is read by (`_fields_to_time` reads a match's groups by these names).
FIELD_NAMES = frozenset(n for v in _DIRECTIVES.values() for n in re.findall(r"\(\?P<(\w+)>", v)) | {"_date", "_epoch"}
_EPOCH = r"\d{10,11}\b(?:\.\d{3,6})?"
_LONG_EPOCH = r"\d{10,11}(?:\d{3}(?:\.\d{1,6}|\d{3})?)?"
_UTC_NAMES = {"Z", "UTC", "GMT"}
# Abbreviations are ambiguous worldwide; these are the ones seen in the logs fail2ban supports.
_ZONE_HOURS = {
    "EST": -5,
    "EDT": -4,
    "CST": -6,
    "CDT": -5,
    "MST": -7,
    "MDT": -6,
    "PST": -8,
    "PDT": -7,
    "CET": 1,
    "CEST": 2,
    "EET": 2,
    "EEST": 3,
    "WET": 0,
    "WEST": 1,
    "BST": 1,
    "MSK": 3,
}

# fail2ban's default template list (order matters: the first that matches wins, line-start first).
# Optional parts are written `(?:X|)`: the same matches, in the same order, as `(?:X)?`, which `re` runs
# as a general repeat (slower: these are tried on every line).
DEFAULT_PATTERNS = (
    r"%ExY(?P<_sep>[-/.])%m(?P=_sep)%d(?:T|  ?)%H:%M:%S(?:[.,]%f|)(?:\s*%z|)",
    r"(?:%a |)%b %d %k:%M:%S(?:\.%f|)(?: %ExY|)",
    r"(?:%a |)%b %d %ExY %k:%M:%S(?:\.%f|)",
    r"%d(?P<_sep>[-/])%m(?P=_sep)(?:%ExY|%Exy) %k:%M:%S",
    r"%d(?P<_sep>[-/])%b(?P=_sep)%ExY[ :]?%H:%M:%S(?:\.%f|)(?: %z|)",
    r"%m/%d/%ExY:%H:%M:%S",
    r"%m-%d-%ExY %k:%M:%S(?:\.%f|)",
    "EPOCH",
    r"{^LN-BEG}%H:%M:%S",
    r"^<%m/%d/%Exy@%H:%M:%S>",
    r"%Exy%Exm%Exd  ?%H:%M:%S",
    r"%b %d, %ExY %I:%M:%S %p",
    r"^%b-%d-%Exy %k:%M:%S",
    r"%ExY%Exm%Exd(?:T|  ?)%ExH%ExM%ExS(?:[.,]%f|)(?:\s*%z|)",
    r"(?:%Z |)(?:%a |)%b %d %k:%M:%S(?:\.%f|)(?: %ExY|)",
    r"(?:%z |)(?:%a |)%b %d %k:%M:%S(?:\.%f|)(?: %ExY|)",
    "TAI64N",
)

_LN_BEG = "{^LN-BEG}"
_NO_WORD_BEGIN = re.compile(r"^\(*(?:\(\?\w+\))?(?:\^|\(*\*\*|\((?:\?:)?\^)")
_PLAIN_GROUP = re.compile(r"(?<!\\)\((?!\?)")
_NO_WORD_END = re.compile(r"(?<!\\)(?:\$\)?|\\b|\\s|\*\*\)*)$")


@dataclass(frozen=True)
class DateMatch:
    """Where the date stands in the line (to cut it out) and the Unix time it denotes.

    `time` is None when a pattern matched an empty date (fail2ban's "date is optional" case): the
    caller then uses the time of the previous line.
    """

    start: int
    end: int
    time: float | None


class DateTemplate:
    """One compiled date pattern; group `_date` spans the text that is cut from the line."""

    def __init__(self, pattern: str, *, line_begin: bool = False) -> None:
        self.pattern = pattern
        self.kind = "strptime"
        body = pattern.strip()
        unbounded = body.startswith("{UNB}")
        if unbounded:
            body = body[5:]
        if body.startswith(_LN_BEG):
            body, line_begin = body[len(_LN_BEG) :], True
        upper = body.upper()
        if upper in ("EPOCH", "LEPOCH", "^EPOCH", "^LEPOCH"):
            self.kind = "epoch"
            num = _LONG_EPOCH if "LEPOCH" in upper else _EPOCH
            if line_begin or upper.startswith("^"):
                regex = rf"^(?P<_sq>\[)?(?P<_date>{num})(?(_sq)(?=\]))(?=\b|\W|$)"
            else:
                regex = rf"(?:^|(?<=^\[)|(?<=\baudit\())(?P<_date>{num})"
        elif upper in ("TAI64N", "^TAI64N"):
            self.kind = "tai64n"
            regex = r"(?:^|\b)@?(?P<_date>4000[0-9a-fA-F]{20})(?=\b|\W|$)"
            if line_begin or upper.startswith("^"):
                regex = "^" + regex
        else:
            if re.search(r"\{L?EPOCH\}", body, re.I):
                self.kind = "epoch"
                body = re.sub(r"\{L?EPOCH\}", f"(?P<_epoch>{_EPOCH})", body, flags=re.I)
            regex = self._compile_body(body, line_begin and not unbounded, unbounded)
        self.regex = re.compile(regex)
        # `DateDetector.skip`'s tests whether a line has this date, compiled when first needed (`finders`).
        self.found = self.found_quick = None
        self.anchored = regex.startswith("^")
        self.before_date = _before_date(regex)
        # Parse cache: lines of a log share everything but the seconds, so parsed dates are cached
        # per "all groups except %S" and the seconds added back (see `_cached_time`).
        self._s_index = self.regex.groupindex.get("S", 0) if self.kind == "strptime" else 0
        # Groups holding the seconds (`%S` and the groups around it, like `_date`) stay out of the key.
        self._key_groups = _groups_outside(regex, self._s_index) if self._s_index else None
        self._cache: dict[tuple, tuple | None] = {}
        # `parse` without its dispatch on the kind, for the matcher's per-line path.
        self.time_of = self._cached_time if self._s_index else self.parse
        self._now_memo: tuple = (None, None, None)  # (now, tz, `_now_parts(now, tz)`) of the last call
        self._last_minute: tuple = (None, None, None, None)  # (minute fields, now, tz, cache entry)

    def finders(self) -> tuple[Callable, Callable]:
        """Two tests of whether a line has this date, faster than `regex.search`: `found` is that regex with
        its unreferenced groups not captured (`re` spends much of a date's time on captures); `found_quick`,
        cheaper still, also lacks the optional tail, so it is enough when it matches but may miss."""
        if self.found is None:
            self.found = _uncaptured(self.regex).search
            self.found_quick = _uncaptured(_without_optional_tail(self.regex)).search
        return self.found_quick, self.found

    @staticmethod
    def _compile_body(body: str, line_begin: bool, unbounded: bool) -> str:
        word_begin = not unbounded and not _NO_WORD_BEGIN.search(body)
        word_end = not unbounded and not _NO_WORD_END.search(body)
        body = body.replace("**", "")
        lead = ""
        m = re.match(r"^(\(\?\w+\))?\^", body)
        if m:
            lead, body = body[: m.end()], body[m.end() :]
        converted = _DIRECTIVE_RE.sub(lambda d: _DIRECTIVES[d.group(1)], body)
        # An explicit capture group marks the date inside a larger pattern (`^[^\[]*\[({DATE})`);
        # otherwise the whole pattern is the date.
        if _PLAIN_GROUP.search(converted):
            regex = _PLAIN_GROUP.sub("(?P<_date>", converted, count=1)
        else:
            regex = f"(?P<_date>{converted})"
        if line_begin:
            regex = r"^\W{0,2}" + regex
        elif word_begin:
            regex = r"(?=^|\b|\W)" + regex
        if word_end:
            regex += r"(?=\b|\W|$)"
        return lead + regex

    def parse(self, m: re.Match[str], now: float, tz: tzinfo | None) -> float | None:
        """Turn a match of this template into Unix time; None if the fields make no date."""
        if self.kind == "tai64n":
            label = m.group("_date")
            return float(int(label[:16], 16) - 2**62)  # whole seconds, as fail2ban counts
        if self.kind == "epoch":
            text = m.groupdict().get("_epoch") or m.group("_date")
            value = float(text)
            whole = text.split(".")[0]
            if len(whole) > 11:  # long epoch in milli- or microseconds
                value /= 10 ** (len(whole) - 10)
            return value
        if self._s_index:
            return self._cached_time(m, now, tz)
        return _fields_to_time(m.groupdict(), now, tz)

    def _cached_time(self, m: re.Match[str], now: float, tz: tzinfo | None) -> float | None:
        """`_fields_to_time`, computed once per distinct minute and shifted by the seconds.

        Exact: the entry holds the three candidate Unix times `_fields_to_time` chooses between
        (as written, a day earlier, a year earlier) for second 0, and is only used when each of them
        is linear in the second over the whole minute (no time-zone transition inside it).
        """
        text = m.group(self._s_index)
        if text is None or self._key_groups is None:
            return _fields_to_time(m.groupdict(), now, tz)
        minute = m.group(*self._key_groups)
        last_minute, last_now, last_tz, entry = self._last_minute  # consecutive lines share a minute
        if minute != last_minute or now != last_now or tz is not last_tz:
            memo_now, memo_tz, parts = self._now_memo
            if now != memo_now or tz is not memo_tz:
                parts = _now_parts(now, tz)
                self._now_memo = (now, tz, parts)
            key = (minute, tz, parts)
            cache = self._cache
            try:
                entry = cache[key]
            except KeyError:
                if len(cache) >= 4096:
                    cache.clear()
                entry = cache[key] = _minute_entry(m.groupdict(), now, tz)
            self._last_minute = (minute, now, tz, entry)
        if entry is None:
            return _fields_to_time(m.groupdict(), now, tz)
        when, day_before, year_before, assume_today, assume_year = entry
        sec = int(text)
        if sec > 59:
            sec = 59
        if when is None:
            return None
        stamp = when + sec
        if assume_today and stamp > now:
            stamp = day_before + sec
        if assume_year and stamp > now + 86400:
            return None if year_before is None else year_before + sec
        return stamp


_NAMED_GROUP = re.compile(r"(?<!\\)\(\?P<(\w+)>")
_GROUP_USE = re.compile(r"\(\?P=(\w+)\)|\(\?\((\w+)\)")
_NUMBERED_REF = re.compile(r"\\[1-9]|\(\?\(\d+\)")


def _uncaptured(regex: re.Pattern[str]) -> re.Pattern[str]:
    """The regex with its named groups that nothing refers to as `(?:…)`: it matches the same texts (what
    it captures aside), and `re` spends most of a date's time setting up and saving captures."""
    pattern = regex.pattern
    if _NUMBERED_REF.search(pattern):
        return regex  # numbers of groups would shift
    used = {a or b for a, b in _GROUP_USE.findall(pattern)}
    plain = _NAMED_GROUP.sub(lambda m: m.group() if m.group(1) in used else "(?:", pattern)
    try:
        uncaptured = re.compile(plain, regex.flags)
    except re.error:  # pragma: no cover - `(?P<` inside a class, say
        return regex
    return uncaptured if set(uncaptured.groupindex) == used else regex


_WORD_END = r"(?=\b|\W|$)"


def _paren_in_class(pattern: str) -> bool:
    """Whether a character class `[…]` of the pattern holds a parenthesis (which `_matching_open` would count)."""
    start = -1  # where the class being read starts its members, -1: outside any class
    escaped = False
    for k, ch in enumerate(pattern):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif start >= 0:
            if ch in "()":
                return True
            if ch == "]" and k > start:
                start = -1
            elif ch == "^" and k == start:
                start += 1
        elif ch == "[":
            start = k + 1
    return False


def _matching_open(text: str, close: int) -> int | None:
    """Where the group closed by the `)` at `close` opens (no escaped parenthesis or class may be in it)."""
    depth = 0
    for k in range(close, -1, -1):
        ch = text[k]
        if ch in "()" and k and text[k - 1] == "\\":
            return None
        if ch == ")":
            depth += 1
        elif ch == "(":
            depth -= 1
            if not depth:
                return k
    return None


def _without_optional_tail(regex: re.Pattern[str]) -> re.Pattern[str]:
    """The regex without the optional groups `(?:X|)` at its end (before group ends and the word-end
    look-ahead): whatever it matches, the regex matches too, taking the empty branches there."""
    pattern = regex.pattern
    if not pattern.endswith(_WORD_END) or _paren_in_class(pattern):
        return regex
    body, closers = pattern[: -len(_WORD_END)], ""
    while body.endswith(")") and not body.endswith("\\)"):
        start = _matching_open(body, len(body) - 1)
        if start is None:
            return regex
        group = body[start:]
        if group.startswith("(?:") and group.endswith("|)") and not group.endswith("\\|)"):
            body = body[:start]  # an optional group: dropped
        elif not group.startswith(("(?=", "(?!", "(?<", "(?(", "(?P=", "(?#")):
            closers = ")" + closers  # a group ends here: so may optional groups inside it
            body = body[:-1]
        else:
            break
    quick = body + closers + _WORD_END
    if quick == pattern:
        return regex
    try:
        return re.compile(quick, regex.flags)
    except re.error:
        return regex


def _before_date(regex: str) -> str | None:
    """What stands right before the `_date` group in every match: one character, "" (the line
    start), or None when that is not fixed.  Cutting the date out joins that character to the text
    after the date, which is what the prefilter has to allow for (`Filter.scan`).
    """
    try:
        parsed = parser.parse(regex)
    except re.error:  # pragma: no cover - the template compiled already
        return None
    target = parsed.state.groupdict.get("_date")
    items = list(parsed)
    for k, (op, av) in enumerate(items):
        if op is constants.SUBPATTERN and av[0] == target:
            if k == 0:
                return None  # a search: anything may stand before the date
            prev_op, prev_av = items[k - 1]
            if prev_op is constants.LITERAL:
                return chr(prev_av)
            if (
                k == 1
                and prev_op is constants.AT
                and prev_av is constants.AT_BEGINNING
                and not parsed.state.flags & re.MULTILINE
            ):
                return ""
            return None
    return None


def _offset(text: str) -> timezone | None:
    if text in _UTC_NAMES:
        return UTC
    if text in _ZONE_HOURS:
        return timezone(timedelta(hours=_ZONE_HOURS[text]))
    m = re.search(r"([+-])([01]\d):?(\d\d)?$", text)
    if not m:
        return None
    minutes = int(m.group(2)) * 60 + int(m.group(3) or 0)
    return timezone(timedelta(minutes=minutes if m.group(1) == "+" else -minutes))


@lru_cache(maxsize=1024)
def _groups_outside(regex: str, target: int) -> tuple[int, ...] | None:
    """Numbers of the groups of `regex` that neither are group `target` nor contain it.

    The parsed tree is walked with the standard library's parser; None if it cannot be parsed
    (then no caching).
    """
    try:
        parsed = parser.parse(regex)
    except re.error:  # pragma: no cover - the template compiled already
        return None
    enclosing: set[int] = set()

    def walk(items: object, stack: tuple[int, ...]) -> None:
        for op, av in items:  # type: ignore[attr-defined]
            if op is constants.SUBPATTERN:
                group = av[0]
                inner = (*stack, group) if group else stack
                if group == target:
                    enclosing.update(inner)
                walk(av[3], inner)
            elif op is constants.BRANCH:
                for sub in av[1]:
                    walk(sub, stack)
            elif op is constants.GROUPREF_EXISTS:
                walk(av[1], stack)
                if av[2]:
                    walk(av[2], stack)
            elif op in REPEATS:
                walk(av[2], stack)
            elif op in (constants.ASSERT, constants.ASSERT_NOT):
                walk(av[1], stack)
            elif op is constants.ATOMIC_GROUP:
                walk(av, stack)

    walk(parsed, ())
    if target not in enclosing:
        return None
    keep = tuple(g for g in range(1, parsed.state.groups) if g not in enclosing)
    return keep if len(keep) > 1 else None  # m.group(*keep) must return a tuple


_NOW_PARTS: dict[tuple[float, tzinfo | None], tuple[int, int, int]] = {}


def _now_parts(now: float, tz: tzinfo | None) -> tuple[int, int, int]:
    """(year, month, day) of `now` in `tz`: all a date without year or day takes from `now`."""
    key = (now, tz)
    try:
        return _NOW_PARTS[key]
    except KeyError:
        if len(_NOW_PARTS) >= 64:
            _NOW_PARTS.clear()
        d = datetime.fromtimestamp(now, tz)
        parts = _NOW_PARTS[key] = (d.year, d.month, d.day)
        return parts


def _minute_entry(g: dict[str, str | None], now: float, tz: tzinfo | None) -> tuple | None:
    """Cache entry for `DateTemplate._cached_time`, or None when the minute is not linear."""
    found = _fields_to_datetime({**g, "S": "0"}, now, tz)
    if found is None:
        return (None, None, None, False, False)
    when, assume_today, assume_year = found
    candidates = [when, when - timedelta(days=1) if assume_today else None, None]
    if assume_year:
        try:
            candidates[2] = when.replace(year=when.year - 1)
        except ValueError:  # 29 February of a leap year
            candidates[2] = None
    stamps: list[float | None] = []
    for dt in candidates:
        if dt is None:
            stamps.append(None)
            continue
        start = dt.timestamp()
        if dt.replace(second=59).timestamp() - start != 59:
            return None  # a zone transition inside this minute: no shortcut
        stamps.append(start)
    return (stamps[0], stamps[1], stamps[2], assume_today, assume_year)


def _fields_to_time(g: dict[str, str | None], now: float, tz: tzinfo | None) -> float | None:
    found = _fields_to_datetime(g, now, tz)
    if found is None:
        return None
    when, assume_today, assume_year = found
    stamp = when.timestamp()
    if assume_today and stamp > now:
        stamp = (when - timedelta(days=1)).timestamp()
    if assume_year and stamp > now + 86400:
        try:
            stamp = when.replace(year=when.year - 1).timestamp()
        except ValueError:  # 29 February of a leap year
            return None
    return stamp


def _fields_to_datetime(g: dict[str, str | None], now: float, tz: tzinfo | None) -> tuple[datetime, bool, bool] | None:
    """The datetime the fields denote, and whether the day and the year came from `now`."""
    year_now, month_now, day_now = _now_parts(now, tz)
    zone: tzinfo | None = tz
    if g.get("z"):
        zone = _offset(g["z"]) or tz
    elif g.get("Z") in _UTC_NAMES:
        zone = UTC
    elif g.get("Z") in _ZONE_HOURS:
        zone = timezone(timedelta(hours=_ZONE_HOURS[g["Z"]]))
    year = int(g["Y"]) if g.get("Y") else (2000 + int(g["y"]) if g.get("y") else None)
    if g.get("b"):
        month = _MONTHS.index(g["b"].lower()) + 1
    elif g.get("B"):
        month = _MONTHS_LONG.index(g["B"].lower()) + 1
    else:
        month = int(g["m"]) if g.get("m") else None
    day = int(g["d"]) if g.get("d") else None
    hour = int(g["H"]) if g.get("H") else 0
    if g.get("I"):
        hour = int(g["I"]) % 12 + (12 if (g.get("p") or "").lower() == "pm" else 0)
    minute = int(g["M"]) if g.get("M") else 0
    second = min(int(g["S"]), 59) if g.get("S") else 0
    assume_year = year is None
    if assume_year:
        year = year_now
    assume_today = month is None and day is None
    if g.get("j") and month is None:
        base = datetime(year, 1, 1) + timedelta(days=int(g["j"]) - 1)
        month, day, assume_today = base.month, base.day, False
    if assume_today:
        month, day = month_now, day_now
    try:
        when = datetime(year, month or 1, day or 1, hour, minute, second, tzinfo=zone)
    except ValueError:
        return None
    return when, assume_today, assume_year


def _expand(pattern: str) -> list[DateTemplate]:
    """One datepattern line to templates; `{DATE}` and a bare `{^LN-BEG}` mean the defaults."""
    stripped = pattern.strip()
    if stripped.upper() == _LN_BEG:
        return [DateTemplate(p, line_begin=True) for p in DEFAULT_PATTERNS if not p.startswith("^")] + [
            DateTemplate(p) for p in DEFAULT_PATTERNS if p.startswith("^")
        ]
    if "{DATE}" in stripped.upper():
        out = []
        for p in DEFAULT_PATTERNS:
            if p in ("EPOCH", "TAI64N") or p.startswith("{"):
                continue
            body = re.sub(r"\{DATE\}", lambda _m, p=p: p.lstrip("^"), stripped, flags=re.I)
            out.append(DateTemplate(body))
        return out
    return [DateTemplate(stripped)]


class DateDetector:
    """Try templates in priority order, starting with the one that matched last (logs are uniform)."""

    def __init__(self, datepattern: str | None = None) -> None:
        if datepattern:
            templates = [t for line in datepattern.splitlines() if line.strip() for t in _expand(line)]
        else:
            line_start = [DateTemplate(p, line_begin=True) for p in DEFAULT_PATTERNS if not p.startswith(("^", "{"))]
            templates = line_start + [DateTemplate(p) for p in DEFAULT_PATTERNS]
        self.templates = templates
        self._last: DateTemplate | None = None
        self.last_time: float | None = None  # set by `skip` only, for the caller to pick up

    def find(self, line: str, now: float, tz: tzinfo | None = None) -> DateMatch | None:
        """Locate and parse the line's date, or None when no template matches."""
        found = self.locate(line, now, tz)
        return None if found is None else DateMatch(*found)

    def locate(self, line: str, now: float, tz: tzinfo | None = None) -> tuple[int, int, float | None] | None:
        """`find` without the result object: (start, end, time) of the date, or None."""
        last = self._last
        if last is not None:
            m = last.regex.search(line)
            if m:
                return self._result(last, m, now, tz)
        for template in self.templates:
            if template is last:
                continue
            m = template.regex.search(line)
            if m:
                self._last = template
                return self._result(template, m, now, tz)
        return None

    def skip(self, lines: list[str], now: float, tz: tzinfo | None, safe: Callable[[DateTemplate], bool]) -> bool:
        """Advance over `lines` as `locate` on each would, when that is cheap; False if not done.

        Done only when the remembered template matches every line (then it stays remembered, and
        `last_time` becomes the time of the last line whose date parses) and `safe(template)` holds.
        Otherwise nothing changes and the caller must `locate` line by line.
        """
        last = self._last
        if last is None or not safe(last):
            return False
        quick, has_date = last.finders()
        if not all(map(quick, lines)) and not all(map(has_date, lines)):
            return False
        search = last.regex.search
        for line in reversed(lines):
            found = self._result(last, search(line), now, tz)  # type: ignore[arg-type]
            if found is not None and found[2] is not None:
                self.last_time = found[2]
                break
        return True

    @staticmethod
    def _result(
        template: DateTemplate, m: re.Match[str], now: float, tz: tzinfo | None
    ) -> tuple[int, int, float | None] | None:
        start, end = m.span("_date")
        if start == end:
            return start, end, None
        stamp = template.parse(m, now, tz)
        if stamp is None:
            return None
        return start, end, stamp
