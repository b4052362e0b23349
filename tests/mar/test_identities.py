"""One identity per professional: spellings grouped where unambiguous, suggested otherwise, a saved merge
applied to the chronology's provider filter, the FHIR export (one Practitioner, each record keeping its own
spelling through export and import), the search (in that chart only) and the statements compared."""

from __future__ import annotations

from medvault.mar.professionals import identify, identities
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
