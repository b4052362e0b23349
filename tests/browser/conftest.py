"""Fixtures for end-to-end page tests: Debian's Chromium driven by Playwright's sync API.

Playwright's own browser downloads are not used (no internet on CI runners); the system Chromium is.
Every step is bounded by short timeouts, and each main page is saved as a screenshot into
`test-output/screenshots/` for people reviewing a change.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.support import ON_CI

CHROMIUM = os.environ.get("MEDVAULT_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STEP_MS = 20_000  # every Playwright step gives up after 20 s
SHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 812}


def spki_pin(cert_pem: bytes) -> str:
    """Base64 SHA-256 of a certificate's public key, as Chromium's --ignore-certificate-errors-spki-list wants."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


@pytest.fixture(scope="session")
def playwright():
    """The Playwright driver; skipped (failed on CI) when Chromium or playwright is missing."""
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        if ON_CI:
            pytest.fail(f"Chromium is required on CI at {CHROMIUM} (apt-get install chromium)")
        pytest.skip(f"Chromium not installed at {CHROMIUM} (these tests run on CI)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if ON_CI:
            pytest.fail("playwright (Python) is required on CI")
        pytest.skip("playwright not installed (these tests run on CI)")
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def browser(playwright, server):
    """A headless Chromium that trusts this module's server certificate by its key pin.

    Without the pin Chromium aborts a handshake on the self-signed certificate (TLS alert "certificate
    unknown") before going on, twice per new browser context; the guard rightly counts those as TLS
    noise and, a few tests later, bans 127.0.0.1. A pinned certificate is what a real deployment with a
    trusted certificate looks like.
    """
    pin = spki_pin((server.data_dir / "tls" / "cert.pem").read_bytes())
    args = [*ARGS, f"--ignore-certificate-errors-spki-list={pin}"]
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args, timeout=STEP_MS)
    yield chromium
    chromium.close()


@pytest.fixture
def new_page(browser):
    """A factory of pages, each in its own context (its own cookies); all closed after the test."""
    contexts = []
    csp_violations: list[str] = []

    def make(viewport: dict | None = None, **kwargs):
        context = browser.new_context(
            ignore_https_errors=True, viewport=viewport or DESKTOP, accept_downloads=True, **kwargs
        )
        context.set_default_timeout(STEP_MS)
        context.set_default_navigation_timeout(STEP_MS)
        contexts.append(context)
        page = context.new_page()
        page.on("console", lambda msg: "Content Security Policy" in msg.text and csp_violations.append(msg.text))
        return page

    yield make
    for context in contexts:
        context.close()
    assert not csp_violations, f"pages broke the CSP (inline script or style?): {csp_violations}"


def shot(page, name: str) -> Path:
    """Save a full-page screenshot of `page` as test-output/screenshots/<name>.png."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in(page, server, username: str, password: str) -> None:
    """Sign in through the login form and wait for the start page."""
    page.goto(f"{server.base}/login")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()


def assert_friendly(page) -> None:
    """No stack trace or internal detail ever reaches the page."""
    body = page.content()
    assert "Traceback" not in body and 'File "' not in body and "Internal server error" not in body
