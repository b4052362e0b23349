"""Near duplicates over a generated chart (tests/mar/chartgen.py plus three template PT notes, a report and its
fax): MedVault's test (mar/likeness.py: words and dates per record, cheap candidate checks, then a word-by-word
alignment judged by what differs) against the plain all-pairs `difflib.SequenceMatcher` on the normalised
texts at 90 % that it replaces, in the same run. Prints wall and CPU time, the pairs each suggests, how many
of them are true (the exact copy, the two faxes) and how many are notes of different days.

Reading the texts (text layer; the one scan by OCR) is done first and not timed: both tests read the same.
Never asserts on timing.

    .venv/bin/python bench/duplicates.py
    .venv/bin/python bench/duplicates.py --charts 30 300 600
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.benchlib import machine_summary
from tests.mar import chartgen

from medvault.mar import likeness, recordtext
from medvault.mar.index import normalise

PAIRS = (("ed-note", "ed-note-copy"), ("mri-cspine", "mri-cspine-fax"), ("consult", "consult-fax"))
TRUE = {frozenset(pair) for pair in PAIRS}


def measure(work) -> tuple[object, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    answer = work()
    return answer, time.perf_counter() - wall, time.process_time() - cpu


def medvault(texts: dict[str, str]) -> set[frozenset]:
    prints = {name: likeness.Fingerprint.of(text) for name, text in texts.items()}
    return {frozenset((a, b)) for a, b, _ in likeness.pairs(prints)}


def plain(texts: dict[str, str]) -> set[frozenset]:
    """The test MedVault had: normalised texts at least 90 % alike, every pair (with difflib's quick bounds)."""
    normal = {name: re.sub(r"\s+", " ", normalise(text)).strip() for name, text in texts.items()}
    names, found = list(normal), set()
    for i, a in enumerate(names):
        matcher = difflib.SequenceMatcher(None, autojunk=False)
        matcher.set_seq2(normal[a])
        for b in names[i + 1 :]:
            matcher.set_seq1(normal[b])
            if matcher.real_quick_ratio() >= 0.9 and matcher.quick_ratio() >= 0.9 and matcher.ratio() >= 0.9:
                found.add(frozenset((a, b)))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--charts", type=int, nargs="+", default=[30, 300], help="chart sizes (records)")
    args = parser.parse_args()
    print(machine_summary())
    for size in args.charts:
        records = {r.name[:-4]: r for r in chartgen.chart(size)}
        records.update(chartgen.near_duplicates())
        texts = {}
        for name, record in records.items():
            pages = recordtext.of_content(record.content, record.content_type)
            if pages is not None and pages.text.strip():
                texts[name] = pages.text
        print(f"chart of {len(records)} records, {len(texts)} with text ({len(texts) * (len(texts) - 1) // 2} pairs)")
        for label, test in (("medvault (what differs)", medvault), ("plain SequenceMatcher >= 90 %", plain)):
            found, wall, cpu = measure(lambda test=test, texts=texts: test(texts))
            right, missed = len(found & TRUE), len(TRUE - found)
            notes = sum(1 for pair in found - TRUE if all(n.startswith(("pt-", "office-")) for n in pair))
            print(
                f"  {label:31} {wall:7.3f} s wall {cpu:7.3f} s cpu   {len(found):5} pairs: {right} true, "
                f"{missed} missed, {notes} notes of different days, {len(found - TRUE) - notes} other"
            )


if __name__ == "__main__":
    main()
