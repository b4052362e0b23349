"""Near duplicates that are the same document (a fax of a report), not notes of different days from one template,
on the generated chart (tests/mar/chartgen.py); and a confirmed duplicate shown once in the chronology, its CSV
and its PDF, for the patient and for the specialist reading the chart, while a pair kept apart changes nothing."""

from __future__ import annotations

import csv
import difflib
import io

import pytest
import sqlalchemy as sa
from pypdf import PdfReader

from medvault.db.engine import make_engine, migrate
from medvault.mar import likeness, recordtext
from medvault.vault.reviews import DuplicateReviews
from tests.mar import chartgen
from tests.support import require_tool, upload

DUPS = "/api/v1/records/duplicates"
ENTRIES = "/api/v1/charts/entries"
CHRONO = "/api/v1/charts/chronology"
HTML = {"accept": "text/html"}


@pytest.fixture(scope="module")
def records() -> dict[str, chartgen.Record]:
    require_tool("tesseract")
    require_tool("pdftoppm")
    every = {r.name[:-4]: r for r in chartgen.chart()}
    every.update(chartgen.near_duplicates())
    return every


@pytest.fixture(scope="module")
def texts(records) -> dict[str, str]:
    return {n: pages.text for n, r in records.items() if (pages := recordtext.of_content(r.content, r.content_type))}


def test_fax_matches_and_template_notes_do_not(texts):
    """The fax (header and footer lines, re-wrapped, letters misread) is the report; three PT notes of one template
    and different days are not, although a plain SequenceMatcher finds them more alike than the fax."""
    prints = {n: likeness.Fingerprint.of(t) for n, t in texts.items() if t.strip()}
    found = {(a, b) for a, b, _ in likeness.pairs(prints)}
    assert found == {("ed-note", "ed-note-copy"), ("mri-cspine", "mri-cspine-fax"), ("consult", "consult-fax")}

    def plain(a: str, b: str) -> float:
        return difflib.SequenceMatcher(
            None, " ".join(texts[a].lower().split()), " ".join(texts[b].lower().split())
        ).ratio()

    assert plain("consult", "consult-fax") < 0.9 < plain("pt-daily-1", "pt-daily-2")


def test_what_differs_decides():
    """Another date of service or another measurement is another document; a fax line, wrapping and misread letters
    are not; a text without any date agrees with any date."""
    note = "Clinic note\nDate of Service: 03/08/2024\nPain 4/10. Left rotation 45 degrees.\nPlan: exercises.\n"
    same = likeness.Fingerprint.of(note)
    assert likeness.compare(same, likeness.Fingerprint.of("FAX 555 0100 PAGE l/2\n" + note.replace("Plan", "P1an")))
    for other in (note.replace("03/08", "03/15"), note.replace("4/10", "5/10"), note.replace("45", "50")):
        assert likeness.compare(same, likeness.Fingerprint.of(other)) is None, other
    assert likeness.compare(same, likeness.Fingerprint.of(note + "Patient moved to another town today.\n")) is None
    undated = likeness.Fingerprint.of("Plain words without any date at all, a letter.")
    assert likeness.compare(undated, likeness.Fingerprint.of("plain  words without any date\nat all, a letter."))


@pytest.fixture(scope="module")
def flow(server, records):
    pat = server.account("samepat")["client"]
    doc = server.account("samedoc", role="specialist")["client"]
    metas = {
        n: {"title": n, **({"service_date": r.service_date} if r.service_date else {})} for n, r in records.items()
    }
    made = {n: upload(pat, r.content, r.name, metas[n], r.content_type) for n, r in records.items()}
    assert {answer.status_code for answer in made.values()} == {201}
    share = pat.post("/api/v1/shares", json={"specialist": "samedoc", "chart": True, "access": "annotate"})
    assert share.status_code == 201, share.text
    return {"pat": pat, "ids": {n: answer.json()["id"] for n, answer in made.items()}, "doc": doc}


def _pairs(found: dict, ids: dict[str, str]) -> set[frozenset]:
    names = {v: k for k, v in ids.items()}
    return {frozenset(names[r["id"]] for r in n["records"]) for n in found["near"]}


def test_suggestions_over_the_api(flow):
    """The exact copy is an exact group, the two faxes are near suggestions, no PT note of any day is."""
    pat, ids = flow["pat"], flow["ids"]
    found = pat.post(DUPS, json={}).json()
    assert [sorted(r["id"] for r in g["records"]) for g in found["exact"]] == [
        sorted([ids["ed-note"], ids["ed-note-copy"]])
    ]
    assert _pairs(found, ids) == {frozenset({"mri-cspine", "mri-cspine-fax"}), frozenset({"consult", "consult-fax"})}


def _decide(client, a: str, b: str, decision: str):
    form = {"csrf_token": client.headers["X-CSRF-Token"], "a": a, "b": b, "decision": decision}
    return client.post("/records/duplicates/resolve", data=form, headers=HTML)


def _candidates(client, patient: str | None) -> dict[str, list[str]]:
    """Each candidate's record, with the records named beside it as the same document."""
    result = client.post(CHRONO, json={"patient": patient}).json()
    return {c["record"]: sorted(a["record"] for a in c.get("also", [])) for c in result["candidates"]}


