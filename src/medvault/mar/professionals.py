"""The professionals of a chart: everyone named as a provider in its records or occurrences, plus the
registered specialists it is shared with, and suggestions of names that are probably the same person.

Names are compared after removing accents, case, titles (Dr., Prof.) and suffixes (MD, RN, PhD), and reading
"Smith, John" as "John Smith". Grouped without asking: names that are then the same words ("Robert Chen MD",
"Robert Chen, MD", "Dr Robert Chen"), and an initial only one full name of the chart fits ("Dr. R. Chen" when
Robert is the only Chen with an R). Suggested, for the user to decide: other names whose surnames match and
whose given names agree as far as both are known ("R. Chen" when there are a Robert and a Rachel Chen). A
`merge` entry records the user's decision (same / different; without `of`, or `of: professional`), which
overrides the automatic grouping, and a decided pair is not suggested again: mar/identity.py applies them, as
it does facilities' (mar/facilities.py).

The groups are applied wherever names are compared or shown, all through `of_chart` (a chart's names and its
merges): the chronology's provider filter and its listed providers, the FHIR export (one Practitioner per
person), the search's provider filter and groups (each record under its own chart's merges: `for_search`), and
the witnesses and people compared side by side in statements.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Callable, Iterable

from medvault.auth.sessions import Session
from medvault.mar import facilities, identity
from medvault.mar.chart import Chart, ChartRecord, Desk
from medvault.mar.identity import clean

TITLES = {"dr", "doctor", "prof", "professor", "mr", "mrs", "ms", "miss", "mx", "sir", "dame"}
TITLES |= {"officer", "ofc", "sgt", "sergeant", "det", "detective", "constable", "deputy", "trooper", "nurse"}
PROFESSIONS = {
    "md": "physician",
    "do": "physician",
    "mbbs": "physician",
    "mbchb": "physician",
    "frcs": "surgeon",
    "facs": "surgeon",
    "frcp": "physician",
    "rn": "nurse",
    "lpn": "nurse",
    "np": "nurse practitioner",
    "bsn": "nurse",
    "msn": "nurse",
    "crna": "nurse anaesthetist",
    "cnm": "midwife",
    "pa": "physician assistant",
    "pac": "physician assistant",
    "aprn": "nurse practitioner",
    "cnp": "nurse practitioner",
    "dnp": "nurse practitioner",
    "pta": "physiotherapy assistant",
    "lcsw": "social worker",
    "msw": "social worker",
    "dds": "dentist",
    "dmd": "dentist",
    "pt": "physiotherapist",
    "dpt": "physiotherapist",
    "ot": "occupational therapist",
    "otr": "occupational therapist",
    "pharmd": "pharmacist",
    "dc": "chiropractor",
    "od": "optometrist",
    "psyd": "psychologist",
    "phd": None,
    "mph": None,
    "jr": None,
    "sr": None,
    "ii": None,
    "iii": None,
    "iv": None,
    "esq": None,
}


def _plain(text: str) -> str:
    text = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()


def _words(part: str) -> list[str]:
    return [w for w in (t.replace(".", "").replace("'", "") for t in re.split(r"[\s]+", part)) if w]


def _credential(word: str) -> bool:
    return word.replace("-", "") in PROFESSIONS  # PA-C, PA-C.


def parse(name: str) -> tuple[list[str], str | None]:
    """(name words without titles and suffixes, in given-names-first order; the profession a suffix tells)."""
    parts = [_words(p) for p in _plain(name).split(",")]
    profession = None
    kept: list[list[str]] = []
    for part in parts:
        words = []
        for w in part:
            if _credential(w):
                profession = profession or PROFESSIONS[w.replace("-", "")]
            else:
                words.append(w)
        kept.append(words)
    head, rest = kept[0], [w for part in kept[1:] for w in part]
    words = [*rest, *head] if rest and head else head or rest  # "Smith, John" is John Smith
    while words and words[0] in TITLES:
        words = words[1:]
    return words, profession


def same_person(a: str, b: str) -> bool:
    wa, _ = parse(a)
    wb, _ = parse(b)
    if not wa or not wb or wa[-1] != wb[-1]:
        return False
    ga, gb = wa[:-1], wb[:-1]
    if not ga or not gb:
        return True
    first_a, first_b = ga[0], gb[0]
    if len(first_a) > 1 and len(first_b) > 1:
        return first_a == first_b
    return first_a[0] == first_b[0]


def directory(chart: Chart, desk: Desk) -> dict:
    people: dict[str, dict] = {}

    def person(name: str) -> dict:
        key = clean(name).casefold()
        if key not in people:
            people[key] = {
                "name": clean(name),
                "profession": parse(name)[1],
                "registered": False,
                "facilities": set(),
                "records": [],
                "entries": [],
            }
        return people[key]

    records = chart.records(desk)
    for record in records:
        meta = record.metadata
        for name in meta.get("provider") or []:
            if name.strip():
                p = person(name)
                p["records"].append(record.id)
                if meta.get("facility"):
                    p["facilities"].add(meta["facility"])
    entries = [e for e in chart.entries(desk) if "data" in e]
    for entry in entries:
        if entry["kind"] != "occurrence":
            continue
        for name in entry["data"].get("providers", []):
            p = person(name)
            p["entries"].append(entry["id"])
            if entry["data"].get("facility"):
                p["facilities"].add(entry["data"]["facility"])
    for specialist in chart.specialists(desk):
        p = person(specialist["name"])
        p["registered"] = True
        p["profession"] = specialist["profession"] or p["profession"]
        p["entries"] += [e["id"] for e in entries if e["author"] == specialist["name"]]

    places = facilities.of_chart(entries, records)  # each facility named once, as the chart's identities say
    decided, same, canonical = identity.decisions(identity.merges_of(entries, "professional"))
    groups = identity.union(list(people), same + _automatic({k: p["name"] for k, p in people.items()}, decided))
    listing = []
    for members in groups:
        members.sort(key=lambda m: (m not in canonical, m))  # the name the user chose comes first
        main = people[members[0]]
        merged = {
            "name": main["name"],
            "aliases": [people[m]["name"] for m in members[1:]],
            "profession": next((people[m]["profession"] for m in members if people[m]["profession"]), None),
            "registered": any(people[m]["registered"] for m in members),
            "facilities": sorted({identity.identify(places, f) for m in members for f in people[m]["facilities"]}),
            "records": sorted({r for m in members for r in people[m]["records"]}),
            "entries": sorted({e for m in members for e in people[m]["entries"]}),
        }
        listing.append(merged)
    listing.sort(key=lambda p: (parse(p["name"])[0][-1:] or [""], p["name"].casefold()))
    suggestions = []
    group_of = {m: i for i, members in enumerate(groups) for m in members}
    for a, b in itertools.combinations(sorted(people), 2):
        if group_of[a] == group_of[b] or frozenset((a, b)) in decided:
            continue
        together = groups[group_of[a]] + groups[group_of[b]]  # a group's every name must fit the other's
        if all(same_person(people[x]["name"], people[y]["name"]) for x, y in itertools.combinations(together, 2)):
            suggestions.append({"names": [people[a]["name"], people[b]["name"]], "reason": "same surname and initials"})
    return {"patient": desk.patient, "professionals": listing, "suggestions": suggestions}


def _automatic(names: dict[str, str], decided: set[frozenset]) -> list[tuple[str, str]]:
    """Pairs (of keys of `names`) that are one person without asking, unless the user decided on the pair."""
    by_words: dict[tuple[str, ...], list[str]] = {}
    for key, name in names.items():
        words = tuple(parse(name)[0])
        if words:
            by_words.setdefault(words, []).append(key)
    pairs = [(keys[0], other) for keys in by_words.values() for other in keys[1:]]
    full = [w for w in by_words if len(w) >= 2 and len(w[0]) > 1]
    for words, keys in by_words.items():
        if len(words) >= 2 and len(words[0]) == 1:
            fits = [f for f in full if f[-1] == words[-1] and f[0][0] == words[0]]
            if len(fits) == 1:
                pairs.append((keys[0], by_words[fits[0]][0]))
    return [pair for pair in pairs if frozenset(pair) not in decided]


def identities(names: list[str], entries: list[dict]) -> dict[str, str]:
    """Each name (spacing and case folded) → the name of the person it is, after automatic grouping and the
    professionals' `merge` entries among `entries`; a name in no group maps to itself."""
    return identity.identities(names, identity.merges_of(entries, "professional"), _automatic)


def of_chart(entries: list[dict], records: Iterable[ChartRecord] = (), names: Iterable[str] = ()) -> dict[str, str]:
    """`identities` in one chart: the providers its `records`, occurrences and proposals name, and `names` (a
    filter's, a witness's), under the chart's merge entries. Every view of a chart asks this, so a name is the
    same person wherever it appears."""
    named = [n for e in entries if e["kind"] == "occurrence" for n in e["data"].get("providers", [])]
    named += [n for e in entries if e["kind"] == "proposal" for n in e["data"]["fields"].get("providers", [])]
    named += [n for r in records for n in r.metadata.get("provider") or []]
    return identities([*named, *names], entries)


def for_search(chart: Chart, session: Session) -> Callable[[str, list[str]], Callable[[str], str]]:
    """`people(patient_id, names)` for a search: who each of `names` is (the providers of that patient's records
    in the reader's index, and the filter's) in that patient's chart (identity.for_search)."""
    return identity.for_search(of_chart, chart, session)
