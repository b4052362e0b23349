"""What a stored record says, as text: for the search index, near duplicates, witness statements, citations and
extraction.

A text file (text/plain, text/markdown) is its first `TEXT_BYTES`, decoded as UTF-8, as one page. A PDF of at
most `pdftext.MAX_PDF_BYTES` is decrypted chunk by verified chunk into memory, never to disk, and its pages'
text extracted (mar/pdftext.py); its pages without a text layer (a scan) are read by OCR (mar/ocr.py), as is an
image (one page). Other records, and larger files, have no text. The one place that decides this, so that
search, duplicates, statements and citations read the same text from the same records.
"""

from __future__ import annotations

from dataclasses import replace

from medvault.mar import ocr
from medvault.mar.index import TEXT_BYTES, is_text
from medvault.mar.pdftext import MAX_PDF_BYTES, Pages, extract, is_pdf
from medvault.vault.records import OpenRecord, Vault


def has_text(content_type: str | None) -> bool:
    """Whether records of this type can have text here (a PDF or an image may still turn out to have none)."""
    return is_text(content_type) or is_pdf(content_type) or ocr.is_image(content_type)


def of_text_head(head: bytes, size: int) -> Pages:
    """A text file's pages from its first bytes (kept at upload) and its full size."""
    return Pages((head.decode("utf-8", "replace"),), 1, cut=size > len(head))


def _with_ocr(pdf: bytes, pages: Pages) -> Pages:
    """The pages, with those lacking a text layer read by OCR; when OCR stops short (page or time limit, or the
    tools are missing) the text ends before the first page it did not read, so nothing is taken as a blank page."""
    blank = [n for n, text in enumerate(pages.texts, 1) if not text.strip()]
    if not blank or pages.cut:
        return pages
    read = ocr.pdf_pages(pdf, blank)
    texts = list(pages.texts)
    for number in blank:
        if number not in read:
            texts = texts[: number - 1]
            break
        texts[number - 1] = read[number]
    return replace(pages, texts=tuple(texts), ocr=tuple(n for n in blank if n in read and n <= len(texts)))


def of_content(content: bytes, content_type: str | None) -> Pages | None:
    """The text of a record's whole decrypted content, or None when its type has none here (a FHIR import
    holds its files in memory before they are stored)."""
    if is_text(content_type):
        return of_text_head(content[:TEXT_BYTES], len(content))
    if is_pdf(content_type) and len(content) <= MAX_PDF_BYTES:
        return _with_ocr(content, extract(content))
    if ocr.is_image(content_type) and len(content) <= ocr.MAX_IMAGE_BYTES:
        return Pages((ocr.image_text(content),), 1, ocr=(1,)) if ocr.available() else Pages((), 1)
    return None


def _limit(content_type: str | None) -> int | None:
    if is_pdf(content_type):
        return MAX_PDF_BYTES
    if ocr.is_image(content_type):
        return ocr.MAX_IMAGE_BYTES
    return None


def read(vault: Vault, record: OpenRecord) -> Pages | None:
    """The record's text, or None when its type has none here; raises IntegrityError on a tampered chunk."""
    content_type = record.metadata.get("content_type")
    if is_text(content_type):
        end = min(record.size, TEXT_BYTES)
        return of_text_head(b"".join(vault.read_range(record, 0, end)), record.size)
    limit = _limit(content_type)
    if limit is not None and record.size <= limit:
        return of_content(b"".join(vault.read_range(record, 0, record.size)), content_type)
    return None
