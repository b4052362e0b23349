"""Jail counting in line time."""

import pytest

from medvault.guard.errors import ConfigError
from medvault.guard.jail import BantimeIncrement, Jail


def test_bans_at_maxretry_within_findtime() -> None:
    """The maxretry-th failure inside findtime returns a ban lasting bantime from the line time."""
    jail = Jail("sshd", maxretry=3, findtime=60, bantime=600)
    assert jail.record_failure("192.0.2.1", 1000) is None
    assert jail.record_failure("192.0.2.1", 1010) is None
    ban = jail.record_failure("192.0.2.1", 1020)
    assert ban is not None and ban.ip == "192.0.2.1" and ban.start == 1020 and ban.until == 1620


def test_failures_outside_findtime_do_not_add_up() -> None:
    """Failures spread wider than findtime (in line time) never reach maxretry."""
    jail = Jail("sshd", maxretry=3, findtime=60, bantime=600)
    assert all(jail.record_failure("192.0.2.1", t) is None for t in (0, 50, 100, 150, 200))


def test_old_replayed_log_bans_no_one_now() -> None:
    """A replayed log from last month produces a ban that has already ended by now."""
    jail = Jail("sshd", maxretry=2, findtime=60, bantime=600)
    month_ago, now = 1_000_000.0, 1_000_000.0 + 30 * 86400
    jail.record_failure("192.0.2.1", month_ago)
    ban = jail.record_failure("192.0.2.1", month_ago + 1)
    assert ban is not None and ban.until < now


def test_growing_bantime_for_repeat_offenders() -> None:
    """Each further ban of the same address lasts factor times longer, up to maxtime."""
    jail = Jail("sshd", maxretry=1, findtime=60, bantime=100, bantime_increment=BantimeIncrement(factor=2, maxtime=350))
    durations = [b.until - b.start for b in (jail.record_failure("192.0.2.1", t) for t in (0, 1, 2, 3))]
    assert durations == [100, 200, 350, 350]


def test_ignoreip_cidr_is_never_counted() -> None:
    """Addresses inside an ignoreip CIDR (v4 and v6) are never banned."""
    jail = Jail("sshd", maxretry=1, ignoreip=["10.0.0.0/8", "2001:db8::/32"])
    assert jail.record_failure("10.1.2.3", 0) is None
    assert jail.record_failure("2001:db8::1", 0) is None
    assert jail.record_failure("11.0.0.1", 0) is not None


def test_rate_jail_counts_events_in_short_window() -> None:
    """A rate jail (100 events in 10 s) bans a flood but not the same volume spread out."""
    jail = Jail("flood", maxretry=100, findtime=10, bantime=60)
    assert any(jail.record_failure("192.0.2.9", i * 0.05) for i in range(100))
    slow = Jail("flood", maxretry=100, findtime=10, bantime=60)
    assert not any(slow.record_failure("192.0.2.9", i * 0.2) for i in range(100))


def test_invalid_settings_name_the_jail() -> None:
    """A non-positive setting or a bad CIDR is rejected with the jail's key path."""
    with pytest.raises(ConfigError, match=r"jails\.x"):
        Jail("x", maxretry=0)
    with pytest.raises(ConfigError, match=r"jails\.x\.ignoreip"):
        Jail("x", ignoreip=["not-a-net"])
