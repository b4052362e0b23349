"""Match log lines against a filter: `Filter.match(line, now) -> Failure | IGNORED | None`.

The semantics follow fail2ban's so its filters and annotated sample logs carry over: the date is
cut out of the line first, `prefregex` must match and its `<F-CONTENT>` becomes the text the
failregexes see, the first failregex (in file order) that matches decides, an `ignoreregex` match
cancels it, and multi-line connection ids (`<F-MLFID>`) carry users and "no failure" marks across
lines (sshd logs the address and the outcome on different lines).

Speed is the reason this is not a loop over regexes: all failregexes are compiled into one
alternation (group names prefixed per alternative), so a line that fails — most of any log — costs
one regex search.  Only when the alternation hits do we confirm with the individual regexes, which
keeps fail2ban's "first regex in order wins" rule exact.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Final

from medvault.guard.dates import DateDetector
from medvault.guard.errors import FilterError
from medvault.guard.filterfile import FilterSpec

_IP4 = r"(?:\d{1,3}\.){3}\d{1,3}"
_IP6 = r"(?:[0-9a-fA-F]{1,4}::?|::){1,7}(?:[0-9a-fA-F]{1,4}|(?<=:):)"
_R_IP4 = rf"(?:::f{{4,6}}:)?(?P<ip4>{_IP4})"
_R_IP6 = rf"(?P<ip6>{_IP6})"
_R_DNS = r"(?P<dns>[\w\-.^_]*\w)"
_R_ADDR = rf"\[?(?:{_R_IP4}|{_R_IP6})\]?"
_R_CIDR = r"(?P<cidr>\d+)"
_STATIC_TAGS = {
    "HOST": rf"(?:{_R_ADDR}|{_R_DNS})",
    "ADDR": _R_ADDR,
    "IP4": _R_IP4,
    "IP6": _R_IP6,
    "DNS": _R_DNS,
    "CIDR": _R_CIDR,
    "SUBNET": rf"\[?(?:{_R_IP4}|{_R_IP6})(?:/{_R_CIDR})?\]?",
    "F-ID/": r"(?P<fid>\S+)",
    "F-PORT/": r"(?P<fport>\w+)",
}
for _name in ("ADDR", "IP4", "IP6", "DNS", "CIDR", "SUBNET"):
    _STATIC_TAGS[f"F-{_name}/"] = _STATIC_TAGS[_name]
_TAG_RE = re.compile(r"</?[\w\-]+/?>")
_CUSTOM_RE = re.compile(r"^(/?)F-([A-Z0-9_\-]+)$")
_GROUP_ALIASES = {"id": "fid", "port": "fport"}
_GLOBAL_FLAGS_RE = re.compile(r"(?<!\\)\((?:\?:)?(\(\?[a-z]+)\)")
_LEADING_FLAGS_RE = re.compile(r"^\(\?([aiLmsux]+)\)")
_GROUP_NAME_RE = re.compile(r"\(\?P<(\w+)>|\(\?P=(\w+)\)|\(\?\((\w+)\)")
_NUMBERED_REF_RE = re.compile(r"\\[1-9]|\(\?\(\d+\)")
_ALT_SUFFIX = re.compile(r"_\d+$")
_ID_GROUPS = ("fid", "ip4", "ip6", "dns", "mlfid")


class _Ignored:
    def __repr__(self) -> str:
        return "IGNORED"


IGNORED: Final = _Ignored()
"""Returned when a failregex matched but an ignoreregex cancelled it."""


@dataclass(frozen=True)
class Failure:
    """One failure: who (`host`, or `fid` for non-address ids), when (line time) and extra fields."""

    host: str
    time: float
    fid: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    regex_index: int = -1

    @property
    def user(self) -> str | None:
        return self.fields.get("user")


def translate_tags(regex: str) -> str:
    """Replace fail2ban's tags (`<HOST>`, `<F-USER>…</F-USER>`, `<SKIPLINES>`) by Python regex."""
    open_tags: set[str] = set()
    skipped = 0

    def subst(m: re.Match[str]) -> str:
        nonlocal skipped
        tag = m.group()[1:-1]
        if tag == "SKIPLINES":
            skipped += 1
            return rf"\n(?P<skiplines{skipped - 1}>(?:(?:.*\n)*?))"
        if tag in _STATIC_TAGS:
            return _STATIC_TAGS[tag]
        custom = _CUSTOM_RE.match(tag)
        if not custom:
            return m.group()
        closing, name = custom.groups()
        if closing:
            return ")" if name in open_tags else m.group()
        open_tags.add(name)
        lowered = name.lower().replace("-", "_")
        return f"(?P<{_GROUP_ALIASES.get(lowered, lowered)}>"

    return _GLOBAL_FLAGS_RE.sub(r"\1:", _TAG_RE.sub(subst, regex))


