"""Replay fail2ban's annotated sample logs through MedVault's matcher.

Shared by the conformance tests; kept out of the test module so a failure message can list every
mismatching line of a file at once instead of stopping at the first.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from medvault.guard.filterfile import load_filter
from medvault.guard.matcher import IGNORED, Failure, Filter

FILTER_DIR = Path("/etc/fail2ban/filter.d")
LOG_DIR = Path("/usr/lib/python3/dist-packages/fail2ban/tests/files/logs")
TEST_TZ = ZoneInfo("CET")
TEST_NOW = 1124013600.0  # 2005-08-14 10:00 UTC, fail2ban's pinned "now" for its samples
_ANNOTATION = re.compile(r"^#+ ?(failJSON|(?:file|filter)Options|addFILE):(.+)$")


def fail2ban_installed() -> bool:
    return FILTER_DIR.is_dir() and LOG_DIR.is_dir()


@dataclass
class Replay:
    """Outcome of replaying one sample log: annotated lines checked and what went wrong."""

    checked: int = 0
    errors: list[str] = field(default_factory=list)


def _expected_time(text: str) -> float:
    fmt = "%Y-%m-%dT%H:%M:%S.%f" if "." in text else "%Y-%m-%dT%H:%M:%S"
    return datetime.strptime(text, fmt).replace(tzinfo=TEST_TZ).timestamp()


def _filter_options(opts: dict) -> dict[str, str]:
    return {k: str(v) for k, v in opts.items() if not k.startswith("test.")}


def _applies(opts: dict, name: str) -> bool:
    """Evaluate the only `test.condition` form the samples use (`name=='x'`) without `eval`.

    Journal blocks are skipped: fail2ban simulates the journal's prefix and time there.
    """
    if opts.get("logtype") == "journal":
        return False
    cond = opts.get("test.condition")
    if not cond:
        return True
    m = re.fullmatch(r"\s*name\s*==\s*'([^']*)'\s*", cond)
    return bool(m) and m.group(1) == name


def option_blocks(name: str) -> list[str]:
    """The distinct `# filterOptions:` JSON blocks of a sample log (empty string: defaults)."""
    blocks = [""]
    for line in (LOG_DIR / name).read_text(encoding="utf-8", errors="replace").splitlines():
        m = _ANNOTATION.match(line)
        if m and m.group(1) == "filterOptions" and m.group(2).strip() not in blocks:
            blocks.append(m.group(2).strip())
    return blocks


def _canonical(host: str) -> str:
    """An address as the engine reports it (`2001:DB8::1` is `2001:db8::1`); other ids unchanged."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


def _check(flt: Filter, line: str, expected: dict, where: str, result: Replay) -> None:
    got = flt.match(line, TEST_NOW, TEST_TZ)
    failure = got if isinstance(got, Failure) else None
    if not expected.get("match", False):
        if failure is not None:
            result.errors.append(f"{where}: unexpected match {failure.host}: {line}")
        return
    if failure is None:
        kind = "ignored" if got is IGNORED else "missed"
        result.errors.append(f"{where}: {kind}: {line}")
        return
    host = failure.fid or failure.host
    if "host" in expected and expected["host"] is not None and host != _canonical(expected["host"]):
        result.errors.append(f"{where}: host {host!r} != {expected['host']!r}: {line}")
    if "user" in expected and failure.user != expected["user"]:
        result.errors.append(f"{where}: user {failure.user!r} != {expected['user']!r}: {line}")
    if expected.get("time") and failure.time != _expected_time(expected["time"]):
        got_t = datetime.fromtimestamp(failure.time, TEST_TZ).isoformat()
        result.errors.append(f"{where}: time {got_t} != {expected['time']}: {line}")


def _sample_filter(name: str, opts: dict) -> Filter:
    """The same-named filter with the block's options, host names kept as fail2ban's harness keeps them."""
    return Filter(load_filter(FILTER_DIR / f"{name}.conf", _filter_options(opts)), raw_hosts=True)


def replay(name: str, block: str | None = None) -> Replay:
    """Replay `name` like fail2ban's samples test; with `block`, check only lines under that block.

    `block=None` checks every block of the file; `""` stands for the lines before any
    `filterOptions` annotation (the filter's defaults).
    """
    result = Replay()
    filters: list[tuple[str, Filter]] = []
    active = True
    files = [name]
    common: dict = {}
    for fname in files:
        text = (LOG_DIR / fname).read_text(encoding="utf-8", errors="replace")
        lines = iter(enumerate(text.splitlines(), 1))
        for lineno, line in lines:
            expected: dict = {}
            m = _ANNOTATION.match(line)
            if m:
                kind, payload = m.group(1), json.loads(m.group(2))
                if kind == "fileOptions":
                    common = payload
                    continue
                if kind == "addFILE":
                    files.append(payload)
                    continue
                if kind == "filterOptions":
                    filters = []
                    for opts in payload if isinstance(payload, list) else [payload]:
                        opts = {**common, **opts}
                        if not _applies(opts, name):
                            continue
                        filters.append((json.dumps(opts), _sample_filter(name, opts)))
                    active = bool(filters) and (block is None or m.group(2).strip() == block)
                    continue
                expected = payload
                lineno, line = next(lines, (lineno + 1, ""))
            elif line.startswith("#") or not line.strip():
                continue
            if not active:
                continue
            if not filters:
                if block not in (None, ""):
                    continue
                filters = [("", _sample_filter(name, common))]
            if expected.get("constraint"):
                continue
            for label, flt in filters:
                result.checked += 1
                _check(flt, line, expected, f"{fname}:{lineno}{label}", result)
    return result
