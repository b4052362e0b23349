"""One identity per professional and per facility: spellings grouped where unambiguous, suggested otherwise, a
saved merge applied to the chronology's provider and facility filters, the FHIR export (one Practitioner or
Organization, each record keeping its own spelling through export and import), the search (in that chart
only) and the statements compared."""

from __future__ import annotations

import csv
import io

from pypdf import PdfReader

from medvault.mar import facilities
from medvault.mar.identity import identify
from medvault.mar.professionals import identities
from tests.support import add_entry, upload


def _merge(names: list[str], decision: str, canonical: str | None = None) -> dict:
    data = {"names": names, "decision": decision, **({"canonical": canonical} if canonical else {})}
    return {"kind": "merge", "signature_valid": True, "data": data}


def test_spellings_of_one_name_and_a_fitting_initial_are_one_person():
    people = identities(["Robert Chen MD", "Robert Chen, MD", "Dr. R. Chen", "Dr Robert  Chen"], [])
    assert (
        len({identify(people, n) for n in ("robert chen md", "Robert Chen, MD", "Dr. R. Chen", "Dr Robert Chen")}) == 1
    )


def test_an_initial_two_full_names_fit_is_left_alone():
    people = identities(["Robert Chen MD", "Dr. R. Chen", "Rachel Chen, PA-C"], [])
    assert identify(people, "Dr. R. Chen") == "Dr. R. Chen"
    assert identify(people, "Rachel Chen, PA-C") != identify(people, "Robert Chen MD")


def test_the_users_decision_overrides_the_automatic_grouping():
    names = ["Robert Chen MD", "Dr. R. Chen"]
    apart = identities(names, [_merge(["Robert Chen MD", "Dr. R. Chen"], "different")])
    assert identify(apart, "Dr. R. Chen") != identify(apart, "Robert Chen MD")
    chosen = identities([*names, "Rachel Chen"], [_merge(["Dr. R. Chen", "Robert Chen MD"], "same", "Robert Chen MD")])
    assert identify(chosen, "Dr. R. Chen") == identify(chosen, "Robert Chen MD") == "Robert Chen MD"


def _candidates(client, provider: str) -> set[str]:
    answer = client.post("/api/v1/charts/chronology", json={"provider": provider})
    assert answer.status_code == 200, answer.text
    return {c["record"] for c in answer.json()["candidates"]}


def test_a_saved_merge_changes_the_chronology_filter_and_the_fhir_export(server):
    pat = server.account("chenpatient")
    client = pat["client"]
    made = {}
    for title, provider, day in (
        ("ED note", "Robert Chen MD", "2024-03-15"),
        ("Follow-up", "Robert Chen, MD", "2024-04-02"),
        ("Referral", "Dr. R. Chen", "2024-04-20"),
        ("PT plan", "Rachel Chen, PA-C", "2024-05-01"),
    ):
        answer = upload(
            client,
            title.encode() + b" text",
            f"{title}.txt",
            {"title": title, "provider": provider, "service_date": day},
            "text/plain",
        )
        made[title] = answer.json()["id"]
    robert = {made["ED note"], made["Follow-up"]}
    assert _candidates(client, "Robert Chen") == robert  # two spellings at once; R. Chen is ambiguous
    add_entry(client, "merge", {"names": ["Dr. R. Chen", "Robert Chen MD"], "decision": "same"})
    assert _candidates(client, "Robert Chen") == robert | {made["Referral"]}
    assert _candidates(client, "Dr. R. Chen") == robert | {made["Referral"]}

    bundle = client.get("/api/v1/export/fhir").json()
    practitioners = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Practitioner"]
    spellings = sorted(sorted(n["text"] for n in p["name"]) for p in practitioners)
    assert spellings == [["Dr. R. Chen", "Robert Chen MD", "Robert Chen, MD"], ["Rachel Chen, PA-C"]]
    other = server.account("chenpatient2")["client"]
    assert other.post("/api/v1/import/fhir", json=bundle).status_code == 201
    providers = {r["title"]: r["provider"] for r in other.get("/api/v1/records").json()["items"]}
    assert providers == {
        "ED note": ["Robert Chen MD"],
        "Follow-up": ["Robert Chen, MD"],
        "Referral": ["Dr. R. Chen"],
        "PT plan": ["Rachel Chen, PA-C"],
    }


