"""One identity per professional: spellings grouped where unambiguous, suggested otherwise, a saved merge
applied to the chronology's provider filter and to the FHIR export (one Practitioner, each record keeping
its own spelling through export and import)."""

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
