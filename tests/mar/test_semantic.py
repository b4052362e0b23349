"""Search by meaning over the real API: records found by what they mean when they share no word with the query,
ordered most similar first across pages, combined with the filters, the model loaded from its installed package
only, bad input refused, and the results page's field."""

from __future__ import annotations

import pytest

from medvault.mar import semantic
from tests.support import upload

NOTES = {
    "Ortho clinic": "Distal radius fracture of the right forearm, cast applied, review in six weeks.",
    "Police report": "Collision at the intersection, the vehicle was travelling at speed, two witnesses.",
    "Invoice": "Billing statement: amount due, insurance claim submitted, payment by card.",
    "Physiotherapy": "Range of motion exercises for the shoulder, home programme given.",
    "Cardiology": "Chest pain, troponin normal, electrocardiogram without ischaemia.",
}
QUERIES = {
    "broken wrist": "Ortho clinic",
    "car crash": "Police report",
    "bill to pay": "Invoice",
    "rehab workout": "Physiotherapy",
    "heart attack": "Cardiology",
}


@pytest.fixture(scope="module")
def pat(server):
    client = server.account("semanticpat")["client"]
    for title, text in NOTES.items():
        meta = {"title": title, "facility": "Mercy Clinic" if title == "Invoice" else "City Hospital"}
        assert upload(client, text.encode(), f"{title}.txt", meta, "text/plain").status_code == 201
    return client


def _titles(client, **body) -> list[str]:
    answer = client.post("/api/v1/records/search", json=body)
    assert answer.status_code == 200, answer.text
    return [item["title"] for item in answer.json()["items"]]


def test_each_query_finds_the_record_it_means_first_without_a_shared_word(pat):
    for query, title in QUERIES.items():
        assert not _titles(pat, q=query), f"{query!r} shares no word with any record"
        found = _titles(pat, similar=query)
        assert found[0] == title, (query, found)
        assert sorted(found) == sorted(NOTES), "it orders the matches; it removes none"


def test_pages_follow_the_order_of_meaning_and_filters_still_apply(pat):
    whole = _titles(pat, similar="broken wrist", limit=5)
    first = pat.post("/api/v1/records/search", json={"similar": "broken wrist", "limit": 2}).json()
    rest = pat.post("/api/v1/records/search", json={"similar": "broken wrist", "limit": 2, "cursor": first["next"]})
    assert [i["title"] for i in first["items"] + rest.json()["items"]] == whole[:4]
    assert _titles(pat, similar="bill to pay", facility="City Hospital")[0] != "Invoice"
    assert _titles(pat, similar="bill to pay", facility="Mercy Clinic") == ["Invoice"]


def test_the_model_comes_from_the_installed_package_and_downloads_are_off():
    model = semantic._model()
    assert model.embedding.shape[1] == 256
    assert semantic.vectors([""]).tolist() == [[0.0] * 256], "an empty text is similar to nothing"


def test_bad_searches_by_meaning_get_clear_answers(pat):
    for body in ({"similar": ""}, {"similar": 5}, {"similar": "x" * 501}, {"similar": "wrist", "sort": "title"}):
        answer = pat.post("/api/v1/records/search", json=body)
        assert answer.status_code == 400 and answer.json()["detail"], (body, answer.text)
    assert pat.post("/api/v1/records/search", json={"sort": "relevance"}).status_code == 400


def test_the_results_page_orders_by_meaning(pat):
    form = {"csrf_token": pat.headers["X-CSRF-Token"], "similar": "car crash", "sort": "title"}
    page = pat.post("/records/search", data=form, headers={"accept": "text/html"})
    assert page.status_code == 200
    table = page.text[page.text.index('id="search-results"') :]
    assert table.index("Police report") < min(table.index(t) for t in NOTES if t != "Police report")
