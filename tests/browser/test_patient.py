"""A patient in a real browser: accepting an invitation, uploading with progress bars (50 MiB included),
viewing, previewing, downloading and deleting records, isolation from other patients, friendly errors,
refused cross-site logins, and a scanner banned while the patient keeps working."""

from __future__ import annotations

import time

import pytest

from tests.attackers import client_from, is_refused
from tests.browser.conftest import PHONE, assert_friendly, shot, sign_in
from tests.support import png_bytes

PASSWORD = "a long patient passphrase"
BIG = 50 * 1024 * 1024

# Records every value the upload progress bars take, as the page sets them (the bar's `value` reflects
# into its attribute); read back by the test to prove the bar moves through intermediate values.
WATCH_PROGRESS = """() => {
  window.__progress = {};
  new MutationObserver((changes) => {
    for (const c of changes) {
      const bars = c.type === "attributes" ? [c.target] : Array.from(document.querySelectorAll("#uploads progress"));
      for (const bar of bars) {
        if (bar.tagName !== "PROGRESS") continue;
        const name = bar.getAttribute("aria-label");
        (window.__progress[name] = window.__progress[name] || []).push(Number(bar.value));
      }
    }
  }).observe(document.getElementById("uploads"), {subtree: true, childList: true, attributes: true,
                                                  attributeFilter: ["value"]});
}"""


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A text letter, a PNG scan and a 50 MiB file on disk for the file input."""
    folder = tmp_path_factory.mktemp("uploads")
    letter = folder / "letter.txt"
    letter.write_text("Discharge letter\nDiagnosis: sprained ankle <script>alert(1)</script>\n")
    scan = folder / "xray.png"
    scan.write_bytes(png_bytes())
    big = folder / "big-scan.bin"
    with big.open("wb") as out:
        block = bytes(range(256)) * 4096  # 1 MiB
        for _ in range(BIG // len(block)):
            out.write(block)
    return {"letter": letter, "scan": scan, "big": big}


def _accept_in_browser(page, server, name: str) -> str:
    code = server.invite(name, "patient")
    page.goto(f"{server.base}/invite/{code}")
    page.get_by_label("New password").fill(PASSWORD)
    page.get_by_label("Repeat the password").fill(PASSWORD)
    page.get_by_role("button", name="Create my account").click()
    page.locator("#recovery-key").wait_for()
    return page.locator("#recovery-key").inner_text()


def _record_ids(page) -> dict[str, str]:
    links = page.locator("table.records a")
    return {
        links.nth(i).inner_text(): links.nth(i).get_attribute("href").rsplit("/", 1)[1] for i in range(links.count())
    }


def test_invitation_then_sign_in(new_page, server):
    """An invitation opened in the browser sets the password, shows the recovery key once with a warning,
    and the new password then signs in to the records page."""
    page = new_page()
    page.goto(f"{server.base}/invite/{server.invite('paula', 'patient')}")
    shot(page, "invite")
    page.get_by_label("New password").fill(PASSWORD)
    page.get_by_label("Repeat the password").fill(PASSWORD + "x")
    page.get_by_role("button", name="Create my account").click()
    assert "The two passwords differ" in page.get_by_role("alert").inner_text()
    page.get_by_label("New password").fill(PASSWORD)
    page.get_by_label("Repeat the password").fill(PASSWORD)
    page.get_by_role("button", name="Create my account").click()
    warning = page.get_by_role("alert").inner_text()
    assert "shown only once" in warning and "recovery key" in warning.lower()
    key = page.locator("#recovery-key").inner_text()
    assert len(key.replace("-", "")) >= 32
    shot(page, "invite-recovery-key")
    page.get_by_role("link", name="I have saved it: sign in").click()
    shot(page, "login")
    page.get_by_label("User name").fill("paula")
    page.get_by_label("Password").fill("wrong password!")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text() == "Invalid username or password"
    sign_in(page, server, "paula", PASSWORD)
    assert page.url.endswith("/dashboard")  # a patient lands on their dashboard
    assert page.get_by_role("heading", name="Hello, paula").is_visible()
    assert_friendly(page)


def test_upload_view_preview_download_delete(new_page, server, files):
    """Several files uploaded through the file input show progress bars that move through intermediate
    values to 100 %; the list shows them; a record shows its metadata, a valid signature and a preview;
    download returns the same bytes; delete removes it."""
    page = new_page()
    _accept_in_browser(page, server, "quinn")
    sign_in(page, server, "quinn", PASSWORD)
    page.goto(f"{server.base}/records")
    shot(page, "records-empty")
    page.evaluate(WATCH_PROGRESS)
    page.locator("#file").set_input_files([str(files["letter"]), str(files["scan"]), str(files["big"])])
    started = time.monotonic()
    page.get_by_role("button", name="Upload").click()
    big_bar = page.get_by_label("Upload progress of big-scan.bin")
    big_bar.wait_for()
    page.wait_for_function(
        "() => { const b = document.querySelector('progress[aria-label$=\"big-scan.bin\"]');"
        " return b && b.value > 0 && b.value < 100; }",
        polling=10,
    )
    shot(page, "records-upload-in-progress")
    page.wait_for_function("() => document.querySelectorAll('#uploads li[data-state=done]').length === 3")
    seen = page.evaluate("window.__progress")
    big_values = seen["Upload progress of big-scan.bin"]
    assert any(0 < v < 100 for v in big_values), big_values
    assert big_values[-1] == 100 and big_values == sorted(big_values), big_values
    for name in ("letter.txt", "xray.png"):
        assert seen[f"Upload progress of {name}"][-1] == 100
    shot(page, "records-upload-done")
    page.wait_for_url(f"{server.base}/records")  # the page reloads once every upload succeeded
    page.locator("table.records").wait_for()
    ids = _record_ids(page)
    assert set(ids) == {"letter.txt", "xray.png", "big-scan.bin"}, ids
    print(f"3 uploads (50 MiB included) in {time.monotonic() - started:.1f} s")
    shot(page, "records")

    page.get_by_role("link", name="letter.txt").click()
    assert page.locator("#signature").inner_text() == "signature valid"
    assert "quinn" in page.locator("dl.meta").inner_text()
    preview = page.locator("#text-preview").inner_text()
    assert "Diagnosis: sprained ankle <script>alert(1)</script>" in preview  # shown as text, never run
    shot(page, "record-text")

    page.goto(f"{server.base}/records/{ids['xray.png']}")
    image = page.locator("#image-preview")
    image.wait_for()
    page.wait_for_function("() => document.getElementById('image-preview').complete")
    assert image.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [96, 64]
    assert page.locator("#signature").inner_text() == "signature valid"
    shot(page, "record-view")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download").click()
    download = download_info.value
    assert download.suggested_filename == "xray.png"
    with open(download.path(), "rb") as got:
        assert got.read() == files["scan"].read_bytes()

    page.get_by_role("button", name="Delete xray.png").click()
    page.wait_for_url(f"{server.base}/records")
    assert set(_record_ids(page)) == {"letter.txt", "big-scan.bin"}
    assert page.request.get(f"{server.base}/api/v1/records/{ids['xray.png']}").status == 404
    assert_friendly(page)


def test_phone_width(new_page, server):
    """At 375 px wide, login and records fit without horizontal scrolling and stay usable."""
    page = new_page(viewport=PHONE)
    page.goto(f"{server.base}/login")
    shot(page, "phone-login")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    _accept_in_browser(page, server, "rosa")
    sign_in(page, server, "rosa", PASSWORD)
    page.goto(f"{server.base}/records")
    page.locator("#file").set_input_files(
        [{"name": "blood-test.txt", "mimeType": "text/plain", "buffer": b"Haemoglobin 14.1 g/dL"}]
    )
    page.get_by_role("button", name="Upload").click()
    page.locator("table.records").wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "phone-records")
    page.get_by_role("link", name="blood-test.txt").click()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "phone-record-view")


def test_keyboard_only_sign_in(new_page, server):
    """The login form works from the keyboard alone, and the focused field shows a visible outline."""
    server.account("sam", password=PASSWORD)
    page = new_page()
    page.goto(f"{server.base}/login")
    skip = page.get_by_role("link", name="Skip to content")
    skip.focus()
    box = skip.bounding_box()
    assert box and box["x"] >= 0 and box["y"] >= 0  # hidden off-screen until focused, then visible
    page.goto(f"{server.base}/login")
    assert page.evaluate("document.activeElement.id") == "username"  # the form is ready to type into
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"
    page.keyboard.type("sam")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.endswith("/dashboard")
    for label in page.locator("input:not([type=hidden]), select").all():
        ident = label.get_attribute("id")
        assert ident and page.locator(f"label[for='{ident}']").count() == 1, ident


def test_other_patients_record_is_not_found(new_page, server):
    """A second patient opening the first one's record URL gets a friendly 404 page, never the record."""
    owner = server.account("tara", password=PASSWORD)
    rid = owner["client"].post(
        "/api/v1/records",
        files={"file": ("private.txt", b"tara's private note", "text/plain")},
        data={"metadata": '{"title": "Tara private"}'},
    )
    assert rid.status_code == 201, rid.text
    record_id = rid.json()["id"]
    server.account("uma", password=PASSWORD)
    page = new_page()
    sign_in(page, server, "uma", PASSWORD)
    assert "Tara private" not in page.content()
    response = page.goto(f"{server.base}/records/{record_id}")
    assert response.status == 404
    assert page.get_by_role("heading", name="Not found").is_visible()
    assert "tara" not in page.content().lower()
    shot(page, "error-404")
    assert_friendly(page)
    assert page.goto(f"{server.base}/records/{record_id}/download").status == 404
    assert page.goto(f"{server.base}/records/not-a-uuid").status == 404
    assert_friendly(page)
    signed_out = new_page()
    response = signed_out.goto(f"{server.base}/records")
    assert response.status == 401 and signed_out.get_by_role("link", name="Sign in").is_visible()
    assert_friendly(signed_out)
    response = page.goto(f"{server.base}/admin")
    assert response.status == 403 and page.get_by_role("heading", name="Not allowed").is_visible()
    assert_friendly(page)


