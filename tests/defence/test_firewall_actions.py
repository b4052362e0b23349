"""Bans leave the process: fail2ban-style command actions, and nftables in a network namespace of the
test's own making, where a banned address's packets are dropped by the kernel before they reach MedVault."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid

import pytest

from tests.attackers import client_from, is_refused
from tests.support import ON_CI, Server, cli, require_tool


def _wait_for(predicate, seconds: float = 8) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_command_actions_run_with_the_address(tmp_path):
    """actionban/actionunban run with <ip> replaced by the banned address (and nothing else from the log)."""
    record = tmp_path / "actions.txt"
    env = {
        "MEDVAULT_GUARD_ACTIONBAN": f"sh -c 'echo ban <ip> >> {record}'",
        "MEDVAULT_GUARD_ACTIONUNBAN": f"sh -c 'echo unban <ip> >> {record}'",
    }
    srv = Server(tmp_path / "data", env=env)
    srv.init()
    srv.start()
    try:
        with client_from(srv, "127.0.0.81", headers={"User-Agent": "Nikto/2.5 $(touch /tmp/pwned)"}) as c:
            for path in ("/.env", "/.git/HEAD", "/phpmyadmin/"):
                c.get(path)
        assert _wait_for(lambda: record.exists() and "ban 127.0.0.81" in record.read_text())
        cli(srv.data_dir, "guard", "unban", "127.0.0.81", env=srv.env)
        assert _wait_for(lambda: "unban 127.0.0.81" in record.read_text())
        assert record.read_text().splitlines() == ["ban 127.0.0.81", "unban 127.0.0.81"]
    finally:
        srv.stop()


@pytest.fixture
def namespace():
    """A network namespace joined to the host by a veth pair: server 10.231.7.2, clients .1 and .3."""
    if os.geteuid() != 0:
        if ON_CI:
            pytest.fail("the nftables test needs root on CI")
        pytest.skip("needs root (runs on CI)")
    ip = require_tool("ip")
    require_tool("nft")
    name = f"mv{uuid.uuid4().hex[:8]}"
    host_if, ns_if = f"{name}h", f"{name}n"
    steps = [
        [ip, "netns", "add", name],
        [ip, "link", "add", host_if, "type", "veth", "peer", "name", ns_if],
        [ip, "link", "set", ns_if, "netns", name],
        [ip, "addr", "add", "10.231.7.1/24", "dev", host_if],
        [ip, "addr", "add", "10.231.7.3/24", "dev", host_if],
        [ip, "link", "set", host_if, "up"],
        [ip, "-n", name, "addr", "add", "10.231.7.2/24", "dev", ns_if],
        [ip, "-n", name, "link", "set", ns_if, "up"],
        [ip, "-n", name, "link", "set", "lo", "up"],
    ]
    try:
        for step in steps:
            subprocess.run(step, check=True, capture_output=True, timeout=10)
        yield name
    finally:
        subprocess.run([ip, "link", "del", host_if], check=False, capture_output=True, timeout=10)
        subprocess.run([ip, "netns", "del", name], check=False, capture_output=True, timeout=10)


class NamespacedServer(Server):
    """MedVault serving inside the namespace on 10.231.7.2, with nftables bans enabled."""

    host = "10.231.7.2"
    probe_source = "10.231.7.1"

    def __init__(self, data_dir, netns: str):
        super().__init__(data_dir, env={"MEDVAULT_GUARD_NFTABLES": "true", "MEDVAULT_HOST": self.host})
        self.netns = netns
        self.command_prefix = ("ip", "netns", "exec", netns)

    def nft_set(self) -> str:
        return subprocess.run(
            ["ip", "netns", "exec", self.netns, "nft", "list", "set", "inet", "medvault", "banned4"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout


def _connects(source: str, port: int, timeout: float = 2) -> bool:
    try:
        with socket.create_connection(("10.231.7.2", port), timeout=timeout, source_address=(source, 0)):
            return True
    except OSError:
        return False


def test_nftables_drops_banned_packets_in_the_kernel(tmp_path, namespace):
    """After a scanner's ban its SYNs are dropped by nftables (connect times out, no refusal from MedVault),
    while another client of the same network is served."""
    srv = NamespacedServer(tmp_path / "data", namespace)
    srv.init()
    srv.start()
    try:
        with client_from(srv, "10.231.7.1") as c:
            assert c.get("/login").status_code == 200
            for path in ("/.env", "/wp-login.php", "/cgi-bin/test.cgi"):
                c.get(path)
        assert _wait_for(lambda: "10.231.7.1" in srv.nft_set()), srv.nft_set()
        assert "timeout" in srv.nft_set() or "expires" in srv.nft_set()
        started = time.monotonic()
        assert not _connects("10.231.7.1", srv.https_port, timeout=2)
        assert time.monotonic() - started >= 1.9, "a drop times out; an application refusal would be instant"
        assert not is_refused(srv, "10.231.7.3")
    finally:
        srv.stop()