def _scoped(regex: str) -> str:
    """Leading global flags `(?i)x` become scoped `(?i:x)` so the regex can sit in an alternation."""
    m = _LEADING_FLAGS_RE.match(regex)
    return f"(?{m.group(1)}:{regex[m.end():]})" if m else regex


def _prefix_groups(regex: str, prefix: str) -> str:
    def repl(m: re.Match[str]) -> str:
        if m.group(1):
            return f"(?P<{prefix}{m.group(1)}>"
        if m.group(2):
            return f"(?P={prefix}{m.group(2)})"
        return f"(?({prefix}{m.group(3)})"

    return _GROUP_NAME_RE.sub(repl, regex)


def _compile(regex: str, flags: int, origin: str) -> re.Pattern[str]:
    try:
        return re.compile(regex, flags)
    except re.error as exc:
        raise FilterError(f"{origin}: regex does not compile ({exc}): {regex}") from None


def _normalise_host(groups: dict[str, str]) -> str | None:
    for key in ("ip4", "ip6"):
        ip = groups.get(key)
        if ip is None:
            continue
        cidr = groups.get("cidr")
        try:
            if cidr is not None:
                return str(ipaddress.ip_network(f"{ip}/{cidr}", strict=False))
            return str(ipaddress.ip_address(ip))
        except ValueError:
            return ip
    return groups.get("dns")


def _merge_alternates(groups: dict[str, str]) -> dict[str, str]:
    """`<F-ALT_USER>` fills `user` when the main group did not match (fail2ban's alt_ groups)."""
    for key in [k for k in groups if k.startswith("alt_")]:
        target = _ALT_SUFFIX.sub("", key[4:])
        target = _GROUP_ALIASES.get(target, target)
        if not groups.get(target):
            groups[target] = groups[key]
    return groups


