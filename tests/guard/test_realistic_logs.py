"""Large generated logs of the shapes real servers write: the same hosts and counts as fail2ban-regex.

The sample logs test each line shape alone; these test them interleaved at volume, where the state a
filter carries decides the answer (sshd's connections: which are remembered, which forgotten, which
line names only a host).  Both tools run as operators run them (`peer.py`).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from .accesslogs import write_access_log
from .peer import differences, fail2ban_hosts, medvault_hosts
from .sshdlogs import write_sshd_log

SSHD_LINES = 40_000  # fail2ban-regex needs ~3 s per mode for these
# Shapes fail2ban's sshd filter knows, each of which the generated log must hold.
SHAPES = {
    "invalid user": r"\]: Invalid user ",
    "failed password": r"\]: Failed password for ",
    "PAM failure": r"\]: pam_unix\(sshd:auth\): authentication failure;",
    "PAM more failures": r"\]: PAM \d+ more authentication failures?;",
    "host name instead of address": r"\]: error: PAM: Authentication failure for \S+ from [a-z]",
    "no identification string": r"\]: Did not receive identification string from ",
    "closed by authenticating user": r"\]: Connection closed by authenticating user \S+ \S+ port \d+ \[preauth\]",
    "preauth disconnect": r"\]: Disconnected from (?:invalid|authenticating) user .* \[preauth\]",
    "received disconnect preauth": r"\]: Received disconnect from \S+ port \d+:11: .*\[preauth\]",
    "too many failures": r"Too many authentication failures",
    "max attempts": r"maximum authentication attempts exceeded",
    "kex negotiation": r"\]: Unable to negotiate with ",
    "banner": r"(?:Bad protocol version identification|invalid protocol identifier)",
    "accepted": r"\]: Accepted (?:password|publickey) for ",
}


@pytest.fixture(scope="module")
def auth_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    log = tmp_path_factory.mktemp("sshd") / "auth.log"
    write_sshd_log(log, SSHD_LINES, seed=2)
    return log


def test_generator_writes_every_shape_interleaved(auth_log: Path) -> None:
    """The log holds every shape, from thousands of connections, many more open at once than fail2ban
    remembers (100): otherwise the comparison below would not test what busy servers do."""
    text = auth_log.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert len(lines) == SSHD_LINES
    missing = [name for name, shape in SHAPES.items() if not re.search(shape, text)]
    assert not missing, missing
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for n, line in enumerate(lines):
        m = re.match(r"\w{3} [ \d]\d [\d:]{8} (\S+ sshd\[\d+\]): ", line)
        if m:
            first.setdefault(m.group(1), n)
            last[m.group(1)] = n
    assert len(first) > 3000
    opened = Counter(first.values())
    closed = Counter(last.values())
    open_now = most = 0
    for n in range(len(lines)):
        open_now += opened[n]
        most = max(most, open_now)
        open_now -= closed[n]
    assert most > 300, most


@pytest.mark.usefixtures("needs_fail2ban")
@pytest.mark.parametrize("spec", ["sshd", "sshd[mode=ddos]", "sshd[mode=aggressive]"])
def test_sshd_same_hosts_as_fail2ban_regex(spec: str, auth_log: Path) -> None:
    theirs = fail2ban_hosts(auth_log, spec)
    assert sum(theirs.values()) > SSHD_LINES // 10  # a log of attacks, not of noise
    ours = medvault_hosts(auth_log, spec)
    assert not differences(ours, theirs), differences(ours, theirs)


@pytest.mark.usefixtures("needs_fail2ban")
@pytest.mark.parametrize("spec", ["apache-badbots", "nginx-botsearch"])
def test_access_log_same_hosts_as_fail2ban_regex(spec: str, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    write_access_log(log, 20_000, seed=5)
    theirs = fail2ban_hosts(log, spec)
    assert len(theirs) > 50
    ours = medvault_hosts(log, spec)
    assert not differences(ours, theirs), differences(ours, theirs)