def _found(client, **body) -> set[str]:
    answer = client.post("/api/v1/records/search", json=body)
    assert answer.status_code == 200, answer.text
    return {item["id"] for item in answer.json()["items"]}


def _chart_of(client, records: list[tuple[str, str]]) -> dict[str, str]:
    made = {}
    for title, provider in records:
        meta = {"title": title, "provider": [provider], "service_date": "2024-03-15"}
        made[title] = upload(client, f"{title} text".encode(), f"{title}.txt", meta, "text/plain").json()["id"]
    assert client.post("/api/v1/charts/chronology", json={}).status_code == 200  # the chart opened once
    return made


def test_a_saved_merge_changes_search_in_its_own_chart_only(server):
    """Search by one spelling finds the others that are one person automatically; an ambiguous initial is found
    only after a merge saved in that record's chart, and a specialist reading two charts finds the other
    patient's "Dr. R. Chen" under its own name only; groups by provider count each person once."""
    a, b = server.account("idsearch_a")["client"], server.account("idsearch_b")["client"]
    doc = server.account("idsearch_doc", role="specialist")["client"]
    names = [("ED note", "Robert Chen MD"), ("Follow-up", "Robert Chen, MD"), ("Referral", "Dr. R. Chen")]
    names.append(("PT plan", "Rachel Chen, PA-C"))
    of_a = _chart_of(a, names)
    of_b = _chart_of(b, [("B ED note", "Robert Chen MD"), ("B referral", "Dr. R. Chen"), ("B PT", "Rachel Chen")])
    for patient in (a, b):
        assert patient.post("/api/v1/shares", json={"specialist": "idsearch_doc", "chart": True}).status_code == 201
    robert_a = {of_a["ED note"], of_a["Follow-up"]}
    assert _found(a, provider="Robert Chen MD") == robert_a
    assert _found(doc, provider="Robert Chen MD") == robert_a | {of_b["B ED note"]}
    assert _found(doc, provider="Dr. R. Chen") == {of_a["Referral"], of_b["B referral"]}

    add_entry(
        a, "merge", {"names": ["Dr. R. Chen", "Robert Chen MD"], "decision": "same", "canonical": "Robert Chen MD"}
    )
    assert _found(a, provider="Dr. R. Chen") == robert_a | {of_a["Referral"]}
    assert _found(doc, provider="Robert Chen MD") == robert_a | {of_a["Referral"], of_b["B ED note"]}
    assert _found(doc, provider="Dr. R. Chen") == robert_a | {of_a["Referral"], of_b["B referral"]}
    groups = a.post("/api/v1/records/search", json={"group": "provider"}).json()["groups"]
    assert groups == {"Robert Chen MD": 3, "Rachel Chen, PA-C": 1}
    html = {"accept": "text/html"}
    page = a.post("/records/search", data={"csrf_token": a.headers["X-CSRF-Token"], "group": "provider"}, headers=html)
    assert page.text.count('<span class="group-name">') == 2 and "Dr. R. Chen</span>" not in page.text


def test_statements_compare_merged_names_as_one_person(server):
    """Two spellings of one officer are two people in the comparison until a merge says they are one; then the
    "who" fact agrees and each statement's witness is shown under the person's name."""
    pat = server.account("idstatements")["client"]
    _chart_of(pat, [("Patrol log", "Joan Ruiz, RN")])  # a second J. Ruiz: the initial is ambiguous
    first = add_entry(
        pat,
        "statement",
        {"witness": "Ofc. J. Ruiz", "date": "2024-03-16", "text": "Officer Jane Ruiz saw the cyclist."},
    )
    second = add_entry(
        pat,
        "statement",
        {"witness": "Officer Jane Ruiz", "date": "2024-03-17", "text": "Ofc. J. Ruiz saw the cyclist at 9pm."},
    )
    third = add_entry(
        pat, "statement", {"witness": "Mr. B. Ortega", "date": "2024-03-17", "text": "Ofc. J. Ruiz came at 21:00."}
    )

    def compared() -> tuple[dict, dict]:
        answer = pat.post("/api/v1/charts/statements/compare", json={"statements": [first, second, third]})
        assert answer.status_code == 200, answer.text
        who = next(row for row in answer.json()["facts"] if row["fact"] == "who")
        return who, answer.json()["witnesses"]

    who, witnesses = compared()
    assert who["values"] == {
        first: ["Officer Jane Ruiz", "cyclist"],
        second: ["Ofc. J. Ruiz", "cyclist"],
        third: ["Ofc. J. Ruiz"],
    }
    assert witnesses[first] != witnesses[second]
    add_entry(
        pat,
        "merge",
        {"names": ["Ofc. J. Ruiz", "Officer Jane Ruiz"], "decision": "same", "canonical": "Officer Jane Ruiz"},
    )
    who, witnesses = compared()
    assert who["values"] == {first: ["cyclist"], second: ["cyclist"], third: ["Officer Jane Ruiz"]}
    assert witnesses == {first: "Officer Jane Ruiz", second: "Officer Jane Ruiz", third: "Mr. B. Ortega"}


