"""Replay fail2ban's own annotated sample logs through MedVault's filter engine."""

from __future__ import annotations

import pytest

from .samplelogs import FILTER_DIR, LOG_DIR, fail2ban_installed, option_blocks, replay

REQUIRED = (
    "sshd",
    "apache-auth",
    "apache-badbots",
    "apache-botsearch",
    "apache-noscript",
    "apache-overflows",
    "apache-nohome",
    "apache-shellshock",
    "nginx-http-auth",
    "nginx-botsearch",
    "nginx-limit-req",
    "nginx-bad-request",
    "php-url-fopen",
)
# Sample logs with a same-named filter that replay cleanly; raise when the engine improves.
MIN_PASSING = 89


def _cases() -> list:
    if not fail2ban_installed():
        return [pytest.param(name, "", id=name) for name in REQUIRED]
    return [
        pytest.param(name, block, id=f"{name}{block and '-' + block}")
        for name in REQUIRED
        for block in option_blocks(name)
    ]


@pytest.mark.usefixtures("needs_fail2ban")
@pytest.mark.parametrize(("name", "block"), _cases())
def test_sample_log_block(name: str, block: str) -> None:
    """Every annotated line under this filterOptions block matches (or not) with the expected host and time."""
    result = replay(name, block)
    assert not result.errors, "\n".join(result.errors)


@pytest.mark.usefixtures("needs_fail2ban")
@pytest.mark.parametrize("name", REQUIRED)
def test_required_sample_log_is_exercised(name: str) -> None:
    """Each required filter's sample log yields annotated lines to check (the replay is not vacuous)."""
    assert replay(name).checked > 0


@pytest.mark.usefixtures("needs_fail2ban")
def test_all_sample_logs_pass_count() -> None:
    """At least MIN_PASSING of the sample logs that have a same-named filter replay without error."""
    names = sorted(p.name for p in LOG_DIR.iterdir() if (FILTER_DIR / f"{p.name}.conf").is_file())
    failing = {}
    for name in names:
        errors = replay(name).errors
        if errors:
            failing[name] = errors[0]
    passing = len(names) - len(failing)
    print(f"fail2ban sample logs: {passing} of {len(names)} pass; failing: {sorted(failing)}")
    assert passing >= MIN_PASSING, failing
