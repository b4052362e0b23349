"""Serving record content: verified chunk by chunk, with single-range requests, as download or preview."""

from __future__ import annotations

import re
from urllib.parse import quote

from starlette.concurrency import iterate_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from medvault.vault.records import OpenRecord, Vault
from medvault.web.headers import PREVIEW_CSP

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
# Only these types are ever shown inline; everything else (SVG and HTML included) is a download.
PREVIEWABLE = {"application/pdf", "image/png", "image/jpeg", "image/gif", "image/webp", "text/plain"}


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if not match or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if first == "":
        start, end = max(size - int(last), 0), size
    else:
        start = int(first)
        end = min(int(last) + 1, size) if last else size
    if start >= size or start >= end:
        raise HTTPException(416, "Requested range not satisfiable")
    return start, end


def content_response(request: Request, vault: Vault, record: OpenRecord, inline: bool) -> Response:
    """Stream the record; the first chunk is verified before any header is sent."""
    size = record.size
    byte_range = _byte_range(request.headers.get("range"), size)
    start, end = byte_range or (0, size)
    chunks = vault.read_range(record, start, end)
    first = next(chunks)  # raises IntegrityError before the response starts: a clear error, not bad bytes

    async def body():
        # Decrypting a 256 KiB chunk takes tens of microseconds: doing it inline is cheaper than handing
        # every chunk to a worker thread and back (the sync-iterator path), see bench/https_transfer.py.
        # A remote store's reads wait on the network, so there the worker thread pays.
        yield first
        if vault.blobs.remote:
            async for piece in iterate_in_threadpool(chunks):
                yield piece
        else:
            for piece in chunks:
                yield piece

    ctype = record.metadata.get("content_type", "application/octet-stream")
    show_inline = inline and ctype in PREVIEWABLE
    filename = quote(record.metadata.get("filename", "record"))
    headers = {
        "accept-ranges": "bytes",
        "content-length": str(end - start),
        "content-disposition": f"{'inline' if show_inline else 'attachment'}; filename*=UTF-8''{filename}",
        "content-security-policy": PREVIEW_CSP,
        "x-frame-options": "SAMEORIGIN" if show_inline else "DENY",  # previews live in our own frame
        "cache-control": "private, no-store",
    }
    if byte_range:
        headers["content-range"] = f"bytes {start}-{end - 1}/{size}"
    media = ctype if show_inline else "application/octet-stream"
    return StreamingResponse(body(), status_code=206 if byte_range else 200, headers=headers, media_type=media)