def test_spellings_of_one_facility_are_grouped_and_an_other_kind_of_place_only_suggested():
    """Abbreviations, "St."/"Saint", apostrophes, case, "&" and a legal suffix make no other facility; the only
    place a name is spelled with is that name's; a medical center of the same name is a suggestion."""
    names = ["St. Mary's Hosp.", "Saint Marys Hospital", "SAINT MARY’S HOSPITAL, Springfield"]
    names += ["St. Mary's Medical Center", "The Bone & Joint Clinic, Inc.", "Bone and Joint Clinic"]
    places = facilities.identities(names, [])
    assert len({identify(places, n) for n in names[:3]}) == 1
    assert identify(places, "The Bone & Joint Clinic, Inc.") == identify(places, "Bone and Joint Clinic")
    assert identify(places, "St. Mary's Medical Center") == "St. Mary's Medical Center"
    spelled = {n.casefold(): n for n in names}
    suggested = [sorted(s["names"]) for s in facilities.suggestions(places, spelled, set())]
    assert suggested == [[identify(places, "St. Mary's Hosp."), "St. Mary's Medical Center"]]


def test_a_name_two_places_fit_is_left_alone():
    """ "St. Mary's Hospital" beside one in Springfield and one in Shelbyville is neither: suggested with both."""
    names = ["St. Mary's Hospital", "St. Mary's Hospital, Springfield", "St. Mary's Hospital, Shelbyville"]
    places = facilities.identities(names, [])
    assert len({identify(places, n) for n in names}) == 3
    suggested = facilities.suggestions(places, {n.casefold(): n for n in names}, set())
    assert sorted(sorted(s["names"]) for s in suggested) == [[names[0], names[2]], [names[0], names[1]]]


FACILITY_RECORDS = (
    ("ED note", "St. Mary's Hosp."),
    ("Discharge", "Saint Marys Hospital"),
    ("MRI", "St. Mary's Medical Center"),
    ("PT plan", "Mercy Clinic"),
)


def _chart_at(client, records) -> dict[str, str]:
    made = {}
    for title, facility in records:
        meta = {"title": title, "facility": facility, "service_date": "2024-03-15"}
        made[title] = upload(client, f"{title} text".encode(), f"{title}.txt", meta, "text/plain").json()["id"]
    assert client.post("/api/v1/charts/chronology", json={}).status_code == 200  # the chart opened once
    return made


def _at(client, facility: str) -> set[str]:
    answer = client.post("/api/v1/charts/chronology", json={"facility": facility})
    assert answer.status_code == 200, answer.text
    return {c["record"] for c in answer.json()["candidates"]}


def _organizations(client) -> list[list[str]]:
    bundle = client.get("/api/v1/export/fhir").json()
    found = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Organization"]
    return sorted(sorted([o["name"], *o.get("alias", [])]) for o in found)