class Filter:
    """A compiled filter; `match` is pure apart from the multi-line state fail2ban's format implies."""

    def __init__(self, spec: FilterSpec) -> None:
        self.spec = spec
        self.maxlines = spec.maxlines
        flags = re.MULTILINE if spec.maxlines > 1 else 0
        self.dates = DateDetector(spec.datepattern)
        self._prefregex = (
            _compile(translate_tags(spec.prefregex), flags, spec.name) if spec.prefregex else None
        )
        sources = [translate_tags(r) for r in spec.failregex]
        self._failregex = [_compile(s, flags, spec.name) for s in sources]
        pref_ids = set(self._prefregex.groupindex) if self._prefregex else set()
        for src, rx in zip(spec.failregex, self._failregex, strict=True):
            if not (set(rx.groupindex) | pref_ids) & set(_ID_GROUPS):
                raise FilterError(f"{spec.name}: no host or failure-id group in {src!r}")
        self._ignoreregex = [_compile(translate_tags(r), flags, spec.name) for r in spec.ignoreregex]
        self._combined = self._combine(sources, flags)
        # A `^`-anchored single-line regex can only match at 0: if it failed there inside the
        # alternation, it cannot match at all, so the alternation's choice needs no re-check.
        self._anchored = [not flags and s.startswith("^") for s in sources]
        self._buffer: list[str] = []
        self._mlfid: dict[str, dict] = {}
        self._last_time: float | None = None

    @staticmethod
    def _combine(sources: list[str], flags: int) -> re.Pattern[str] | None:
        if len(sources) < 2 or any(_NUMBERED_REF_RE.search(s) for s in sources):
            return None
        parts = [f"(?P<_r{i}>{_prefix_groups(_scoped(s), f'_{i}_')})" for i, s in enumerate(sources)]
        try:
            return re.compile("|".join(parts), flags)
        except re.error:
            return None  # an exotic construct: keep the exact per-regex loop

    def reset(self) -> None:
        """Forget multi-line state (a new file, or the start of a replay)."""
        self._buffer.clear()
        self._mlfid.clear()
        self._last_time = None

    def match(self, line: str, now: float, tz: tzinfo | None = None) -> Failure | _Ignored | None:
        """Match one log line; `now` dates syslog lines without a year and lines without a date."""
        line = line.rstrip("\r\n")
        found = self.dates.find(line, now, tz)
        if found is not None and found.time is not None:
            text = line[: found.start] + line[found.end:]
            when = found.time
            self._last_time = when
        else:
            text = line if found is None else line[: found.start] + line[found.end:]
            last = self._last_time
            when = last if last is not None and last > now - 60 else now
        if self.maxlines > 1:
            self._buffer.append(text)
            del self._buffer[: -self.maxlines]
            buf = "\n".join(self._buffer) + "\n"
        else:
            buf = text + "\n"
        pre: dict[str, str] = {}
        if self._prefregex is not None:
            pm = self._prefregex.search(buf)
            if pm is None:
                return None
            pre = {k: v for k, v in pm.groupdict().items() if v is not None}
            content = pre.pop("content", None)
            if content:
                buf = content + "\n"
                if self.maxlines > 1:
                    self._buffer[:] = [content]
        hit = self._search(buf)
        if hit is None:
            return None
        index, m = hit
        if any(rx.search(buf) for rx in self._ignoreregex):
            return IGNORED
        if self.maxlines > 1:
            self._drop_matched(buf, m)
        groups = _merge_alternates({**pre, **{k: v for k, v in m.groupdict().items() if v is not None}})
        return self._failure(index, groups, when)

    def _search(self, buf: str) -> tuple[int, re.Match[str]] | None:
        combined = self._combined
        if combined is None:
            limit = len(self._failregex)
        else:
            cm = combined.search(buf)
            if cm is None:
                return None
            limit = int(cm.lastgroup[2:]) + 1
            if cm.start() == 0 and all(self._anchored[: limit - 1]):
                m = self._failregex[limit - 1].search(buf)
                return (limit - 1, m) if m else None
        for i in range(limit):
            m = self._failregex[i].search(buf)
            if m:
                return i, m
        return None

    def _drop_matched(self, buf: str, m: re.Match[str]) -> None:
        """Keep only unmatched lines buffered (plus skipped ones), like fail2ban's multi-line mode."""
        first = buf.count("\n", 0, m.start())
        last = buf.count("\n", 0, max(m.end() - 1, m.start())) + 1
        skipped = {
            line for k, v in m.groupdict().items() if k.startswith("skiplines") and v
            for line in v.splitlines()
        }
        lines = buf.split("\n")[:-1]
        kept = lines[:first] + [x for x in lines[first:last] if x in skipped] + lines[last:]
        self._buffer[:] = kept

    def _failure(self, index: int, groups: dict, when: float) -> Failure | None:
        mlfid = groups.get("mlfid")
        if mlfid is not None:
            merged = self._merge_multiline(mlfid, groups)
            if merged is None:
                return None
            groups = merged
        fid = groups.get("fid")
        host = _normalise_host(groups)
        if host is None:
            if fid is None:
                if mlfid is not None:
                    groups["mlfpending"] = 1  # the address will come on a later line
                return None
            host = fid
        fields = {k: v for k, v in groups.items()
                  if isinstance(v, str) and k not in ("ip4", "ip6", "dns", "cidr", "mlfid")}
        return Failure(host=host, time=when, fid=fid if fid != host else None,
                       fields=fields, regex_index=index)

    def _merge_multiline(self, mlfid: str, fail: dict) -> dict | None:
        """Merge a line into its connection's state; None while the connection has no failure."""
        cached = self._mlfid.get(mlfid)
        gained = bool(fail.get("mlfgained"))
        nofail = gained or bool(fail.get("nofail"))
        if gained:
            fail.setdefault("nofail", fail["mlfgained"])
        forget = bool(fail.pop("mlfforget", None))
        if cached is not None:
            users = cached.setdefault("users", set())
            if fail.get("user"):
                users.add(fail["user"])
            cached.pop("nofail", None)
            cached.pop("mlfgained", None)
            if gained:
                cached.pop("mlfpending", None)
            cached.update(fail)
            fail = cached
            if forget:
                del self._mlfid[mlfid]
        else:
            users = fail.setdefault("users", set())
            if fail.get("user"):
                users.add(fail["user"])
            if not forget:
                self._mlfid[mlfid] = fail
                if len(self._mlfid) > 10_000:  # bounded: drop the oldest connection
                    del self._mlfid[next(iter(self._mlfid))]
        if fail.pop("mlfpending", 0) or len(users) > 1:
            fail.pop("nofail", None)
            fail.pop("mlfgained", None)
            nofail = False
        return None if nofail else fail
