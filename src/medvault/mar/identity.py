"""Who is who among the names a chart spells differently: the machinery professionals and facilities share.

A `merge` entry records the user's decision on names (same / different) and, with `of`, what they name
(`professional`, the default of entries written before facilities had identities, or `facility`). Each kind
brings its own automatic grouping (mar/professionals.py, mar/facilities.py); `identities` applies it under
the user's decisions, which override it, and `for_search` asks each patient's chart for a search that spans
several. Names are compared with spacing and case folded.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable

from medvault.auth.sessions import Session
from medvault.mar.chart import Chart
from medvault.mar.entries import ChartError

KINDS = ("occurrence", "proposal", "merge")  # the entries that name professionals and facilities, or merge them
Automatic = Callable[[dict[str, str], set[frozenset]], list[tuple[str, str]]]
OfChart = Callable[..., dict[str, str]]  # of_chart(entries, records=(), names=()) of professionals or facilities


def clean(name: str) -> str:
    return " ".join(name.split())


def merges_of(entries: Iterable[dict], of: str) -> list[dict]:
    """The `merge` entries among `entries` that decide on names of that kind."""
    return [e for e in entries if e["kind"] == "merge" and e["data"].get("of", "professional") == of]


def identities(names: Iterable[str], merges: list[dict], automatic: Automatic) -> dict[str, str]:
    """Each name (spacing and case folded) → the name of the one it is, after `automatic` grouping and the
    decisions of `merges` (of one kind); a name in no group maps to itself."""
    known: dict[str, str] = {}
    for name in names:  # the first spelling given names the key: a chart's own before a filter's folded one
        if name and name.strip():
            known.setdefault(clean(name).casefold(), clean(name))
    decided, same, canonical = decisions(merges)
    mapping = {}
    for members in union(list(known), same + automatic(known, decided)):
        members.sort(key=lambda m: (m not in canonical, m))  # the name the user chose comes first
        mapping.update({m: known[members[0]] for m in members})
    return mapping


def as_written(written: str | list[str] | None, names: str | list[str] | None) -> str:
    """A facility (text) or providers (a list) as printed: each identity's name in `names`, with the spelling of
    the record or entry in brackets where it is another ("Robert Chen MD (as written: Dr. R. Chen)"); without
    `names` (not asked), the spellings alone."""
    if not written:
        return ""
    spellings = [written] if isinstance(written, str) else list(written)
    if not names:
        return "; ".join(spellings)
    names = [names] if isinstance(names, str) else list(names)
    return "; ".join(
        name if clean(name).casefold() == clean(spelling).casefold() else f"{name} (as written: {spelling})"
        for spelling, name in zip(spellings, names, strict=True)
    )


def identify(mapping: dict[str, str], name: str) -> str:
    """The identity's name for `name` under `identities` (itself when unknown)."""
    return mapping.get(clean(name).casefold(), clean(name))


def for_search(of_chart: OfChart, chart: Chart, session: Session) -> Callable[[str, list[str]], Callable[[str], str]]:
    """`who(patient_id, names)` for a search: who each of `names` is in that patient's chart, by `of_chart`. A
    chart the reader cannot open (not opened by the patient yet) has no merges to read: its names keep only
    the automatic grouping."""

    def who(patient_id: str, names: list[str]) -> Callable[[str], str]:
        try:
            desk = chart.desk_for_patient_id(session, patient_id)
        except ChartError:
            entries = []
        else:
            entries = [e for e in chart.entries(desk, kinds=KINDS) if "data" in e]
        return functools.partial(identify, of_chart(entries, names=names))

    return who


def decisions(merges: list[dict]) -> tuple[set[frozenset], list[tuple[str, str]], set[str]]:
    """Pairs the user decided on (either way), the pairs decided to be one (latest decision wins), and the
    names chosen as canonical."""
    latest: dict[frozenset, str] = {}
    canonical: set[str] = set()
    for entry in merges:
        if entry["signature_valid"]:
            names = [clean(n).casefold() for n in entry["data"]["names"]]
            for a, b in itertools.combinations(names, 2):
                latest[frozenset((a, b))] = entry["data"]["decision"]
            if entry["data"]["decision"] == "same" and entry["data"].get("canonical"):
                canonical.add(clean(entry["data"]["canonical"]).casefold())
    same = [tuple(sorted(pair)) for pair, decision in latest.items() if decision == "same" and len(pair) == 2]
    return set(latest), same, canonical


def union(keys: list[str], pairs: list[tuple[str, str]]) -> list[list[str]]:
    parent = {k: k for k in keys}

    def find(k: str) -> str:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for a, b in pairs:
        if a in parent and b in parent:
            parent[find(a)] = find(b)
    groups: dict[str, list[str]] = {}
    for k in keys:
        groups.setdefault(find(k), []).append(k)
    return list(groups.values())