def test_a_saved_facility_merge_changes_chronology_search_and_fhir_export(server):
    """Two spellings of St. Mary's Hospital are one facility at once, the medical center is only suggested; once
    the merge is saved it is one facility in the chronology's filter, the search's filter and groups and the
    FHIR export (one Organization, each record keeping its spelling through import), and not suggested again."""
    pat = server.account("facilitypatient")["client"]
    made = _chart_at(pat, FACILITY_RECORDS)
    hospital = {made["ED note"], made["Discharge"]}
    assert _at(pat, "saint mary's hospital") == hospital
    assert _found(pat, facility="St. Mary's Hosp.") == hospital
    listed = pat.post("/api/v1/charts/facilities", json={}).json()
    assert [sorted(s["names"]) for s in listed["suggestions"]] == [
        ["Saint Marys Hospital", "St. Mary's Medical Center"]
    ]
    assert _organizations(pat) == [
        ["Mercy Clinic"],
        ["Saint Marys Hospital", "St. Mary's Hosp."],
        ["St. Mary's Medical Center"],
    ]

    merge = {"names": ["St. Mary's Medical Center", "Saint Marys Hospital"], "decision": "same"}
    assert (
        pat.post("/api/v1/charts/facilities/merge", json={**merge, "canonical": "Saint Marys Hospital"}).status_code
        == 201
    )
    every = hospital | {made["MRI"]}
    assert _at(pat, "St. Mary's Medical Center") == _at(pat, "St Marys Hosp") == every
    assert _found(pat, facility="St. Mary's Hosp.") == every
    groups = pat.post("/api/v1/records/search", json={"group": "facility"}).json()["groups"]
    assert groups == {"Saint Marys Hospital": 3, "Mercy Clinic": 1}
    assert pat.post("/api/v1/charts/facilities", json={}).json()["suggestions"] == []
    assert _at(pat, "Mercy Clinic") == {made["PT plan"]}
    assert _organizations(pat) == [
        ["Mercy Clinic"],
        ["Saint Marys Hospital", "St. Mary's Hosp.", "St. Mary's Medical Center"],
    ]

    other = server.account("facilitypatient2")["client"]
    assert other.post("/api/v1/import/fhir", json=pat.get("/api/v1/export/fhir").json()).status_code == 201
    kept = {r["title"]: r["facility"] for r in other.get("/api/v1/records").json()["items"]}
    assert kept == dict(FACILITY_RECORDS)


def test_a_facility_merge_changes_nothing_in_another_patients_chart(server):
    """A specialist reading two charts finds the other patient's medical center under its own name only, in the
    search, and that patient's chronology and export keep it apart; a professionals' merge of the same names
    is no facility merge."""
    a, b = server.account("facmerge_a")["client"], server.account("facmerge_b")["client"]
    doc = server.account("facmerge_doc", role="specialist")["client"]
    of_a, of_b = _chart_at(a, FACILITY_RECORDS), _chart_at(b, FACILITY_RECORDS[1:3])
    for patient in (a, b):
        assert patient.post("/api/v1/shares", json={"specialist": "facmerge_doc", "chart": True}).status_code == 201
    names = ["St. Mary's Medical Center", "Saint Marys Hospital"]
    add_entry(a, "merge", {"names": names, "decision": "same"})  # about professionals: no facility merged
    assert _at(a, "Saint Marys Hospital") == {of_a["ED note"], of_a["Discharge"]}
    add_entry(a, "merge", {"names": names, "decision": "same", "of": "facility"})
    assert _at(a, "Saint Marys Hospital") == {of_a["ED note"], of_a["Discharge"], of_a["MRI"]}
    assert _found(doc, facility="St. Mary's Medical Center") == {
        of_a["ED note"],
        of_a["Discharge"],
        of_a["MRI"],
        of_b["MRI"],
    }
    assert _found(b, facility="St. Mary's Medical Center") == {of_b["MRI"]}
    assert _at(b, "Saint Marys Hospital") == {of_b["Discharge"]}
    assert _organizations(b) == [["Saint Marys Hospital"], ["St. Mary's Medical Center"]]
    groups = doc.post("/api/v1/records/search", json={"group": "facility"}).json()["groups"]
    assert groups == {"Saint Marys Hospital": 4, "St. Mary's Medical Center": 1, "Mercy Clinic": 1}


