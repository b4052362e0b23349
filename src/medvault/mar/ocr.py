"""Text of scanned pages by OCR: Debian's poppler `pdftoppm` renders a page, `tesseract` reads it.

Both run as child processes fed through pipes: the decrypted PDF goes to pdftoppm's stdin, the page image from
its stdout to tesseract's stdin, the text comes back on tesseract's stdout. Nothing is written to disk; each
child still runs in a private temporary folder (its working directory and TMPDIR, mode 0700) that is removed
afterwards, so a tool that did write a scratch file would leave nothing behind. tesseract is limited to one
thread, so one scan costs one core, and every child has a deadline.

OCR is slow (about a second a page), so only pages without a text layer are read, at most `MAX_PAGES` of a
document, within `MAX_SECONDS`; when the tools are missing a scan simply has no text (the record is stored
and shown either way; its citations are then "not checkable").
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable

IMAGE_TYPES = ("image/png", "image/jpeg", "image/tiff", "image/gif", "image/bmp", "image/webp")
MAX_IMAGE_BYTES = 20 * 1024 * 1024
MAX_PAGES = 30
MAX_SECONDS = 90.0
DPI = 200
LANGUAGE = "eng"


def available() -> bool:
    return shutil.which("tesseract") is not None and shutil.which("pdftoppm") is not None


def is_image(content_type: str | None) -> bool:
    return (content_type or "").split(";", 1)[0].strip().lower() in IMAGE_TYPES


def _run(command: list[str], data: bytes, folder: str, timeout: float) -> bytes | None:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TMPDIR": folder, "OMP_THREAD_LIMIT": "1"}
    try:
        done = subprocess.run(
            command, input=data, capture_output=True, cwd=folder, env=env, timeout=max(timeout, 1.0), check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def _read_image(image: bytes, folder: str, timeout: float) -> str:
    text = _run(["tesseract", "stdin", "stdout", "-l", LANGUAGE, "--psm", "3"], image, folder, timeout)
    return text.decode("utf-8", "replace").replace("\f", "").strip() if text else ""


def image_text(image: bytes) -> str:
    """The words of one image (a photographed or scanned page); empty when there are none or OCR is missing."""
    if not available() or len(image) > MAX_IMAGE_BYTES:
        return ""
    with tempfile.TemporaryDirectory(prefix="medvault-ocr-") as folder:
        return _read_image(image, folder, MAX_SECONDS)


def pdf_pages(pdf: bytes, numbers: Iterable[int]) -> dict[int, str]:
    """The OCR text of the given pages (from 1) of a PDF, as far as the page and time limits allow."""
    if not available():
        return {}
    deadline = time.monotonic() + MAX_SECONDS
    found: dict[int, str] = {}
    with tempfile.TemporaryDirectory(prefix="medvault-ocr-") as folder:
        for number in list(numbers)[:MAX_PAGES]:
            left = deadline - time.monotonic()
            if left <= 1:
                break
            page = f"{number}"
            image = _run(["pdftoppm", "-f", page, "-l", page, "-r", str(DPI), "-gray", "-"], pdf, folder, left)
            if image:
                found[number] = _read_image(image, folder, deadline - time.monotonic())
    return found
