"""What a stored record says, as text: for the search index, near duplicates, witness statements and citations.

A text file (text/plain, text/markdown) is its first `TEXT_BYTES`, decoded as UTF-8, as one page. A PDF of at
most `pdftext.MAX_PDF_BYTES` is decrypted chunk by verified chunk into memory, never to disk, and its pages'
text extracted (mar/pdftext.py). Other records, and larger PDFs, have no text. The one place that decides
this, so that search, duplicates and statements read the same text from the same records.
"""

from __future__ import annotations

from medvault.mar.index import TEXT_BYTES, is_text
from medvault.mar.pdftext import MAX_PDF_BYTES, Pages, extract, is_pdf
from medvault.vault.records import OpenRecord, Vault


def has_text(content_type: str | None) -> bool:
    """Whether records of this type can have text here (a PDF may still turn out to have none)."""
    return is_text(content_type) or is_pdf(content_type)


def of_text_head(head: bytes, size: int) -> Pages:
    """A text file's pages from its first bytes (kept at upload) and its full size."""
    return Pages((head.decode("utf-8", "replace"),), 1, cut=size > len(head))


def of_content(content: bytes, content_type: str | None) -> Pages | None:
    """The text of a record's whole decrypted content, or None when its type has none here (a FHIR import
    holds its files in memory before they are stored)."""
    if is_text(content_type):
        return of_text_head(content[:TEXT_BYTES], len(content))
    if is_pdf(content_type) and len(content) <= MAX_PDF_BYTES:
        return extract(content)
    return None


def read(vault: Vault, record: OpenRecord) -> Pages | None:
    """The record's text, or None when its type has none here; raises IntegrityError on a tampered chunk."""
    content_type = record.metadata.get("content_type")
    if is_text(content_type):
        end = min(record.size, TEXT_BYTES)
        return of_text_head(b"".join(vault.read_range(record, 0, end)), record.size)
    if is_pdf(content_type) and record.size <= MAX_PDF_BYTES:
        return of_content(b"".join(vault.read_range(record, 0, record.size)), content_type)
    return None
