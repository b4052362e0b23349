"""The API's OpenAPI description, kept next to the routes it documents (a test checks they agree)."""

_ERR = {"description": "Error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _op(summary: str, ok: str = "200", body: str | None = None) -> dict:
    op: dict = {"summary": summary, "responses": {ok: {"description": "OK"}, "4XX": _ERR}}
    if body:
        op["requestBody"] = {"required": True, "content": {body: {"schema": {"type": "object"}}}}
    return op


OPENAPI = {
    "openapi": "3.1.0",
    "info": {"title": "MedVault API", "version": "1"},
    "components": {
        "schemas": {"Error": {"type": "object", "properties": {"detail": {"type": "string"}}}},
        "securitySchemes": {
            "session": {"type": "apiKey", "in": "cookie", "name": "mv_session"},
            "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token"},
        },
    },
    "paths": {
        "/api/v1/login": {"post": _op("Sign in; sets the session cookie, returns csrf_token", body="application/json")},
        "/api/v1/logout": {"post": _op("Sign out this session")},
        "/api/v1/me": {"get": _op("The signed-in user and key fingerprint")},
        "/api/v1/sessions": {"get": _op("This user's active sessions")},
        "/api/v1/sessions/revoke-all": {"post": _op("Log out everywhere")},
        "/api/v1/invitations/accept": {
            "post": _op("Accept an invitation; returns the recovery key once", "201", "application/json")
        },
        "/api/v1/account/password": {"post": _op("Change password (re-wraps keys only)", body="application/json")},
        "/api/v1/account/recover": {"post": _op("Reset password with the recovery key", body="application/json")},
        "/api/v1/records": {
            "get": _op(
                "Records readable by the user, newest first, cursor-paginated; `unreadable` names records "
                "that fail their integrity check"
            ),
            "post": _op("Upload a record (parts: file, metadata)", "201", "multipart/form-data"),
        },
        "/api/v1/records/{id}": {
            "get": _op("Metadata, signer and signature check of one record"),
            "delete": _op("Delete a record (owner only)", "204"),
            "patch": _op("Edit metadata (owner): a new version, same content (JSON body)", "201", "application/json"),
        },
        "/api/v1/records/{id}/versions": {
            "post": _op("New version superseding the record (owner; multipart)", "201", "multipart/form-data")
        },
        "/api/v1/records/duplicates": {
            "post": _op("Exact duplicate groups and near-duplicate suggestions in my chart", body="application/json")
        },
        "/api/v1/records/{id}/content": {"get": _op("The record's bytes; single Range requests supported")},
        "/api/v1/records/search": {
            "post": _op(
                "Search readable records: filters, sort, group, sealed cursor (JSON body)", body="application/json"
            )
        },
        "/api/v1/shares": {
            "get": _op("My shares (patient) or shares made to me (specialist)"),
            "post": _op(
                "Share records or the chart (slice, access, expiry) with a specialist", "201", "application/json"
            ),
        },
        "/api/v1/shares/{id}": {"delete": _op("Revoke a share", "204")},
        "/api/v1/specialists": {"get": _op("Specialists a patient may share with, with key fingerprints")},
        "/api/v1/summaries": {
            "post": _op(
                "Send a signed summary to a patient who shared: `markdown`, `citations` ({record, pages, quote}, "
                "checked against the records); answers the ids of the summary and of its signed PDF (`pdf`)",
                "201",
                "application/json",
            )
        },
        "/api/v1/inbox": {"get": _op("Summaries specialists sent to me, each with the id of its PDF")},
        "/api/v1/audit": {"get": _op("Who saw my records")},
        "/api/v1/export/fhir": {"get": _op("FHIR R4 Bundle of my chart; a specialist names the patient (header)")},
        "/api/v1/export/fhir/summary/{id}": {"get": _op("A summary as a FHIR document Bundle (Composition first)")},
        "/api/v1/import/fhir": {
            "post": _op(
                "Import a FHIR Bundle (all or nothing); `not_kept` lists what it could not keep",
                "201",
                "application/json",
            )
        },
        "/api/v1/export/age": {"post": _op("Chart sealed to a fresh age identity (password)", body="application/json")},
        "/api/v1/export/zip": {"post": _op("Chart as a plain ZIP with index.csv (password)", body="application/json")},
        "/api/v1/charts/entries": {
            "post": _op(
                "Write a chart entry {patient, kind, data}: occurrence, injury, statement, mark, standard, annotation,"
                " merge; signed and sealed",
                "201",
                "application/json",
            )
        },
        "/api/v1/charts/entries/list": {
            "post": _op("A chart's entries, opened and signature-checked {patient, kinds}", body="application/json")
        },
        "/api/v1/charts/entries/{id}": {
            "get": _op("One chart entry with everything linked to it"),
            "put": _op(
                "Replace an entry's data {data} (its author, or the patient; the editor signs and becomes the author)",
                body="application/json",
            ),
            "delete": _op("Delete an entry (its author, or the patient); 409 while other entries link to it", "204"),
        },
        "/api/v1/charts/chronology": {
            "post": _op(
                "Chronology: occurrences by date, before/after an incident, gaps, candidates (JSON body)",
                body="application/json",
            )
        },
        "/api/v1/charts/proposals": {
            "post": _op("Proposals read from a chart's records, by status (JSON body)", body="application/json")
        },
        "/api/v1/charts/proposals/read": {
            "post": _op("Read the next records (text layer, else OCR) into proposals", body="application/json")
        },
        "/api/v1/charts/proposals/accept": {
            "post": _op("Accept proposals as occurrences, with edits, all or none", body="application/json")
        },
        "/api/v1/charts/proposals/reject": {"post": _op("Reject proposals", body="application/json")},
        "/api/v1/charts/health": {
            "post": _op(
                "Health overview {patient}: problems, medications, allergies, immunisations, lab series",
                body="application/json",
            )
        },
        "/api/v1/charts/chronology.csv": {"post": _op("The chronology as a CSV attachment", body="application/json")},
        "/api/v1/charts/chronology.pdf": {
            "post": _op("The chronology as a PDF attachment (same body as the CSV)", body="application/json")
        },
        "/api/v1/charts/statements/compare": {
            "post": _op("Word-level differences between witness statements, with their marks", body="application/json")
        },
        "/api/v1/charts/standards": {"post": _op("Standards-of-care checklist of a chart", body="application/json")},
        "/api/v1/charts/professionals": {
            "post": _op("Professionals in a chart, with near-duplicate suggestions", body="application/json")
        },
        "/api/v1/charts/professionals/merge": {
            "post": _op("Record a decision on names suggested as one person", "201", "application/json")
        },
        "/api/v1/charts/facilities": {
            "post": _op("Facilities in a chart, with suggestions of spellings of one", body="application/json")
        },
        "/api/v1/charts/facilities/merge": {
            "post": _op("Record a decision on names suggested as one facility", "201", "application/json")
        },
        "/api/v1/admin/users": {
            "get": _op("Accounts (administrators)"),
            "post": _op("Invite a person (administrators)", "201", "application/json"),
        },
        "/api/v1/admin/guard": {"get": _op("Bans, jail counts, events over time (administrators)")},
        "/api/v1/admin/bans": {"post": _op("Ban an address or network (administrators)", "201", "application/json")},
        "/api/v1/admin/bans/lift": {"post": _op("Lift a ban (administrators)", body="application/json")},
        "/api/v1/openapi.json": {"get": _op("This document")},
    },
}
