"""The account pages in a real browser: changing the password, logging out everywhere, and resetting a
forgotten password with the recovery key (which shows a new key once)."""

from __future__ import annotations

from tests.browser.conftest import assert_friendly, shot, sign_in

PASSWORD = "the first long passphrase"
NEW_PASSWORD = "the second long passphrase"


def _change(page, current: str, new: str, confirm: str) -> str:
    page.get_by_label("Current password").fill(current)
    page.get_by_label("New password (at least 10 characters)").fill(new)
    page.get_by_label("Repeat the new password").fill(confirm)
    page.get_by_role("button", name="Change password").click()
    return page.locator("#account-message").inner_text()


def test_change_password_then_sign_in_with_it(new_page, server):
    """A wrong current password or a mismatched confirmation is refused with a message; a correct change
    makes the new password the one that signs in, and the old one no longer does."""
    server.account("ada", password=PASSWORD)
    page = new_page()
    sign_in(page, server, "ada", PASSWORD)
    page.get_by_role("link", name="Account").click()
    shot(page, "account")
    assert _change(page, PASSWORD, NEW_PASSWORD, NEW_PASSWORD + "!") == "The two new passwords differ"
    assert _change(page, "not my password", NEW_PASSWORD, NEW_PASSWORD) == "Your current password is not right"
    assert _change(page, PASSWORD, NEW_PASSWORD, NEW_PASSWORD).startswith("Password changed")
    shot(page, "account-password-changed")
    fresh = new_page()
    sign_in(fresh, server, "ada", PASSWORD)
    assert fresh.get_by_role("alert").inner_text() == "Invalid username or password"
    sign_in(fresh, server, "ada", NEW_PASSWORD)
    assert fresh.url.endswith("/dashboard")
    assert_friendly(page)


def test_log_out_everywhere_ends_other_sessions(new_page, server):
    """Both browsers are listed as sessions; "Log out everywhere" in one signs the other out as well."""
    server.account("bea", password=PASSWORD)
    laptop, phone = new_page(), new_page()
    sign_in(laptop, server, "bea", PASSWORD)
    sign_in(phone, server, "bea", PASSWORD)
    laptop.goto(f"{server.base}/account")
    rows = laptop.locator("table.sessions tbody tr")
    assert rows.count() >= 2
    assert laptop.locator("table.sessions").get_by_text("this browser").count() == 1
    assert phone.goto(f"{server.base}/records").status == 200
    with laptop.expect_navigation():
        laptop.get_by_role("button", name="Log out everywhere").click()
    assert laptop.url.endswith("/login")
    response = phone.goto(f"{server.base}/records")
    assert response.status == 401 and phone.get_by_role("heading", name="Please sign in").is_visible()
    assert laptop.goto(f"{server.base}/account").status == 401
    assert_friendly(phone)


def test_recovery_key_resets_password(new_page, server):
    """The recovery page with the key sets a new password, shows a fresh recovery key once with a warning,
    and the records are still there after signing in; a wrong key is refused."""
    bob = server.account("bob", password=PASSWORD)
    uploaded = bob["client"].post(
        "/api/v1/records", files={"file": ("kept.txt", b"still mine", "text/plain")}, data={"metadata": "{}"}
    )
    assert uploaded.status_code == 201
    page = new_page()
    page.goto(f"{server.base}/login")
    page.get_by_role("link", name="Use your recovery key").click()
    shot(page, "recover")
    page.get_by_label("User name").fill("bob")
    page.get_by_label("Recovery key").fill("AAAA-BBBB-CCCC-DDDD")
    page.get_by_label("New password (at least 10 characters)").fill(NEW_PASSWORD)
    page.get_by_label("Repeat the new password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Reset my password").click()
    assert page.locator("#recover-message").inner_text() == "Invalid user name or recovery key"
    page.get_by_label("Recovery key").fill(bob["recovery_key"])
    page.get_by_label("New password (at least 10 characters)").fill(NEW_PASSWORD)
    page.get_by_label("Repeat the new password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Reset my password").click()
    assert "shown only once" in page.get_by_role("alert").inner_text()
    fresh_key = page.locator("#recovery-key").inner_text()
    assert fresh_key and fresh_key != bob["recovery_key"]
    shot(page, "recover-new-key")
    page.get_by_role("link", name="I have saved it: sign in").click()
    sign_in(page, server, "bob", NEW_PASSWORD)
    assert page.get_by_role("link", name="kept.txt").is_visible()
    assert_friendly(page)
