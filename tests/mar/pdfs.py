"""Real PDFs for the tests, written with fpdf2: one text per page, in plain sight unless asked otherwise."""

from __future__ import annotations

from pathlib import Path

from fpdf import FPDF

DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def make_pdf(pages: list[str], size: int = 11, unicode: bool = False, user_password: str | None = None) -> bytes:
    """A PDF with each string on a page of its own. By default uncompressed in the core font Helvetica, so its
    words stand in the file as they are: any plaintext copy of it would show in the at-rest scans."""
    pdf = FPDF()
    pdf.set_compression(False)
    if unicode:
        pdf.add_font("body", fname=str(DEJAVU))
        pdf.set_font("body", size=size)
    else:
        pdf.set_font("helvetica", size=size)
    if user_password is not None:
        pdf.set_encryption(owner_password="owner", user_password=user_password)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, size * 0.5, text)
    return bytes(pdf.output())
