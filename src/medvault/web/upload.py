"""Streaming multipart upload straight into the vault's encryptor: no plaintext ever touches disk.

Starlette's `request.form()` spools big parts to temporary files, so uploads are parsed here with
python-multipart's callback parser, fed chunk by chunk from the request body. The `file` part goes to the
encrypting `Upload`; small fields (`metadata`, `csrf_token`) are collected in memory with a size cap.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from medvault.vault import VaultError
from medvault.vault.records import Upload

FIELD_LIMIT = 256 * 1024


class BadUpload(VaultError):
    pass


@dataclass
class _Part:
    name: str = ""
    filename: str | None = None
    content_type: str | None = None
    headers: dict[str, bytes] = field(default_factory=dict)


@dataclass
class ReceivedUpload:
    fields: dict[str, str]
    filename: str | None
    content_type: str | None
    saw_file: bool


async def receive_upload(request: Request, upload: Upload, csrf_check=None) -> ReceivedUpload:
    """Parse the body into `upload`; `csrf_check(fields)` runs before the first file byte is accepted."""
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or b"boundary" not in params:
        raise BadUpload("Expected multipart/form-data with a 'file' part")
    part = _Part()
    header_name = bytearray()
    header_value = bytearray()
    fields: dict[str, bytearray] = {}
    result = ReceivedUpload({}, None, None, False)
    state = {"checked": csrf_check is None, "ended": False}

    def on_part_begin() -> None:
        nonlocal part
        part = _Part()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_name.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        part.headers[bytes(header_name).lower().decode("latin-1")] = bytes(header_value)
        header_name.clear()
        header_value.clear()

    def on_headers_finished() -> None:
        _, disp = parse_options_header(part.headers.get("content-disposition", b""))
        part.name = disp.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" in disp:
            part.filename = disp[b"filename"].decode("utf-8", "replace")
        part.content_type = part.headers.get("content-type", b"").decode("latin-1") or None
        if part.name == "file":
            if result.saw_file:
                raise BadUpload("Only one 'file' part per upload")
            if not state["checked"]:
                csrf_check({k: v.decode("utf-8", "replace") for k, v in fields.items()})
                state["checked"] = True
            result.saw_file = True
            result.filename = part.filename
            result.content_type = part.content_type
        elif part.name:
            fields[part.name] = bytearray()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if part.name == "file":
            upload.write(data[start:end])
        elif part.name in fields:
            buf = fields[part.name]
            buf.extend(data[start:end])
            if len(buf) > FIELD_LIMIT:
                raise BadUpload(f"Form field {part.name!r} is too large")

    def on_end() -> None:
        state["ended"] = True

    parser = MultipartParser(
        params[b"boundary"],
        {
            "on_end": on_end,
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
        },
    )
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError:
        raise BadUpload("Malformed multipart body") from None
    if not state["ended"]:
        raise BadUpload("Malformed multipart body: it ends before its closing boundary")
    if not result.saw_file:
        raise BadUpload("The upload has no 'file' part")
    result.fields = {k: v.decode("utf-8", "replace") for k, v in fields.items()}
    return result


def parse_metadata(text: str | None) -> dict:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise BadUpload("Part 'metadata' is not valid JSON") from None
    if not isinstance(value, dict):
        raise BadUpload("Part 'metadata' must be a JSON object")
    return value
