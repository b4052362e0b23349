"""Reading records in the reader's session: text per page (pypdf in memory) against Debian's `pdftotext`, OCR
per scanned page (our pipes) against `pdftoppm` + `tesseract` run by hand on files, and the rules
(mar/extraction.py) over a whole generated chart of 30 and 300 records (tests/mar/chartgen.py).

`pdftotext` pays a process start per file, as a tool called per record would. CPU is user+sys of this process
and of every child it waited for (OCR runs in children), beside wall time.
Never asserts on timing.

    .venv/bin/python bench/extraction.py
    .venv/bin/python bench/extraction.py --charts 30 300 1000
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.benchlib import machine_summary
from tests.mar import chartgen

from medvault.mar import extraction, recordtext


def cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def measure(work) -> tuple[float, float]:
    wall, used = time.perf_counter(), cpu()
    work()
    return time.perf_counter() - wall, cpu() - used


def line(name: str, wall: float, used: float, pages: int) -> None:
    print(f"{name:44} {wall:7.2f} s wall {used:7.2f} s cpu   {1000 * used / pages:8.1f} ms cpu/page  ({pages} pages)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--charts", type=int, nargs="+", default=[30, 300], help="chart sizes to build")
    parser.add_argument("--scans", type=int, default=5, help="scanned pages to OCR")
    args = parser.parse_args()
    print(machine_summary())
    records = chartgen.chart(max(args.charts))
    texts = [r for r in records if r.content_type == "application/pdf" and not r.scanned]
    pages = sum(r.pages for r in texts)
    line(
        "text layer: medvault (pypdf, in memory)",
        *measure(lambda: [recordtext.of_content(r.content, r.content_type) for r in texts]),
        pages,
    )
    with tempfile.TemporaryDirectory() as folder:
        files = []
        for n, r in enumerate(texts):
            path = Path(folder) / f"{n}.pdf"
            path.write_bytes(r.content)
            files.append(path)
        line(
            "text layer: peer pdftotext (files)",
            *measure(
                lambda: [subprocess.run(["pdftotext", str(f), "-"], capture_output=True, check=True) for f in files]
            ),
            pages,
        )
        scan = next(r for r in records if r.scanned)
        line(
            "OCR: medvault (pdftoppm | tesseract, pipes)",
            *measure(lambda: [recordtext.of_content(scan.content, scan.content_type) for _ in range(args.scans)]),
            args.scans,
        )
        path = Path(folder) / "scan.pdf"
        path.write_bytes(scan.content)
        env = {**os.environ, "OMP_THREAD_LIMIT": "1"}

        def by_hand() -> None:
            for _ in range(args.scans):
                subprocess.run(["pdftoppm", "-r", "200", "-gray", "-png", str(path), f"{folder}/page"], check=True)
                subprocess.run(
                    ["tesseract", f"{folder}/page-1.png", f"{folder}/out"], capture_output=True, check=True, env=env
                )

        line("OCR: peer pdftoppm + tesseract (files)", *measure(by_hand), args.scans)
    for size in args.charts:
        chart = chartgen.chart(size)
        read = [recordtext.of_content(r.content, r.content_type) for r in chart if not r.scanned]
        count = sum(p.count for p in read if p)
        line(
            f"rules over a chart of {size} records",
            *measure(lambda read=read: [extraction.extract(p) for p in read if p]),
            count,
        )
        line(
            f"text + rules, chart of {size} (no OCR)",
            *measure(
                lambda chart=chart: [
                    extraction.extract(recordtext.of_content(r.content, r.content_type))
                    for r in chart
                    if not r.scanned and r.content_type == "application/pdf"
                ]
            ),
            count,
        )


if __name__ == "__main__":
    main()
