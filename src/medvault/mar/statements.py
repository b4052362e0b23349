"""Witness statements side by side: fact by fact, word-level differences between each pair, and the marks.

A statement read from a record carries that record's text, taken when the statement was written: a text
file's, or a PDF's pages, all of them or the ones chosen (a police report holds several witnesses;
mar/recordtext.py). A scan without a text layer has none and cannot be compared. The facts each names (time,
place, speed, vehicle, who, the traffic light: mar/statementfacts.py) are laid out side by side first. Witnesses
and the people named are who the chart's identities say (mar/professionals.py: automatic grouping and saved
merges), so "Ofc. J. Ruiz" and "Officer Jane Ruiz", merged, are one person: `witnesses` gives each statement's
witness under that person's name.

Words are whitespace-separated tokens compared exactly (`difflib.SequenceMatcher`, no junk heuristic), so a
changed time ("9pm" / "11pm") or place shows as a `replace` segment. Agreements and contradictions are
`mark` entries naming two or more statements.
"""

from __future__ import annotations

import difflib
import functools
import itertools
import re

from medvault.mar import identity, professionals
from medvault.mar.chart import Chart, Desk
from medvault.mar.entries import ChartError, canonical_id
from medvault.mar.statementfacts import names, side_by_side

MAX_STATEMENTS = 5
MAX_WORDS = 20_000
_WORD = re.compile(r"\S+")


def diff(a: str, b: str) -> tuple[list[dict], float]:
    """Segments `{"op", "a", "b"}` turning `a` into `b` word by word, and their similarity (0 to 1)."""
    wa, wb = _WORD.findall(a)[:MAX_WORDS], _WORD.findall(b)[:MAX_WORDS]
    matcher = difflib.SequenceMatcher(None, wa, wb, autojunk=False)
    segments = [
        {"op": op, "a": " ".join(wa[i1:i2]), "b": " ".join(wb[j1:j2])} for op, i1, i2, j1, j2 in matcher.get_opcodes()
    ]
    return segments, round(matcher.ratio(), 4)


def compare(chart: Chart, desk: Desk, ids: object) -> dict:
    if not isinstance(ids, list) or not 2 <= len(ids) <= MAX_STATEMENTS:
        raise ChartError(f"'statements' must be a list of 2 to {MAX_STATEMENTS} statement ids")
    wanted = list(dict.fromkeys(canonical_id(i, "'statements' item") for i in ids))
    if len(wanted) < 2:
        raise ChartError("compare at least two different statements")
    every = [e for e in chart.entries(desk) if "data" in e]
    found = {e["id"]: e for e in every if e["kind"] == "statement" and e["id"] in wanted}
    missing = [i for i in wanted if i not in found]
    if missing:
        raise ChartError(f"Statement(s) not found in this chart: {', '.join(missing)}", 404)
    textless = [i for i in wanted if "text" not in found[i]["data"]]
    if textless:
        raise ChartError(
            f"Statement(s) without text to compare (a record with no readable text): {', '.join(textless)}"
        )
    pairs = []
    for a, b in itertools.combinations(wanted, 2):
        segments, similarity = diff(found[a]["data"]["text"], found[b]["data"]["text"])
        pairs.append({"a": a, "b": b, "similarity": similarity, "segments": segments})
    marks = [m for m in every if m["kind"] == "mark" and len(set(m["data"]["statements"]) & set(wanted)) >= 2]
    texts = {i: found[i]["data"]["text"] for i in wanted}
    witnesses = {i: found[i]["data"]["witness"] for i in wanted}
    named = [*witnesses.values(), *(n for text in texts.values() for n in names(text))]
    who = functools.partial(identity.identify, professionals.of_chart(every, chart.records(desk), named))
    return {
        "statements": [found[i] for i in wanted],
        "witnesses": {i: who(w) for i, w in witnesses.items()},
        "facts": side_by_side(texts, who, witnesses),
        "pairs": pairs,
        "marks": marks,
    }


def checklist(chart: Chart, desk: Desk) -> dict:
    """Standards of care per record or occurrence, with counts of met / not met / unclear."""
    items = [e for e in chart.entries(desk, kinds=("standard",)) if "data" in e]
    groups: dict[tuple[str, str], list[dict]] = {}
    for item in items:
        data = item["data"]
        target = ("record", data["record"]) if "record" in data else ("occurrence", data["occurrence"])
        groups.setdefault(target, []).append(item)
    totals = {
        status: sum(1 for i in items if i["data"]["status"] == status) for status in ("met", "not-met", "unclear")
    }
    return {
        "patient": desk.patient,
        "totals": totals,
        "targets": [
            {
                "target": kind,
                "id": tid,
                "items": [
                    {
                        "entry_id": i["id"],
                        "source": i["data"]["standard"]["source"],
                        "clause": i["data"]["standard"].get("clause"),
                        "text": i["data"]["standard"].get("text"),
                        "status": i["data"]["status"],
                        "note": i["data"].get("note"),
                        "author": i["author"],
                        "signature_valid": i["signature_valid"],
                        "verified": i["verified"],
                    }
                    for i in entries
                ],
            }
            for (kind, tid), entries in groups.items()
        ],
    }
