"""Shared fixtures for the guard tests: where Debian's fail2ban files are, and the skip rule."""

import os

import pytest

from .samplelogs import fail2ban_installed


@pytest.fixture
def needs_fail2ban() -> None:
    """Skip locally without fail2ban, but fail in CI where it must be installed."""
    if fail2ban_installed():
        return
    if os.environ.get("CI"):
        pytest.fail("fail2ban is not installed; CI must install Debian's fail2ban package")
    pytest.skip("fail2ban is not installed (apt-get install fail2ban); this test fails instead under CI")