def test_a_confirmed_duplicate_appears_once(flow):
    """After "same document, cite A" the report is one candidate naming its fax, for the patient and the
    specialist; occurrences citing the report and the fax are one row of the chronology, its CSV and its PDF,
    the fax named beside it; the pair kept apart (the MRI and its fax) still shows twice."""
    pat, doc, ids = flow["pat"], flow["doc"], flow["ids"]
    before = _candidates(pat, None)
    assert ids["consult"] in before and ids["consult-fax"] in before
    assert _decide(pat, ids["consult"], ids["consult-fax"], "a-same").headers["location"].endswith("done=same")
    assert _decide(pat, ids["mri-cspine"], ids["mri-cspine-fax"], "keep").status_code == 303
    assert _pairs(pat.post(DUPS, json={}).json(), ids) == set()

    for client, patient in ((pat, None), (doc, "samepat")):
        after = _candidates(client, patient)
        assert ids["consult-fax"] not in after and after[ids["consult"]] == [ids["consult-fax"]]
        assert ids["mri-cspine"] in after and ids["mri-cspine-fax"] in after, "keeping both changes nothing"
        assert set(before) - set(after) == {ids["consult-fax"]}

    occurrence = {"type": "encounter", "date": chartgen.near_duplicates()["consult"].service_date}
    for name in ("consult", "consult-fax"):
        data = {**occurrence, "description": "Neurosurgery consultation", "citations": [{"record": ids[name]}]}
        made = doc.post(ENTRIES, json={"patient": "samepat", "kind": "occurrence", "data": data})
        assert made.status_code == 201, made.text
    result = pat.post(CHRONO, json={}).json()
    consults = [e for e in result["occurrences"] if e["data"]["description"] == "Neurosurgery consultation"]
    assert len(consults) == 1 and consults[0]["data"]["citations"][0]["record"] == ids["consult"]
    assert consults[0]["also"] == [{"record": ids["consult-fax"], "title": "consult-fax"}]
    assert ids["consult"] not in _candidates(pat, None), "cited by the occurrence, so no longer a candidate"

    rows = list(csv.DictReader(io.StringIO(doc.post(f"{CHRONO}.csv", json={"patient": "samepat"}).text)))
    consult_rows = [r for r in rows if r["description"] == "Neurosurgery consultation"]
    assert len(consult_rows) == 1 and consult_rows[0]["also_as"] == "consult-fax"
    pdf = PdfReader(io.BytesIO(doc.post(f"{CHRONO}.pdf", json={"patient": "samepat"}).content))
    printed = " ".join(" ".join(p.extract_text().split()) for p in pdf.pages)
    assert printed.count("Neurosurgery consultation") == 1 and "also as consult-fax" in printed


def test_same_document_needs_a_chart_and_the_callers_records(server, flow):
    """A specialist's own records are in no chart: "same document" is refused with a reason; another user's
    record is not found."""
    doc, ids = flow["doc"], flow["ids"]
    mine = [upload(doc, b"my own note, twice", f"n{i}.txt", {}, "text/plain").json()["id"] for i in range(2)]
    refused = _decide(doc, *mine, "a-same")
    assert refused.status_code == 400 and "Only patients have a chart" in refused.text
    assert _decide(doc, mine[0], ids["consult"], "b-same").status_code == 404


USER = (
    "INSERT INTO users (id, username, role, status, created_at, key_generation)"
    " VALUES ('u', 'u', 'patient', 'active', 0, 0)"
)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migration_adds_the_sealed_column(backend, tmp_path, request):
    """A database from before revision 0009 gets the sealed column; its "keep both" rows stay, with none."""
    url = request.getfixturevalue("pg_url") if backend == "postgresql" else f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    migrate(engine)
    older = (
        "ALTER TABLE duplicate_reviews DROP COLUMN sealed",
        "UPDATE alembic_version SET version_num = '0008'",
        USER,
        "INSERT INTO duplicate_reviews (owner_id, pair, decided_at) VALUES ('u', 'p', 1)",
    )
    with engine.begin() as conn:
        for statement in older:
            conn.execute(sa.text(statement))
    migrate(engine)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT owner_id, pair, sealed FROM duplicate_reviews")).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [("u", "p", None)]


def test_a_tampered_decision_is_left_out(tmp_path):
    """A sealed decision moved to another pair, or under another chart key, opens to nothing: both records show."""
    engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    migrate(engine)
    with engine.begin() as conn:
        conn.execute(sa.text(USER))
    reviews = DuplicateReviews(engine)
    key, chart_key = bytes(32), bytes(range(32))
    reviews.same_document("u", key, chart_key, "kept-id", "copy-id")
    assert reviews.same_documents("u", chart_key) == {"copy-id": "kept-id"}
    assert reviews.same_documents("u", bytes(32)) == {}
    reviews.same_document("u", key, chart_key, "copy-id", "kept-id")  # decided again the other way: replaced
    assert reviews.same_documents("u", chart_key) == {"kept-id": "copy-id"}
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE duplicate_reviews SET pair = 'other'"))
    assert reviews.same_documents("u", chart_key) == {}
    engine.dispose()
