"""fail2ban-regex and `medvault guard test-filter` side by side: the hosts each finds in a log.

Both commands are run as an operator would (`fail2ban-regex --usedns=no -o ip LOG FILTER`, one address
per failure; `test-filter FILTER LOG --json`, failures per host), so a test comparing them compares
exactly what the two tools report.
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path

from typer.testing import CliRunner

from medvault.guard.cli import guard_app
from tests.support import require_tool


def fail2ban_hosts(log: Path, filter_spec: str, timeout: float = 600) -> Counter[str]:
    """Failures per address as Debian's fail2ban-regex reports them (no DNS look-ups)."""
    out = subprocess.run(
        [require_tool("fail2ban-regex"), "--usedns=no", "-o", "ip", str(log), filter_spec],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    ).stdout
    return Counter(line.strip() for line in out.splitlines() if line.strip())


def medvault_hosts(log: Path, filter_spec: str) -> Counter[str]:
    """Failures per host from `medvault guard test-filter --json`, run in this process."""
    result = CliRunner().invoke(guard_app, ["test-filter", filter_spec, str(log), "--json", "--jobs", "1"])
    assert result.exit_code == 0, result.output
    return Counter(json.loads(result.stdout)["hosts"])


def differences(ours: Counter[str], theirs: Counter[str], most: int = 8) -> str:
    """A short account of the hosts whose failure counts differ ('' when none do)."""
    keys = sorted(set(ours) | set(theirs), key=lambda h: -abs(ours[h] - theirs[h]))
    rows = [f"{h}: medvault {ours[h]}, fail2ban {theirs[h]}" for h in keys if ours[h] != theirs[h]]
    if not rows:
        return ""
    return f"{len(rows)} hosts differ (of {len(theirs)} fail2ban found): " + "; ".join(rows[:most])
