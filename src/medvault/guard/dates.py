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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTHS_LONG = ("january", "february", "march", "april", "may", "june", "july", "august",
                "september", "october", "november", "december")
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
_EPOCH = r"\d{10,11}\b(?:\.\d{3,6})?"
_LONG_EPOCH = r"\d{10,11}(?:\d{3}(?:\.\d{1,6}|\d{3})?)?"
_UTC_NAMES = {"Z", "UTC", "GMT"}
# Abbreviations are ambiguous worldwide; these are the ones seen in the logs fail2ban supports.
_ZONE_HOURS = {"EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "MST": -7, "MDT": -6, "PST": -8, "PDT": -7,
               "CET": 1, "CEST": 2, "EET": 2, "EEST": 3, "WET": 0, "WEST": 1, "BST": 1, "MSK": 3}

# fail2ban's default template list (order matters: the first that matches wins, line-start first).
DEFAULT_PATTERNS = (
    r"%ExY(?P<_sep>[-/.])%m(?P=_sep)%d(?:T|  ?)%H:%M:%S(?:[.,]%f)?(?:\s*%z)?",
    r"(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?",
    r"(?:%a )?%b %d %ExY %k:%M:%S(?:\.%f)?",
    r"%d(?P<_sep>[-/])%m(?P=_sep)(?:%ExY|%Exy) %k:%M:%S",
    r"%d(?P<_sep>[-/])%b(?P=_sep)%ExY[ :]?%H:%M:%S(?:\.%f)?(?: %z)?",
    r"%m/%d/%ExY:%H:%M:%S",
    r"%m-%d-%ExY %k:%M:%S(?:\.%f)?",
    "EPOCH",
    r"{^LN-BEG}%H:%M:%S",
    r"^<%m/%d/%Exy@%H:%M:%S>",
    r"%Exy%Exm%Exd  ?%H:%M:%S",
    r"%b %d, %ExY %I:%M:%S %p",
    r"^%b-%d-%Exy %k:%M:%S",
    r"%ExY%Exm%Exd(?:T|  ?)%ExH%ExM%ExS(?:[.,]%f)?(?:\s*%z)?",
    r"(?:%Z )?(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?",
    r"(?:%z )?(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?",
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
            body, line_begin = body[len(_LN_BEG):], True
        upper = body.upper()
        if upper in ("EPOCH", "LEPOCH", "^EPOCH", "^LEPOCH"):
            self.kind = "epoch"
            num = _LONG_EPOCH if "LEPOCH" in upper else _EPOCH
            if line_begin or upper.startswith("^"):
                regex = rf"^(?P<_sq>\[)?(?P<_date>{num})(?(_sq)(?=\]))(?=\b|\W|$)"
            else:
                regex = (rf"(?:^|(?<=^\[)|(?<=\baudit\())(?P<_date>{num})")
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
        self.anchored = regex.startswith("^")

    @staticmethod
    def _compile_body(body: str, line_begin: bool, unbounded: bool) -> str:
        word_begin = not unbounded and not _NO_WORD_BEGIN.search(body)
        word_end = not unbounded and not _NO_WORD_END.search(body)
        body = body.replace("**", "")
        lead = ""
        m = re.match(r"^(\(\?\w+\))?\^", body)
        if m:
            lead, body = body[: m.end()], body[m.end():]
        converted = _DIRECTIVE_RE.sub(lambda d: _DIRECTIVES[d.group(1)], body)
        # An explicit capture group marks the date inside a larger pattern (`^[^\[]*\[({DATE})`);
        # otherwise the whole pattern is the date.
        if _PLAIN_GROUP.search(converted):
            regex = _PLAIN_GROUP.sub("(?P<_date>", converted, count=1)
        else:
            regex = f"(?P<_date>{converted})"
        if line_begin:
            regex = r"^(?:\W{0,2})?" + regex
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
        return _fields_to_time(m.groupdict(), now, tz)


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


def _fields_to_time(g: dict[str, str | None], now: float, tz: tzinfo | None) -> float | None:
    now_dt = datetime.fromtimestamp(now, tz)
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
        year = now_dt.year
    assume_today = month is None and day is None
    if g.get("j") and month is None:
        base = datetime(year, 1, 1) + timedelta(days=int(g["j"]) - 1)
        month, day, assume_today = base.month, base.day, False
    if assume_today:
        month, day = now_dt.month, now_dt.day
    try:
        when = datetime(year, month or 1, day or 1, hour, minute, second, tzinfo=zone)
    except ValueError:
        return None
    stamp = when.timestamp()
    if assume_today and stamp > now:
        stamp = (when - timedelta(days=1)).timestamp()
    if assume_year and stamp > now + 86400:
        try:
            stamp = when.replace(year=year - 1).timestamp()
        except ValueError:  # 29 February of a leap year
            return None
    return stamp


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
            line_start = [DateTemplate(p, line_begin=True) for p in DEFAULT_PATTERNS
                          if not p.startswith(("^", "{"))]
            templates = line_start + [DateTemplate(p) for p in DEFAULT_PATTERNS]
        self.templates = templates
        self._last: DateTemplate | None = None

    def find(self, line: str, now: float, tz: tzinfo | None = None) -> DateMatch | None:
        """Locate and parse the line's date, or None when no template matches."""
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

    @staticmethod
    def _result(template: DateTemplate, m: re.Match[str], now: float, tz: tzinfo | None) -> DateMatch | None:
        if m.start("_date") == m.end("_date"):
            return DateMatch(m.start("_date"), m.end("_date"), None)
        stamp = template.parse(m, now, tz)
        if stamp is None:
            return None
        return DateMatch(m.start("_date"), m.end("_date"), stamp)
