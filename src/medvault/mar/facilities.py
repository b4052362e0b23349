"""The facilities of a chart: every hospital, clinic or practice its records, occurrences and proposals name,
with suggestions of names that are probably the same place.

Names are compared as words (`words`): accents, case and punctuation removed, "&" read as "and", common
abbreviations written out ("St."/"Saint", "Hosp."/"Hospital", "Med. Ctr."/"Medical Center"), a leading "The"
and legal suffixes (Inc., LLC) dropped, and a last comma part read as the place ("…, Springfield"). Grouped
without asking: names that are then the same words, and a name without a place that only one place fits
("St. Mary's Hosp." beside "Saint Marys Hospital, Springfield" when no other St. Mary's Hospital is named).
Suggested, for the user to decide: a name that several places fit, and names whose distinctive words agree
once the words saying what kind of place it is are left out ("Saint Mary's Hospital", "St. Mary's Medical
Center"): both are often two sites of one group, so the user decides. A `merge` entry with `of: facility`
records the decision (mar/identity.py, the mechanism professionals use), which overrides the automatic
grouping, and a decided pair is not suggested again.

`of_chart` is what every view asks: the chronology's facility filter, the search's facility filter and groups
(each record under its own chart: `for_search`) and the FHIR export (one Organization per facility).
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Callable, Iterable

from medvault.auth.sessions import Session
from medvault.mar import identity
from medvault.mar.chart import Chart, ChartRecord, Desk

ABBREVIATIONS = {
    "st": "saint",
    "ste": "sainte",
    "mt": "mount",
    "ft": "fort",
    "hosp": "hospital",
    "hosps": "hospitals",
    "med": "medical",
    "ctr": "center",
    "cntr": "center",
    "centre": "center",
    "clin": "clinic",
    "gen": "general",
    "mem": "memorial",
    "reg": "regional",
    "univ": "university",
    "natl": "national",
    "inst": "institute",
    "assoc": "associates",
    "dept": "department",
    "hlth": "health",
    "svcs": "services",
    "sys": "system",
    "rehab": "rehabilitation",
    "ortho": "orthopedics",
    "orthopaedics": "orthopedics",
}
LEGAL = {"inc", "llc", "ltd", "pc", "pllc", "corp", "plc"}
GENERIC = {"hospital", "hospitals", "medical", "center", "clinic", "health", "healthcare", "system", "care"}
GENERIC |= {"services", "group", "associates", "practice", "office", "and", "of", "the", "at"}
_PLACE_WORDS = 3  # a last comma part of more words is part of the name, not a place


def _plain(text: str) -> str:
    text = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()


def _tokens(part: str) -> list[str]:
    part = re.sub(r"['\u2019]", "", part.replace("&", " and "))  # Mary's is marys
    words = [ABBREVIATIONS.get(w, w) for w in re.split(r"[^\w]+", part) if w and w not in LEGAL]
    return words[1:] if words[:1] == ["the"] and len(words) > 1 else words


def words(name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(the name's words, the place's words) as they are compared; the place is empty when none is given."""
    parts = [p for p in (_tokens(p) for p in _plain(name).split(",")) if p]
    if len(parts) >= 2 and len(parts[-1]) <= _PLACE_WORDS:
        return tuple(w for p in parts[:-1] for w in p), tuple(parts[-1])
    return tuple(w for p in parts for w in p), ()


def _distinctive(name_words: tuple[str, ...]) -> frozenset[str]:
    return frozenset(name_words) - GENERIC


def _automatic(names: dict[str, str], decided: set[frozenset]) -> list[tuple[str, str]]:
    """Pairs (of keys of `names`) that are one facility without asking, unless the user decided on the pair."""
    by_words: dict[tuple, list[str]] = {}
    for key, name in names.items():
        base, place = words(name)
        if base:
            by_words.setdefault((base, place), []).append(key)
    pairs = [(keys[0], other) for keys in by_words.values() for other in keys[1:]]
    for (base, place), keys in by_words.items():
        places = [k for k in by_words if k[0] == base and k[1]]
        if not place and len(places) == 1:  # the only place this name is spelled with
            pairs.append((keys[0], by_words[places[0]][0]))
    return [pair for pair in pairs if frozenset(pair) not in decided]


def identities(names: Iterable[str], entries: list[dict]) -> dict[str, str]:
    """Each facility name (spacing and case folded) → the name of the facility it is, after automatic grouping
    and the facilities' `merge` entries among `entries`; a name in no group maps to itself."""
    return identity.identities(names, identity.merges_of(entries, "facility"), _automatic)


def _named(entries: Iterable[dict], records: Iterable[ChartRecord]) -> list[str]:
    named = [e["data"].get("facility") for e in entries if e["kind"] == "occurrence"]
    named += [e["data"]["fields"].get("facility") for e in entries if e["kind"] == "proposal"]
    named += [r.metadata.get("facility") for r in records]
    return [n for n in named if n]


def of_chart(entries: list[dict], records: Iterable[ChartRecord] = (), names: Iterable[str] = ()) -> dict[str, str]:
    """`identities` in one chart: the facilities its `records`, occurrences and proposals name, and `names` (a
    filter's), under the chart's merge entries."""
    return identities([*_named(entries, records), *names], entries)


def for_search(chart: Chart, session: Session) -> Callable[[str, list[str]], Callable[[str], str]]:
    """`places(patient_id, names)` for a search: which facility each of `names` is in that patient's chart."""
    return identity.for_search(of_chart, chart, session)


def directory(chart: Chart, desk: Desk) -> dict:
    """The chart's facilities (each with its other spellings and the records naming it) and the suggestions."""
    entries = [e for e in chart.entries(desk, kinds=identity.KINDS) if "data" in e]
    records = chart.records(desk)
    spelled = {identity.clean(n).casefold(): identity.clean(n) for n in _named(entries, records)}
    mapping = of_chart(entries, records)
    listing: dict[str, dict] = {}
    for key, name in spelled.items():
        place = listing.setdefault(mapping[key], {"name": mapping[key], "aliases": [], "records": []})
        if name != mapping[key]:
            place["aliases"].append(name)
    for record in records:
        if record.metadata.get("facility"):
            listing[identity.identify(mapping, record.metadata["facility"])]["records"].append(record.id)
    decided, _, _ = identity.decisions(identity.merges_of(entries, "facility"))
    return {
        "patient": desk.patient,
        "facilities": sorted(listing.values(), key=lambda p: p["name"].casefold()),
        "suggestions": suggestions(mapping, spelled, decided),
    }


def suggestions(mapping: dict[str, str], spelled: dict[str, str], decided: set[frozenset]) -> list[dict]:
    """Pairs of facilities (one spelling each) that are probably one, the pairs the user decided left out."""
    groups: dict[str, list[str]] = {}
    for key in sorted(spelled):
        groups.setdefault(mapping[key], []).append(key)
    found = []
    for (a, ka), (b, kb) in itertools.combinations(sorted(groups.items()), 2):
        if any(frozenset((x, y)) in decided for x in ka for y in kb):
            continue
        reason = _alike([words(spelled[k]) for k in ka], [words(spelled[k]) for k in kb])
        if reason:
            found.append({"names": [a, b], "reason": reason})
    return found


def _alike(a: list[tuple], b: list[tuple]) -> str | None:
    for (base_a, place_a), (base_b, place_b) in itertools.product(a, b):
        if base_a == base_b and not (place_a and place_b):
            return "same name, one of several places"
        one_place = place_a == place_b or not (place_a and place_b)
        if one_place and _distinctive(base_a) and _distinctive(base_a) == _distinctive(base_b):
            return "same name, another kind of place"
    return None
