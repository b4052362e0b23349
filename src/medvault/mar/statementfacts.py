"""The facts witness statements are compared by: time, place, speed, vehicle, who, the traffic light.

A word diff shows that two statements differ, not on what; a reader comparing witnesses asks "what time did
each say, where, how fast, who was there". Each statement's text is read with a few patterns for the things
witness statements of accidents and falls name, and each fact is laid out side by side, one column per
statement, marked as agreeing (every statement that names it says the same), differing, or named by one
only. Values are normalised where the same thing is written several ways ("9pm", "9:00 p.m.", "21:00" are all
21:00; "30 mph" and "48 km/h" are kept as said, with their unit). People named with a title ("Officer Jane
Ruiz", "Ofc. J. Ruiz") are "who" as the chart's identities say (`who`, from mar/professionals.py), so two
spellings of one person agree; the statement's own witness is left out, and so is a role word that is part of
a name. The patterns find candidates; the reader decides, and marks agreements and contradictions as entries
(mar/statements.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable

_TIME = re.compile(
    r"\b(?P<h>[01]?\d|2[0-3])(?:[:.](?P<m>[0-5]\d))?\s*(?P<ampm>[ap])\.?\s?m\b\.?|\b(?P<H>[01]?\d|2[0-3]):(?P<M>[0-5]\d)\b",
    re.IGNORECASE,
)
_SPEED = re.compile(r"\b(?P<n>\d{1,3})\s*(?P<unit>mph|miles per hour|km/h|kph|kmh|kilometres per hour)\b", re.I)
_STREET = r"(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Boulevard|Blvd|Drive|Dr|Way|Place|Square|Highway|Bridge|Park)"
_PLACE = re.compile(rf"\b(?:[A-Z][\w'-]*\s+){{1,3}}{_STREET}\b\.?")
_COLOURS = "red|blue|green|black|white|silver|grey|gray|yellow|orange|brown|dark|light"
_VEHICLES = "car|van|truck|lorry|bus|taxi|motorbike|motorcycle|bike|bicycle|scooter|suv|pickup|jeep|sedan"
_VEHICLE = re.compile(rf"\b(?:(?:{_COLOURS})\s+)+(?:{_VEHICLES})\b", re.I)
_PERSON = re.compile(
    r"\b(?:the\s+)?(driver|cyclist|pedestrian|passenger|officer|nurse|doctor|paramedic|security guard|"
    r"bystander|child|woman|man|boy|girl)s?\b",
    re.I,
)
_TITLE = r"(?:Officer|Ofc|Sergeant|Sgt|Detective|Det|Constable|Doctor|Dr|Nurse|Paramedic|Mrs|Mr|Ms|Mx)\b\.?"
_NAMED = re.compile(rf"\b{_TITLE}\s+(?:[A-Z]\.\s?|[A-Z][a-z'-]+\s+){{0,2}}[A-Z][a-z'-]+")
_LIGHT = re.compile(
    r"\b(red|amber|yellow|green)\s+(?:traffic\s+)?light\b|\blights?\b[^.]{0,20}?\b(?:was|were|turned)\s+"
    r"(red|amber|yellow|green)\b",
    re.I,
)


def _time(match: re.Match) -> str:
    if match["H"] is not None:
        return f"{int(match['H']):02d}:{match['M']}"
    hour = int(match["h"]) % 12 + (12 if match["ampm"].lower() == "p" else 0)
    return f"{hour:02d}:{match['m'] or '00'}"


def _speed(match: re.Match) -> str:
    unit = match["unit"].lower()
    return f"{int(match['n'])} " + ("mph" if unit.startswith("m") else "km/h")


def _words(match: re.Match) -> str:
    return " ".join(match.group().rstrip(".").lower().split())


def _light(match: re.Match) -> str:
    colour = (match[1] or match[2]).lower()
    return "amber" if colour == "yellow" else colour


FACTS: tuple[tuple[str, re.Pattern, Callable[[re.Match], str]], ...] = (
    ("time", _TIME, _time),
    ("place", _PLACE, _words),
    ("speed", _SPEED, _speed),
    ("vehicle", _VEHICLE, _words),
    ("traffic light", _LIGHT, _light),
)
ORDER = ("time", "place", "speed", "vehicle", "who", "traffic light")


def _as_written(name: str) -> str:
    return " ".join(name.split())


def names(text: str) -> list[str]:
    """The people a statement names with a title, as written."""
    return [_as_written(m.group()) for m in _NAMED.finditer(text)]


def _people(text: str, who: Callable[[str], str], witness: str | None) -> list[str]:
    named = [(m.start(), m.end(), who(_as_written(m.group()))) for m in _NAMED.finditer(text)]
    author = who(witness) if witness else None
    found = [(start, person) for start, _, person in named if person != author]
    found += [
        (m.start(), m[1].lower())
        for m in _PERSON.finditer(text)
        if not any(start <= m.start() < end for start, end, _ in named)
    ]
    return [person for _, person in sorted(found)]


def facts(text: str, who: Callable[[str], str] = _as_written, witness: str | None = None) -> dict[str, list[str]]:
    """Each fact's values in the order the statement first names them, once each; `who` says who a named person
    is, and `witness` is who gave the statement."""
    found = {name: [read(m) for m in pattern.finditer(text)] for name, pattern, read in FACTS}
    found["who"] = _people(text, who, witness)
    return {name: list(dict.fromkeys(found[name])) for name in ORDER}


def side_by_side(
    texts: dict[str, str], who: Callable[[str], str] = _as_written, witnesses: dict[str, str] | None = None
) -> list[dict]:
    """`[{"fact", "values": {statement id: [values]}, "status"}]` for each fact some statement names; status is
    `agree` (all that name it say the same and at least two do), `differ`, or `one` (only one names it)."""
    found = {sid: facts(text, who, (witnesses or {}).get(sid)) for sid, text in texts.items()}
    rows = []
    for name in ORDER:
        values = {sid: f[name] for sid, f in found.items()}
        naming = [set(v) for v in values.values() if v]
        if not naming:
            continue
        status = "one" if len(naming) == 1 else "agree" if all(v == naming[0] for v in naming) else "differ"
        rows.append({"fact": name, "values": values, "status": status})
    return rows
