"""Ban list lookups, expiry and persistence."""

import pytest

from medvault.guard.banlist import BanList
from medvault.guard.errors import GuardError


def test_ipv4_ban_and_expiry() -> None:
    """A banned IPv4 address is refused until its end time, and not after."""
    bans = BanList()
    bans.ban("192.0.2.1", until=100)
    assert bans.is_banned("192.0.2.1", now=99)
    assert not bans.is_banned("192.0.2.1", now=100)
    assert not bans.is_banned("192.0.2.2", now=0)


def test_cidr_ban_covers_its_range() -> None:
    """A CIDR ban covers every address inside it and none outside."""
    bans = BanList()
    bans.ban("198.51.100.0/24", until=100)
    assert bans.is_banned("198.51.100.77", now=0)
    assert not bans.is_banned("198.51.101.1", now=0)


def test_ipv6_banned_by_64() -> None:
    """With ipv6_prefix=64 a ban on one address covers its whole /64."""
    bans = BanList(ipv6_prefix=64)
    bans.ban("2001:db8:1:2::5", until=100)
    assert bans.is_banned("2001:db8:1:2:ffff::1", now=0)
    assert not bans.is_banned("2001:db8:1:3::5", now=0)


def test_ipv6_single_address_by_default() -> None:
    """Without a prefix setting an IPv6 ban covers only that address."""
    bans = BanList()
    bans.ban("2001:db8::5", until=100)
    assert bans.is_banned("2001:db8::5", now=0)
    assert not bans.is_banned("2001:db8::6", now=0)


def test_expire_returns_ended_bans() -> None:
    """expire(now) removes and returns exactly the bans that have ended."""
    bans = BanList()
    bans.ban("192.0.2.1", until=10, jail="a")
    bans.ban("192.0.2.2", until=20, jail="b")
    ended = bans.expire(15)
    assert [e.network for e in ended] == ["192.0.2.1/32"] and len(bans) == 1


def test_json_round_trip() -> None:
    """to_json/from_json preserves every ban, its end time, jail and the IPv6 prefix."""
    bans = BanList(ipv6_prefix=64)
    bans.ban("192.0.2.1", until=10, jail="sshd")
    bans.ban("2001:db8::1", until=20, jail="scan")
    again = BanList.from_json(bans.to_json())
    assert sorted(again.entries(), key=str) == sorted(bans.entries(), key=str)
    assert again.is_banned("2001:db8::ff", now=0)


def test_corrupt_json_is_a_guard_error() -> None:
    """A damaged state file raises GuardError, not a bare parsing exception."""
    with pytest.raises(GuardError):
        BanList.from_json('{"bans": [["x"]]}')


def test_non_addresses_are_never_banned() -> None:
    """Looking up a host name (not an address) answers 'not banned' instead of raising."""
    assert not BanList().is_banned("example.org", now=0)
