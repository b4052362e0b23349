"""Versions and duplicates of the caller's own records.

A new version is a new record (new id, new data key) whose `supersedes` names the older one; the chain is
kept and each record has at most one successor. Only readers holding a live share at that moment get the new
key: a revoked reader's old key is never re-wrapped. Metadata is signed in the manifest, so editing metadata
(`PATCH`) is a new version with the same content and the changed metadata.
"""

from __future__ import annotations

import sqlalchemy.exc
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from medvault.auth.sessions import Session
from medvault.mar import duplicates
from medvault.vault import RecordNotFound
from medvault.vault.metadata import user_metadata
from medvault.vault.records import OpenRecord
from medvault.web.api import begin_own_upload, committed, json_body, new_record_readers, store_upload
from medvault.web.clientip import client_ip
from medvault.web.security import check_csrf, record_id_param, require_session, vault_of

_FORK = "This record already has a newer version; add a version to the newest one"


def _own_current(request: Request, session: Session, record_id: str | None = None) -> OpenRecord:
    """The caller's own record (the one in the path unless named), not yet superseded (a chain never forks)."""
    medvault = vault_of(request)
    record = medvault.vault.open(record_id or record_id_param(request), session.user_id, session.keys)
    if record.owner_id != session.user_id:
        raise RecordNotFound  # only the owner makes versions; to others it simply is not theirs
    if medvault.vault.superseded_among([record.id]):
        raise HTTPException(409, _FORK)
    return record


def _answer(request: Request, record_id: str, previous: OpenRecord) -> Response:
    medvault = vault_of(request)
    return JSONResponse(
        {
            "id": record_id,
            "supersedes": previous.id,
            "versions": medvault.vault.chain(record_id),
            "duplicate_of": medvault.vault.duplicate_of(record_id),
        },
        201,
    )


async def version_create(request: Request) -> Response:
    """A new version from an upload (multipart like `POST /api/v1/records`; no metadata part keeps the old)."""
    session = require_session(request, roles=("patient", "specialist"))
    check_csrf(request, session)
    previous = await run_in_threadpool(_own_current, request, session)
    try:
        record_id = await store_upload(request, session, previous=previous)
    except sqlalchemy.exc.IntegrityError:
        raise HTTPException(409, _FORK) from None
    return await run_in_threadpool(_answer, request, record_id, previous)


def _copy(request: Request, session: Session, previous: OpenRecord, meta: dict) -> str:
    """The same content re-encrypted under a new data key, with new metadata; nothing kept on failure."""
    medvault = vault_of(request)
    upload = begin_own_upload(medvault, session, max(previous.size, medvault.settings.max_upload_bytes), previous)
    try:
        for chunk in medvault.vault.read_range(previous, 0, previous.size):
            upload.write(chunk)
        record_id = upload.finish(
            meta,
            previous.metadata.get("filename"),
            previous.metadata.get("content_type"),
            session.user_id,
            session.keys,
            new_record_readers(medvault, session, previous),
        )
    except BaseException:
        upload.abort()
        raise
    return committed(request, session, upload, record_id)


async def edit_metadata(request: Request, session: Session, changes: dict) -> tuple[str, OpenRecord]:
    """A new version with changed metadata (keys replace old values, None removes one); (new id, previous)."""
    previous = await run_in_threadpool(_own_current, request, session)
    meta = user_metadata(previous.metadata)
    for key, value in changes.items():
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = value
    try:
        return await run_in_threadpool(_copy, request, session, previous, meta), previous
    except sqlalchemy.exc.IntegrityError:
        raise HTTPException(409, _FORK) from None


async def record_patch(request: Request) -> Response:
    """Edit metadata: JSON keys replace the old values, null removes a key; answers the new version's id."""
    session = require_session(request, roles=("patient", "specialist"))
    check_csrf(request, session)
    record_id, previous = await edit_metadata(request, session, await json_body(request))
    return await run_in_threadpool(_answer, request, record_id, previous)


def link_as_version(request: Request, session: Session, older_id: str, newer_id: str) -> None:
    """Make one of the caller's records the newer version of another (a near duplicate judged so by its owner).

    The older one must be current (no fork) and the newer one must not already follow another record."""
    medvault = vault_of(request)
    if older_id == newer_id:
        raise HTTPException(400, "A record cannot be a version of itself")
    older = _own_current(request, session, older_id)
    newer = medvault.vault.open(newer_id, session.user_id, session.keys)
    if newer.owner_id != session.user_id:
        raise RecordNotFound
    if medvault.vault.lineage(newer.id, session.user_id)["supersedes"] is not None:
        raise HTTPException(409, "That record is already the newer version of another record")
    if newer.id in medvault.vault.chain(older.id):
        raise HTTPException(409, "These two records are already versions of one another")
    try:
        medvault.vault.link_version(older.id, newer.id, session.user_id, session.keys)
    except sqlalchemy.exc.IntegrityError:
        raise HTTPException(409, _FORK) from None
    medvault.audit.append("version", session.user_id, newer.id, client_ip(request.scope))


def duplicates_of(request: Request, session: Session) -> dict:
    """Exact groups and near suggestions in the caller's own chart, less the pairs they chose to keep."""
    medvault = vault_of(request)
    found = duplicates.find(medvault.vault, session)
    key = duplicates.duplicate_key(medvault.search.store, session.user_id, session.keys)
    return medvault.duplicate_reviews.without_kept(session.user_id, key, found)


async def duplicates_find(request: Request) -> Response:
    """Exact duplicate groups and near-duplicate suggestions in the caller's own chart (JSON body `{}`)."""
    session = require_session(request, roles=("patient", "specialist"))
    check_csrf(request, session)
    data = await json_body(request)
    if data:
        raise HTTPException(400, f"unknown field(s): {', '.join(sorted(data))}")
    return JSONResponse(await run_in_threadpool(duplicates_of, request, session))


routes = [
    Route("/api/v1/records/duplicates", duplicates_find, methods=["POST"]),
    Route("/api/v1/records/{id}/versions", version_create, methods=["POST"]),
    Route("/api/v1/records/{id}", record_patch, methods=["PATCH"]),
]