def test_the_facilities_page_suggests_and_its_form_merges(server):
    """The chart's facilities page lists each facility once with its other spellings and suggests the medical
    center; its "Same facility" form saves the merge the chronology then applies."""
    pat = server.account("facilitypage")["client"]
    made = _chart_at(pat, FACILITY_RECORDS[:3])
    html = {"accept": "text/html"}
    page = pat.get("/chart/facilities", headers=html)
    assert page.status_code == 200 and "Saint Marys Hospital</td><td>St. Mary&#39;s Hosp.</td>" in page.text
    assert 'aria-label="Same facility: Saint Marys Hospital and St. Mary&#39;s Medical Center"' in page.text
    form = {"csrf_token": pat.headers["X-CSRF-Token"], "names": ["Saint Marys Hospital", "St. Mary's Medical Center"]}
    saved = pat.post("/chart/facilities/merge", data={**form, "decision": "same"}, headers=html)
    assert saved.status_code == 303 and saved.headers["location"] == "/chart/facilities?done=merged"
    assert _at(pat, "Saint Marys Hospital") == set(made.values())
    assert 'id="no-suggestions"' in pat.get("/chart/facilities", headers=html).text


def test_exports_and_result_rows_print_the_identity_beside_the_spelling_as_written(server):
    """After a facility merge and with a professional's spellings grouped, the chronology's CSV, PDF and page
    and the search's result rows print each identity's name, with the spelling as written beside it where it
    differs; the signed entry keeps its own words; the professionals list names the facility once."""
    pat = server.account("facilityshown")["client"]
    made = _chart_at(pat, FACILITY_RECORDS[:3])
    merge = {"names": ["St. Mary's Medical Center", "Saint Marys Hospital"], "decision": "same", "of": "facility"}
    add_entry(pat, "merge", {**merge, "canonical": "Saint Marys Hospital"})
    data = {"type": "test-result", "date": "2024-03-16", "facility": "St. Mary's Medical Center"}
    entry = add_entry(pat, "occurrence", {**data, "providers": ["Dr. R. Chen", "Robert Chen MD"]})
    written = "Saint Marys Hospital (as written: St. Mary's Medical Center)"
    chrono = pat.post("/api/v1/charts/chronology", json={}).json()
    [shown] = chrono["occurrences"]
    assert shown["id"] == entry and shown["data"]["facility"] == "St. Mary's Medical Center"
    assert shown["identities"]["facility"] == "Saint Marys Hospital"
    assert len(set(shown["identities"]["providers"])) == 1, "two spellings of Robert Chen are one person"
    person = shown["identities"]["providers"][0]
    expected = [p if p == person else f"{person} (as written: {p})" for p in shown["data"]["providers"]]
    assert sum(p == person for p in shown["data"]["providers"]) == 1
    row = next(csv.DictReader(io.StringIO(pat.post("/api/v1/charts/chronology.csv", json={}).text)))
    assert row["facility"] == written and row["providers"] == "; ".join(expected)
    pdf = PdfReader(io.BytesIO(pat.post("/api/v1/charts/chronology.pdf", json={}).content))
    text = " ".join(" ".join(page.extract_text().split()) for page in pdf.pages)
    assert "Saint Marys Hospital (as written: St. Mary's Medical Center)" in text
    page = pat.get("/chart", headers={"accept": "text/html"}).text
    assert "Saint Marys Hospital (as written: St. Mary&#39;s Medical Center)" in page
    assert "Saint Marys Hospital (as written: St. Mary&#39;s Hosp.)" in page, "a candidate record's spelling too"
    items = pat.post("/api/v1/records/search", json={"facility": "Saint Marys Hospital"}).json()["items"]
    assert {i["id"]: i["identities"]["facility"] for i in items} == dict.fromkeys(made.values(), "Saint Marys Hospital")
    html = pat.post(
        "/records/search",
        data={"csrf_token": pat.headers["X-CSRF-Token"], "facility": "Saint Marys Hospital"},
        headers={"accept": "text/html"},
    ).text
    assert "<td>Saint Marys Hospital (as written: St. Mary&#39;s Medical Center)</td>" in html
    assert "<td>Saint Marys Hospital</td>" in html, "the canonical spelling is printed once"
    listed = pat.post("/api/v1/charts/professionals", json={}).json()["professionals"]
    assert [p["facilities"] for p in listed if p["name"] == person] == [["Saint Marys Hospital"]]
