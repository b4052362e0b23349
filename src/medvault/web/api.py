"""JSON API under /api/v1. Errors are `{"detail": ...}`; state changes from a session need X-CSRF-Token."""

from __future__ import annotations

import base64
import json
import struct

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from medvault.auth.sessions import Session
from medvault.crypto import CryptoError
from medvault.crypto.keyring import open_sealed, seal
from medvault.crypto.passwords import derive_subkey
from medvault.mar.duplicates import duplicate_key
from medvault.mar.index import TEXT_BYTES
from medvault.vault import VaultError
from medvault.vault.metadata import user_metadata
from medvault.vault.records import OpenRecord
from medvault.web.clientip import client_ip
from medvault.web.content import content_response
from medvault.web.login import log_in, recover_with_key
from medvault.web.openapi import OPENAPI
from medvault.web.security import (
    check_csrf,
    check_same_origin,
    clear_session_cookie,
    issue_device_cookie,
    record_id_param,
    require_session,
    set_session_cookie,
    vault_of,
)
from medvault.web.upload import parse_metadata, receive_upload

JSON_LIMIT = 64 * 1024


async def json_body(request: Request, *required: str) -> dict:
    body = await request.body()
    if len(body) > JSON_LIMIT:
        raise HTTPException(413, "Request body too large")
    try:
        data = json.loads(body or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise HTTPException(400, "Body must be valid JSON") from None
    if not isinstance(data, dict):
        raise HTTPException(400, "Body must be a JSON object")
    missing = [k for k in required if not isinstance(data.get(k), str)]
    if missing:
        raise HTTPException(400, f"Missing or non-text field(s): {', '.join(missing)}")
    return data


async def login(request: Request) -> Response:
    check_same_origin(request)
    data = await json_body(request, "username", "password")
    result = await log_in(request, data["username"], data["password"], via="api")
    response = JSONResponse(
        {
            "csrf_token": result.csrf_token,
            "user": {"id": result.account.id, "username": result.account.username, "role": result.account.role},
        }
    )
    set_session_cookie(response, result.cookie)
    issue_device_cookie(request, response, result.account.username)
    return response


async def logout(request: Request) -> Response:
    session = require_session(request)
    check_csrf(request, session)
    vault_of(request).sessions.revoke(session.id)
    vault_of(request).search.sweep(force=True)  # its decrypted index leaves memory now
    response = JSONResponse({"detail": "Signed out"})
    clear_session_cookie(response)
    return response


async def sessions_list(request: Request) -> Response:
    session = require_session(request)
    return JSONResponse({"items": vault_of(request).sessions.list(session.user_id)})


async def revoke_all(request: Request) -> Response:
    session = require_session(request)
    check_csrf(request, session)
    count = vault_of(request).sessions.revoke_all(session.user_id)
    vault_of(request).search.sweep(force=True)
    response = JSONResponse({"revoked": count})
    clear_session_cookie(response)
    return response


async def me(request: Request) -> Response:
    session = require_session(request)
    public = session.keys.public()
    return JSONResponse(
        {"id": session.user_id, "username": session.username, "role": session.role, "fingerprint": public.fingerprint}
    )


async def accept_invitation(request: Request) -> Response:
    check_same_origin(request)
    data = await json_body(request, "code", "password")
    account, recovery = await vault_of(request).accounts.accept(data["code"], data["password"])
    vault_of(request).events.emit("invitation-accepted", client_ip(request.scope), user=account.username)
    return JSONResponse({"username": account.username, "role": account.role, "recovery_key": recovery}, 201)


async def change_password(request: Request) -> Response:
    session = require_session(request)
    check_csrf(request, session)
    data = await json_body(request, "current_password", "new_password")
    medvault = vault_of(request)
    await medvault.accounts.authenticate(session.username, data["current_password"])
    await medvault.accounts.change_password(session.user_id, session.keys, data["new_password"])
    return JSONResponse({"detail": "Password changed"})


async def recover(request: Request) -> Response:
    check_same_origin(request)
    data = await json_body(request, "username", "recovery_key", "new_password")
    fresh = await recover_with_key(request, data["username"], data["recovery_key"], data["new_password"])
    return JSONResponse({"detail": "Password reset; records kept", "recovery_key": fresh})


async def records_list(request: Request) -> Response:
    session = require_session(request)
    medvault = vault_of(request)
    cursor_key = derive_subkey(medvault.server_secret, "cursor/v1")
    context = session.user_id.encode()
    try:
        limit = min(max(int(request.query_params.get("limit", "50")), 1), 200)
        cursor = request.query_params.get("cursor")
        after = None
        if cursor:
            (after,) = struct.unpack(">d", open_sealed(cursor_key, base64.urlsafe_b64decode(cursor), context))
    except (ValueError, CryptoError, struct.error):
        raise HTTPException(400, "Invalid limit or cursor") from None
    page = medvault.vault.readable_ids(session.user_id, limit + 1, after)
    items, unreadable = [], []
    for rid, _ in page[:limit]:
        try:
            items.append(medvault.vault.open(rid, session.user_id, session.keys).as_json())
        except VaultError as exc:  # failing its integrity check: named, so one record cannot hide the rest
            unreadable.append({"id": rid, "detail": str(exc)})
    items = medvault.vault.mark_superseded(items)
    nxt = None
    if len(page) > limit:  # opaque and sealed: the cursor says nothing about the records
        nxt = base64.urlsafe_b64encode(seal(cursor_key, struct.pack(">d", page[limit - 1][1]), context)).decode()
    return JSONResponse({"items": items, "unreadable": unreadable, "next": nxt})


async def records_create(request: Request) -> Response:
    session = require_session(request)
    check_csrf(request, session)
    record_id = await store_upload(request, session)
    duplicate = await run_in_threadpool(vault_of(request).vault.duplicate_of, record_id)
    return JSONResponse({"id": record_id, "duplicate_of": duplicate}, 201)


async def store_upload(request: Request, session: Session, csrf_check=None, previous: OpenRecord | None = None) -> str:
    """Receive, encrypt and commit one upload; nothing is kept if any step fails.

    With `previous` (an open record of the caller's) the upload is a new version of it: a new record with a
    new data key that `supersedes` it, given to the owner and to the readers holding a live share right now
    (of that record, or a chart share covering it); a missing metadata part keeps the old metadata."""
    if session.role not in ("patient", "specialist"):
        raise HTTPException(403, "Administrators manage accounts, not records")
    medvault = vault_of(request)
    limit = medvault.settings.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + JSON_LIMIT:
        raise HTTPException(413, f"File exceeds the upload limit of {limit} bytes")
    upload = begin_own_upload(medvault, session, limit, previous)
    try:
        received = await receive_upload(request, upload, csrf_check)
        if previous is not None and received.fields.get("metadata") is None:
            received.fields["metadata"] = json.dumps(user_metadata(previous.metadata))
        record_id = upload.finish(
            parse_metadata(received.fields.get("metadata")),
            received.filename,
            received.content_type,
            session.user_id,
            session.keys,
            new_record_readers(medvault, session, previous),
        )
    except BaseException:
        upload.abort()
        raise
    return await run_in_threadpool(committed, request, session, upload, record_id)  # a PDF's text is read back


def begin_own_upload(medvault, session: Session, limit: int, previous: OpenRecord | None = None):
    """An upload by the session's user, keeping what the search index and the duplicate check need."""
    upload = medvault.vault.begin_upload(session.user_id, limit)
    upload.keep_head = TEXT_BYTES  # text files' words go into the uploader's sealed search index (PDFs: read back)
    upload.keep_duplicate_hash(duplicate_key(medvault.search.store, session.user_id, session.keys))
    if previous is not None:
        upload.supersedes = previous.id
    return upload


def new_record_readers(medvault, session: Session, previous: OpenRecord | None):
    """Who else gets the new record's key: live chart shares covering it, and a previous version's live readers."""

    def readers(meta: dict) -> list[tuple[str, str]]:
        found = dict(medvault.sharing.readers_for_new_record(session.user_id, session.keys, meta))
        if previous is not None:
            found.update(medvault.vault.live_readers(previous.id, session.user_id))
        return list(found.items())

    return readers


def committed(request: Request, session: Session, upload, record_id: str) -> str:
    """Audit and index a record that was just committed."""
    medvault = vault_of(request)
    medvault.audit.append("upload", session.user_id, record_id, client_ip(request.scope))
    medvault.search.index_upload(session, upload)
    return record_id


async def record_get(request: Request) -> Response:
    session = require_session(request)
    medvault = vault_of(request)
    record = medvault.vault.open(record_id_param(request), session.user_id, session.keys)
    medvault.audit.append("view", session.user_id, record.id, client_ip(request.scope))
    return JSONResponse({**record.as_json(), **medvault.vault.lineage(record.id, session.user_id)})


async def record_content(request: Request) -> Response:
    session = require_session(request)
    medvault = vault_of(request)
    record = medvault.vault.open(record_id_param(request), session.user_id, session.keys)
    response = content_response(request, medvault.vault, record, inline=False)
    medvault.audit.append("download", session.user_id, record.id, client_ip(request.scope))
    return response


async def record_delete(request: Request) -> Response:
    session = require_session(request)
    check_csrf(request, session)
    medvault = vault_of(request)
    record_id = record_id_param(request)
    medvault.vault.delete(record_id, session.user_id)
    medvault.audit.append("delete", session.user_id, record_id, client_ip(request.scope))
    return Response(status_code=204)


async def openapi(request: Request) -> Response:
    return JSONResponse(OPENAPI)


routes = [
    Route("/api/v1/login", login, methods=["POST"]),
    Route("/api/v1/logout", logout, methods=["POST"]),
    Route("/api/v1/me", me),
    Route("/api/v1/sessions", sessions_list),
    Route("/api/v1/sessions/revoke-all", revoke_all, methods=["POST"]),
    Route("/api/v1/invitations/accept", accept_invitation, methods=["POST"]),
    Route("/api/v1/account/password", change_password, methods=["POST"]),
    Route("/api/v1/account/recover", recover, methods=["POST"]),
    Route("/api/v1/records", records_list, methods=["GET"]),
    Route("/api/v1/records", records_create, methods=["POST"]),
    Route("/api/v1/records/{id}", record_get, methods=["GET"]),
    Route("/api/v1/records/{id}", record_delete, methods=["DELETE"]),
    Route("/api/v1/records/{id}/content", record_content, methods=["GET"]),
    Route("/api/v1/openapi.json", openapi),
]
