"""A synthetic chart at modest scale, generated deterministically (seeded, a fixed reference date), with planted
cases found through the API: a treatment gap, an exact and a near duplicate, a superseded version; and real
sample files: pydicom's bundled DICOM files and generated PDFs with text on each page, byte-exact round trips."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import itertools
import random
import re
from pathlib import Path

import pytest

from tests.support import upload

REFERENCE = dt.date(2025, 6, 30)  # fixed: the data never depends on today
SEED = 20261126
RECORDS_PER_PATIENT = 60
GAP = (dt.date(2024, 7, 1), dt.date(2024, 10, 31))  # patient 0 has no record dated in here
FACILITIES = ["St. Mary", "General Hospital", "Riverside Clinic", "Northside Imaging"]
PROFESSIONS = ["cardiology", "orthopaedics", "radiology", "general practice", "physiotherapy"]
TYPES = ["Letter", "Lab", "Imaging", "Discharge summary", "Note"]
GIVEN = ["Ada", "John", "Mei", "Omar", "Grace", "Lars", "Ines", "Kofi"]
FAMILY = ["Smith", "Lovelace", "Okafor", "Berg", "Nakamura", "Silva"]


def make_pdf(pages: list[str]) -> bytes:
    """A small valid PDF with one line of text per page (Helvetica), xref offsets computed."""
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", ""]
    kids = []
    for text in pages:
        safe = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        stream = f"BT /F1 12 Tf 72 720 Td ({safe}) Tj ET".encode()
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream.decode()}\nendstream")
        content = len(objects)
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {content} 0 R "
            f"/Resources << /Font << /F1 {{font}} 0 R >> >> >>"
        )
        kids.append(len(objects))
    objects.append("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    font = len(objects)
    objects = [o.replace("{font}", str(font)) for o in objects]
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(f'{k} 0 R' for k in kids)}] /Count {len(kids)} >>"
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def generate(rng: random.Random) -> dict:
    """Professionals and, per patient, records (metadata + bytes) dated before the reference date."""
    professionals = [
        {"name": f"Dr. {rng.choice(GIVEN)} {rng.choice(FAMILY)}", "profession": rng.choice(PROFESSIONS)}
        for _ in range(12)
    ]
    patients = []
    for p in range(2):
        records = []
        start = dt.date(2023, 1, 1)
        while len(records) < RECORDS_PER_PATIENT:
            day = start + dt.timedelta(days=rng.randrange((REFERENCE - start).days + 1))
            if p == 0 and GAP[0] <= day <= GAP[1]:
                continue
            doc = rng.choice(professionals)
            kind = rng.choice(TYPES)
            meta = {
                "title": f"{kind} {len(records):03d}",
                "service_date": day.isoformat(),
                "facility": rng.choice(FACILITIES),
                "provider": [doc["name"]],
                "type": kind,
                "custom": {"seq": len(records)},
            }
            if len(records) % 10 == 0:
                # PDF text is read (search, near duplicates), so each page says something of its own
                pages = [
                    f"Patient {p} {kind} {len(records):03d} page {i + 1} seen by {doc['name']}, ref "
                    + hashlib.sha256(f"{p}/{len(records)}/{i}".encode()).hexdigest()[:16]
                    for i in range(rng.randint(1, 3))
                ]
                records.append((meta, make_pdf(pages), f"r{len(records)}.pdf", "application/pdf"))
            else:
                body = f"{kind} for patient {p} on {day}. {rng.random():.12f}\n".encode()
                records.append((meta, body, f"r{len(records)}.txt", "text/plain"))
        patients.append(records)
    return {"professionals": professionals, "patients": patients}


def test_generation_is_deterministic():
    """The same seed generates the same chart, and no record is dated after the fixed reference date."""
    first, second = generate(random.Random(SEED)), generate(random.Random(SEED))
    assert first == second
    dates = [m["service_date"] for records in first["patients"] for m, *_ in records]
    assert max(dates) <= REFERENCE.isoformat()


@pytest.fixture(scope="module")
def chart(server):
    data = generate(random.Random(SEED))
    people = [server.account(f"synpat{i}") for i in range(2)]
    ids: list[list[str]] = []
    for account, records in zip(people, data["patients"], strict=True):
        client = account["client"]
        mine = []
        for meta, body, name, ctype in records:
            response = upload(client, body, name, meta, ctype)
            assert response.status_code == 201, response.text
            assert response.json()["duplicate_of"] is None
            mine.append(response.json()["id"])
        ids.append(mine)
    return {"people": people, "data": data, "ids": ids, "server": server}


def test_treatment_gap_in_the_chronology(chart):
    """The records' dates become chronology candidates; accepted as occurrences, the planted gap is flagged."""
    client = chart["people"][0]["client"]
    result = client.post("/api/v1/charts/chronology", json={})
    assert result.status_code == 200, result.text
    candidates = result.json()["candidates"]
    assert len(candidates) == RECORDS_PER_PATIENT
    for c in candidates:
        data = {"type": "encounter", "date": c["date"], "description": c["description"]}
        data["citations"] = [{"record": c["record"]}]
        entry = client.post("/api/v1/charts/entries", json={"patient": None, "kind": "occurrence", "data": data})
        assert entry.status_code == 201, entry.text
    chrono = client.post("/api/v1/charts/chronology", json={"gap_days": 60}).json()
    assert chrono["candidates"] == []
    gaps = chrono["gaps"]
    assert any(g["from"] <= GAP[0].isoformat() and g["to"] >= GAP[1].isoformat() for g in gaps), gaps
    # the other patient's dates have no such hole: checked on the generated dates themselves
    other = sorted(dt.date.fromisoformat(m["service_date"]) for m, *_ in chart["data"]["patients"][1])
    assert not any(a < GAP[0] and b > GAP[1] and (b - a).days > 120 for a, b in itertools.pairwise(other))


