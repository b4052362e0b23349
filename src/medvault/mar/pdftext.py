"""The text of a PDF's pages, extracted in memory with pypdf, within fixed limits.

Search, near duplicates, witness statements and citation checks need what a PDF says. The caller hands over
the decrypted bytes and gets strings back: nothing touches the disk, and pypdf's log messages (which can
quote a document) are silenced, since the server's log is a file.

Limits, so that one upload costs neither the server's memory nor minutes of CPU: a PDF over `MAX_PDF_BYTES`
is not read, at most `MAX_PAGES` pages and `MAX_TEXT_BYTES` of UTF-8 text are kept, and reading stops after
`MAX_SECONDS`. A PDF pypdf cannot read (malformed, locked by a password) or a scan without a text layer
simply has no text: extraction never raises, because the record is stored either way and its text is only
an aid to finding and reading it.
"""

from __future__ import annotations

import io
import logging
import time
from dataclasses import dataclass

from pypdf import PdfReader

PDF_TYPES = ("application/pdf", "application/x-pdf")
MAX_PDF_BYTES = 32 * 1024 * 1024
MAX_PAGES = 1000
MAX_TEXT_BYTES = 256 * 1024
MAX_SECONDS = 10.0

logging.getLogger("pypdf").setLevel(logging.CRITICAL + 1)


def is_pdf(content_type: str | None) -> bool:
    return (content_type or "").split(";", 1)[0].strip().lower() in PDF_TYPES


@dataclass(frozen=True)
class Pages:
    """The text of a document's first pages, page by page (a text file is one page)."""

    texts: tuple[str, ...] = ()
    count: int = 0  # pages in the document, read or not
    cut: bool = False  # the last text stops where the text limit was reached
    ocr: tuple[int, ...] = ()  # pages whose text was read by OCR (mar/ocr.py), not from a text layer

    @property
    def text(self) -> str:
        return "\n".join(self.texts)

    @property
    def truncated(self) -> bool:
        return self.cut or len(self.texts) < self.count

    def page(self, number: int) -> str | None:
        """Page `number` (from 1) if it was read whole, else None."""
        whole = len(self.texts) - 1 if self.cut else len(self.texts)
        return self.texts[number - 1] if 1 <= number <= whole else None


NO_TEXT = Pages()


def extract(data: bytes) -> Pages:
    """The text of each page, within the limits; NO_TEXT when the PDF is too large or cannot be read."""
    if len(data) > MAX_PDF_BYTES:
        return NO_TEXT
    deadline = time.monotonic() + MAX_SECONDS
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):  # only an empty user password opens it here
            return NO_TEXT
        count = len(reader.pages)
    except Exception:  # pypdf raises many kinds of error on malformed input; none may fail an upload
        return NO_TEXT
    texts: list[str] = []
    room = MAX_TEXT_BYTES
    for number in range(min(count, MAX_PAGES)):
        if time.monotonic() > deadline:
            break
        try:
            text = reader.pages[number].extract_text() or ""
        except Exception:  # one unreadable page does not cost the others
            text = ""
        encoded = text.encode("utf-8", "replace")  # a broken font map can yield lone surrogates
        if len(encoded) > room:
            texts.append(encoded[:room].decode("utf-8", "ignore"))
            return Pages(tuple(texts), count, cut=True)
        room -= len(encoded)
        texts.append(encoded.decode("utf-8"))
    return Pages(tuple(texts), count)
