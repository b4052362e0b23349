"""fail2ban's own sample logs: each annotated line replayed, and each whole log against fail2ban-regex."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from .peer import differences, fail2ban_hosts, medvault_hosts
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


def _sample_logs() -> list[str]:
    if not fail2ban_installed():
        return ["sshd"]
    return sorted(p.name for p in LOG_DIR.iterdir() if (FILTER_DIR / f"{p.name}.conf").is_file())


@pytest.fixture(scope="module")
def fail2ban_answers() -> dict[str, Counter[str]]:
    """fail2ban-regex's hosts for every sample log, run two at a time (each run is mostly start-up)."""
    if not fail2ban_installed():
        return {}
    names = _sample_logs()
    with ThreadPoolExecutor(2) as pool:
        answers = pool.map(lambda n: fail2ban_hosts(LOG_DIR / n, str(FILTER_DIR / f"{n}.conf")), names)
        return dict(zip(names, answers, strict=True))


@pytest.mark.usefixtures("needs_fail2ban")
@pytest.mark.parametrize("name", _sample_logs())
def test_same_hosts_as_fail2ban_regex(name: str, fail2ban_answers: dict[str, Counter[str]]) -> None:
    """On the whole sample log in the filter's default mode, test-filter finds the hosts fail2ban-regex
    finds, each with as many failures."""
    theirs = fail2ban_answers[name]
    ours = medvault_hosts(LOG_DIR / name, str(FILTER_DIR / f"{name}.conf"))
    assert not differences(ours, theirs), differences(ours, theirs)
