"""The patient's own view of what a chart holds, as a patient portal shows it: problems, medications,
allergies, immunisations, and lab results over time, one chart per test.

Built from the chart's occurrences, accepted entries and imported FHIR alike (no other source: what the
patient sees is what the chart says). A test is known by its name (the imported code's text, else the
description before ": "), so a result typed in joins the imported ones of the same name; its LOINC code is
shown when an import brought one. The value is the imported `valueQuantity`, else the first number of the
description after the name ("Haemoglobin: 13.2 g/dL"). Reference ranges and flags come only
from imported resources: MedVault does not guess what is normal for a patient.
"""

from __future__ import annotations

import re

SECTIONS = {
    "problems": ("diagnosis", "injury"),
    "medications": ("medication",),
    "allergies": ("allergy",),
    "immunisations": ("immunisation",),
}
_SYSTEMS = {
    "http://snomed.info/sct": "SNOMED CT",
    "http://hl7.org/fhir/sid/icd-10": "ICD-10",
    "http://hl7.org/fhir/sid/icd-10-cm": "ICD-10-CM",
    "http://loinc.org": "LOINC",
    "http://www.nlm.nih.gov/research/umls/rxnorm": "RxNorm",
    "http://hl7.org/fhir/sid/cvx": "CVX",
}
_NUMBER = re.compile(r"(?<![\w.])([-+]?\d+(?:\.\d+)?)\s*([^\s\d;,()][^;,()]{0,19})?")
WIDTH, HEIGHT, PAD = 360, 140, 28


def _codes(coded: dict) -> list[str]:
    """Named codes ("SNOMED CT 81680005") of the resource's main concept."""
    concept = next((coded[k] for k in ("code", "medicationCodeableConcept", "vaccineCode") if k in coded), {})
    return [
        f"{_SYSTEMS[c['system']]} {c['code']}"
        for c in (concept.get("coding") or [])
        if c.get("system") in _SYSTEMS and c.get("code")
    ]


def _status(coded: dict) -> str | None:
    clinical = (coded.get("clinicalStatus") or {}).get("coding") or [{}]
    return clinical[0].get("code") or coded.get("status")


def _detail(coded: dict) -> str | None:
    """What a patient reads beside the name: dosage, the reaction and how serious, a vaccine's lot."""
    parts = [d.get("text") for d in (coded.get("dosage") or coded.get("dosageInstruction") or []) if d.get("text")]
    for reaction in coded.get("reaction") or []:
        found = [
            c.get("display") or c.get("text")
            for m in reaction.get("manifestation") or []
            for c in [m, *(m.get("coding") or [])]
        ]
        parts += [f"reaction: {', '.join(f for f in found if f)}"] if any(found) else []
        parts += [f"({reaction['severity']})"] if reaction.get("severity") else []
    if coded.get("criticality"):
        parts.append(f"criticality {coded['criticality']}")
    if coded.get("lotNumber"):
        parts.append(f"lot {coded['lotNumber']}")
    return "; ".join(parts) or None


def _item(entry: dict) -> dict:
    data = entry["data"]
    coded = data.get("coded") or {}
    return {
        "id": entry["id"],
        "date": data.get("date"),
        "description": data.get("description") or data["type"],
        "type": data["type"],
        "status": _status(coded),
        "codes": _codes(coded),
        "detail": _detail(coded),
        "providers": data.get("providers") or [],
        "facility": data.get("facility"),
    }


def _measurement(data: dict) -> tuple[str, float, str | None, str | None] | None:
    """(test name, value, unit, LOINC code) of a test result, or None when it has no number."""
    coded = data.get("coded") or {}
    description = data.get("description") or ""
    name, _, rest = description.partition(": ")
    loinc = next(
        (
            c["code"]
            for c in (coded.get("code") or {}).get("coding") or []
            if c.get("system") == "http://loinc.org" and c.get("code")
        ),
        None,
    )
    name = (coded.get("code") or {}).get("text") or name or description
    quantity = coded.get("valueQuantity") or {}
    if isinstance(quantity.get("value"), int | float):
        value, unit = float(quantity["value"]), quantity.get("unit") or quantity.get("code")
    elif match := _NUMBER.search(rest or ""):
        value, unit = float(match.group(1)), (match.group(2) or "").strip() or None
    else:
        return None
    return name.strip(), value, unit, loinc


def _range(coded: dict) -> tuple[float | None, float | None]:
    ranges = coded.get("referenceRange") or [{}]
    low, high = (ranges[0].get(k, {}).get("value") for k in ("low", "high"))
    return (low if isinstance(low, int | float) else None), (high if isinstance(high, int | float) else None)


def _flag(coded: dict) -> str | None:
    flags = [c.get("code") for i in coded.get("interpretation") or [] for c in i.get("coding") or []]
    return next((f for f in flags if f), None)


def _geometry(points: list[dict], low: float | None, high: float | None) -> dict:
    """Where to draw a series in a WIDTH x HEIGHT picture: x by date order, y by value, the normal band."""
    values = [p["value"] for p in points] + [v for v in (low, high) if v is not None]
    bottom, top = min(values), max(values)
    span = (top - bottom) or abs(top) or 1.0
    bottom, top = bottom - span * 0.1, top + span * 0.1

    def y(value: float) -> float:
        return round(HEIGHT - PAD - (value - bottom) / (top - bottom) * (HEIGHT - 2 * PAD), 1)

    step = (WIDTH - 2 * PAD) / max(len(points) - 1, 1)
    dots = [{**p, "x": round(PAD + i * step, 1), "y": y(p["value"])} for i, p in enumerate(points)]
    band = None
    if low is not None or high is not None:
        band = {"top": y(high if high is not None else top), "bottom": y(low if low is not None else bottom)}
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "dots": dots,
        "line": " ".join(f"{d['x']},{d['y']}" for d in dots),
        "band": band,
        "axis": {"top": round(top, 2), "bottom": round(bottom, 2)},
    }


def overview(entries: list[dict]) -> dict:
    """The sections and the lab series of a chart's (opened) entries; every section sorted newest first."""
    occurrences = [e for e in entries if e.get("kind") == "occurrence" and "data" in e]
    result: dict = {
        name: sorted(
            (_item(e) for e in occurrences if e["data"]["type"] in kinds), key=lambda i: i["date"] or "", reverse=True
        )
        for name, kinds in SECTIONS.items()
    }
    series: dict[str, dict] = {}
    for entry in occurrences:
        data = entry["data"]
        if data["type"] != "test-result" or (measured := _measurement(data)) is None:
            continue
        name, value, unit, loinc = measured
        low, high = _range(data.get("coded") or {})
        one = series.setdefault(name.casefold(), {"name": name, "unit": unit, "low": low, "high": high, "points": []})
        one["loinc"] = one.get("loinc") or loinc
        one["low"] = one["low"] if one["low"] is not None else low
        one["high"] = one["high"] if one["high"] is not None else high
        flag = _flag(data.get("coded") or {})
        one["points"].append({"date": data.get("date"), "value": value, "flag": flag, "id": entry["id"]})
    labs = []
    for one in sorted(series.values(), key=lambda s: s["name"].casefold()):
        one["points"].sort(key=lambda p: p["date"] or "")
        labs.append({**one, "picture": _geometry(one["points"], one["low"], one["high"])})
    result["labs"] = labs
    return result