def test_cross_site_login_refused(new_page, server):
    """A page on another origin posting the login form is refused (403) and gets no session."""
    server.account("vera", password=PASSWORD)
    page = new_page()
    evil = f"""<!doctype html><form method="post" action="{server.base}/login">
      <input name="username" value="vera"><input name="password" value="{PASSWORD}">
      <button type="submit">Win a prize</button></form>"""
    page.context.route("https://evil.example/**", lambda route: route.fulfill(body=evil, content_type="text/html"))
    page.goto("https://evil.example/")
    with page.expect_navigation():
        page.get_by_role("button", name="Win a prize").click()
    assert "Cross-site request refused" in page.content()
    assert not [c for c in page.context.cookies() if c["name"] == "mv_session"]
    forged = page.request.post(
        f"{server.base}/login",
        form={"username": "vera", "password": PASSWORD},
        headers={"Origin": "https://evil.example"},
        max_redirects=0,
    )
    assert forged.status == 403


def test_scanner_banned_while_patient_works(new_page, server):
    """While a patient's page is open, a scanner on another address is banned; the patient then moves
    between pages and uploads as before."""
    server.account("wes", password=PASSWORD)
    page = new_page()
    sign_in(page, server, "wes", PASSWORD)
    with client_from(server, "127.0.0.77") as attacker:
        for path in ("/.env", "/wp-login.php", "/.git/config"):
            attacker.get(path)
    assert is_refused(server, "127.0.0.77")
    page.get_by_role("link", name="Account").click()
    assert page.get_by_role("heading", name="wes").is_visible()
    page.get_by_role("link", name="Records").click()
    page.locator("#file").set_input_files(
        [{"name": "after-attack.txt", "mimeType": "text/plain", "buffer": b"still working"}]
    )
    page.get_by_role("button", name="Upload").click()
    page.get_by_role("link", name="after-attack.txt").wait_for()
    assert is_refused(server, "127.0.0.77")