def test_planted_exact_and_near_duplicates_and_a_version(chart):
    """A re-uploaded record is reported as an exact duplicate and a retyped copy as a near one, a new version supersedes
    its record in lookups and search, and the other patient's chart has no duplicates."""
    client = chart["people"][1]["client"]
    meta, body, name, ctype = chart["data"]["patients"][1][5]
    again = upload(client, body, "copy-" + name, meta, ctype)
    assert again.json()["duplicate_of"] == chart["ids"][1][5]
    near_body = b"   " + body.upper().replace(b" ", b"  ")
    near = upload(client, near_body, "retyped.txt", {"title": "Retyped"}, "text/plain").json()["id"]
    old = chart["ids"][1][7]
    version = client.post(
        f"/api/v1/records/{old}/versions", files={"file": ("v2.txt", b"corrected text", "text/plain")}
    ).json()
    found = client.post("/api/v1/records/duplicates", json={}).json()
    assert [[r["id"] for r in g["records"]] for g in found["exact"]] == [[chart["ids"][1][5], again.json()["id"]]]
    near_pairs = [{r["id"] for r in n["records"]} for n in found["near"] if n["reason"] == "same text"]
    assert {chart["ids"][1][5], near} in near_pairs
    assert client.get(f"/api/v1/records/{old}").json()["superseded_by"] == version["id"]
    assert version["versions"] == [old, version["id"]]
    search = client.post("/api/v1/records/search", json={"custom": {"seq": 7}}).json()["items"]
    assert {r["id"]: r["superseded"] for r in search} == {old: True, version["id"]: False}
    # the first patient's chart is untouched by all this
    assert chart["people"][0]["client"].post("/api/v1/records/duplicates", json={}).json() == {"exact": [], "near": []}


DICOM_DIR = Path(__import__("pydicom").__file__).parent / "data" / "test_files"


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm"])
def test_dicom_sample_files_round_trip_byte_exact(chart, name):
    """pydicom's sample DICOM files come back byte for byte and still read as the same SOP instance."""
    import pydicom

    client = chart["people"][0]["client"]
    raw = (DICOM_DIR / name).read_bytes()
    response = upload(client, raw, name, {"title": name, "type": "Imaging"}, "application/dicom")
    assert response.status_code == 201, response.text
    got = client.get(f"/api/v1/records/{response.json()['id']}/content")
    assert got.status_code == 200 and got.content == raw
    original = pydicom.dcmread(io.BytesIO(raw))
    assert pydicom.dcmread(io.BytesIO(got.content)).SOPInstanceUID == original.SOPInstanceUID


def test_generated_pdfs_round_trip_with_text_on_each_page(chart):
    """Each generated PDF has its line of text on every page and a cross-reference table a reader can follow, and comes
    back byte for byte with its metadata."""
    client = chart["people"][0]["client"]
    for index, (meta, body, _, ctype) in enumerate(chart["data"]["patients"][0]):
        if ctype != "application/pdf":
            continue
        pages = len(re.findall(rb"/Type /Page\b", body))
        assert pages >= 1 and len(re.findall(rb"\(Patient 0 .* page \d+ seen by .*\) Tj", body)) == pages
        assert body.startswith(b"%PDF-1.4") and body.rstrip().endswith(b"%%EOF")
        got = client.get(f"/api/v1/records/{chart['ids'][0][index]}/content")
        assert got.content == body
        record = client.get(f"/api/v1/records/{chart['ids'][0][index]}").json()
        assert record["content_type"] == "application/pdf" and record["title"] == meta["title"]
        # the cross-reference table points at each object: a reader can open the file
        xref = int(body.rsplit(b"startxref\n", 1)[1].split(b"\n", 1)[0])
        offsets = [int(line[:10]) for line in body[xref:].split(b"\n")[3:] if line.endswith(b" n ")]
        assert all(re.match(rb"%d 0 obj" % (n + 1), body[o:]) for n, o in enumerate(offsets))