def test_metadata_editing_makes_a_signed_new_version(new_page, server):
    """Editing a record's details in the browser saves a new signed version; a future date is refused kindly."""
    owner = server.account("wren", password=PASSWORD)
    created = owner["client"].post(
        "/api/v1/records",
        files={"file": ("lab.txt", b"potassium 4.1", "text/plain")},
        data={"metadata": '{"title": "Lab", "facility": "Old Clinic"}'},
    )
    assert created.status_code == 201, created.text
    page = new_page()
    sign_in(page, server, "wren", PASSWORD)
    page.goto(f"{server.base}/records/{created.json()['id']}")
    page.locator("#edit-metadata summary").click()
    page.fill("#edit-service_date", "2999-01-01")
    page.get_by_role("button", name="Save as new version").click()
    assert page.get_by_role("alert").filter(has_text="service_date").is_visible()
    page.fill("#edit-service_date", "2024-02")
    page.fill("#edit-facility", "St. Mary")
    page.fill("#edit-tags", "blood, routine")
    page.get_by_role("button", name="Save as new version").click()
    page.wait_for_url(lambda url: created.json()["id"] not in url and "/records/" in url)
    assert page.locator("dd", has_text="St. Mary").is_visible()
    assert page.locator("dd", has_text="blood, routine").is_visible()
    assert page.locator("#signature").inner_text() == "signature valid"
    assert "potassium 4.1" in page.locator("#text-preview").inner_text()
    shot(page, "record-edited")
    old = owner["client"].get(f"/api/v1/records/{created.json()['id']}").json()
    assert old["superseded"] is True
