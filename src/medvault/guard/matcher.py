"""Match log lines against a filter: `Filter.match(line, now) -> Failure | IGNORED | None`.

The semantics follow fail2ban's so its filters and annotated sample logs carry over: the date is
cut out of the line first, `prefregex` must match and its `<F-CONTENT>` becomes the text the
failregexes see, the first failregex (in file order) that matches decides, an `ignoreregex` match
cancels it, and multi-line connection ids (`<F-MLFID>`) carry users and "no failure" marks across
lines (sshd logs the address and the outcome on different lines).

Speed is the reason this is not a loop over regexes: all failregexes are compiled into one
alternation (group names prefixed per alternative), so a line that fails — most of any log — costs
one regex search.  When every failregex is `^`-anchored (sshd's are), the alternation's hit is
exactly fail2ban's "first regex in order wins" and its groups are used directly; otherwise we confirm
with the individual regexes.  Before any of that, a literal prefilter (`prefilter.py`) drops lines
containing none of the strings the failregexes require, and `scan` matches whole blocks of lines.
"""

from __future__ import annotations

import ipaddress
import re
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import tzinfo
from functools import partial
from itertools import accumulate, islice
from typing import IO, Final

from medvault.guard.dates import DateDetector, DateTemplate
from medvault.guard.dispatch import Dispatcher
from medvault.guard.errors import FilterError
from medvault.guard.filterfile import FilterSpec
from medvault.guard.fused import NUMBERED_REF, fuse, fuse_line, marked_alternation
from medvault.guard.memo import Memo
from medvault.guard.pcresyntax import to_pcre2
from medvault.guard.prefilter import anchored_at_start, build_prefilter

try:  # PCRE2's JIT (jitmatch.pyx, compiled by setup.py): without it, every line goes to `re`
    from medvault.guard.jitmatch import FALLBACK, NO_FAILURE, LineMatcher
except ImportError:
    FALLBACK = NO_FAILURE = LineMatcher = None

# fail2ban's address regexes, written for `re`'s speed with the same matches in the same order: the
# octets unrolled (not `(?:\d{1,3}\.){3}`) and an optional prefix as `(?:X|)` (not `(?:X)?`), since
# `re` runs a repeat of a group as a slower general loop.
_IP4 = r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}"
_IP6 = r"(?:[0-9a-fA-F]{1,4}::?|::){1,7}(?:[0-9a-fA-F]{1,4}|(?<=:):)"
_R_IP4 = rf"(?:::f{{4,6}}:|)(?P<ip4>{_IP4})"
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
_ALT_SUFFIX = re.compile(r"_\d+$")
_ID_GROUPS = ("fid", "ip4", "ip6", "dns", "mlfid")
_BLOCK_LINES = 8192  # lines `Filter.scan` searches for literals at once
_SAMPLE_LINES = 4096  # lines `Filter.scan` watches before deciding whether the prefilter pays off
# Connections (`<F-MLFID>` ids) remembered, the oldest dropped beyond: fail2ban's own number (its `mlfidCache`), so
# that a busy log with thousands of interleaved connections gives the same failures as fail2ban.
MLFID_LIMIT: Final = 100
# A connection's user: the first one named, or True once another was (then every line is a failure); under
# a key no regex group can have.  (True, not a sentinel object: a worker's connections are pickled.)
_USERS: Final = " users"
_NOT_FIELDS = frozenset(("ip4", "ip6", "dns", "cidr", "mlfid", _USERS))  # `Failure.host`'s, and state


class _Ignored:
    def __repr__(self) -> str:
        return "IGNORED"


IGNORED: Final = _Ignored()
"""Returned when a failregex matched but an ignoreregex cancelled it."""
_DIFFERENT: Final = object()  # `_memo_time`: `re` does not find the date PCRE2 found


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


_new_object = object.__new__


def _make_failure(host: str, when: float, fid: str | None, fields: dict[str, str], index: int) -> Failure:
    """`Failure(...)` without the frozen dataclass' per-field `object.__setattr__` (hot path)."""
    failure = _new_object(Failure)
    failure.__dict__.update(host=host, time=when, fid=fid, fields=fields, regex_index=index)
    return failure


def translate_tags(regex: str, host_names: bool = True) -> str:
    """Replace fail2ban's tags (`<HOST>`, `<F-USER>…</F-USER>`, `<SKIPLINES>`) by Python regex.

    Without `host_names`, `<HOST>` is `<ADDR>`, as fail2ban compiles it with `usedns = no`: a line naming a
    host where the address would be is not matched at all, so it cannot add to its connection's failures.
    """
    open_tags: set[str] = set()
    skipped = 0

    def subst(m: re.Match[str]) -> str:
        nonlocal skipped
        tag = m.group()[1:-1]
        if tag == "SKIPLINES":
            skipped += 1
            return rf"\n(?P<skiplines{skipped - 1}>(?:(?:.*\n)*?))"
        if tag == "HOST" and not host_names:
            return _R_ADDR
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
    return f"(?{m.group(1)}:{regex[m.end() :]})" if m else regex


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


_HOSTS: dict[tuple[str, str | None], str] = {}


def _normalise_ip(ip: str, cidr: str | None) -> str:
    """Canonical text of an address or network (cached: attackers repeat their addresses)."""
    key = (ip, cidr)
    try:
        return _HOSTS[key]
    except KeyError:
        pass
    try:
        if cidr is not None:
            host = str(ipaddress.ip_network(f"{ip}/{cidr}", strict=False))
        else:
            host = str(ipaddress.ip_address(ip))
    except ValueError:
        host = ip
    if len(_HOSTS) >= 65536:
        _HOSTS.clear()
    _HOSTS[key] = host
    return host


_UNRESOLVED: Final = ""  # a host name: without DNS (fail2ban's `usedns = no`), no address to ban


def _address_in_name(name: str) -> str:
    """The address a `<DNS>` group holds when it is written as one, else `_UNRESOLVED` (never looked up:
    a name in a log line is the attacker's to choose, and resolving it would let them aim the ban)."""
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return _UNRESOLVED


def _normalise_host(groups: dict[str, str], raw: bool) -> str | None:
    ip = groups.get("ip4")
    if ip is not None:
        cidr = groups.get("cidr")
        # `<IP4>` captures four 1-3 digit octets: `ipaddress` either returns them unchanged or
        # rejects them (leading zeros, > 255, non-ASCII digits) and the text is kept as is.
        return ip if cidr is None else _normalise_ip(ip, cidr)
    ip = groups.get("ip6")
    if ip is not None:
        return _normalise_ip(ip, groups.get("cidr"))
    name = groups.get("dns")
    return name if name is None or raw else _address_in_name(name)


def _any_search(regexes: list[re.Pattern[str]], text: str) -> bool:
    """Whether one of the regexes is found in `text` (a function: Cython's cpdef methods take no closures)."""
    return any(rx.search(text) for rx in regexes)


def _alt_target(key: str) -> str:
    """The group an `alt_…` group fills: `alt_user_2` fills `user`."""
    target = _ALT_SUFFIX.sub("", key[4:])
    return _GROUP_ALIASES.get(target, target)


def _merge_alternates(groups: dict[str, str]) -> dict[str, str]:
    """`<F-ALT_USER>` fills `user` when the main group did not match (fail2ban's alt_ groups)."""
    for key in [k for k in groups if k.startswith("alt_")]:
        target = _alt_target(key)
        if not groups.get(target):
            groups[target] = groups[key]
    return groups


def _alt_plan(names: tuple[str, ...], pref_alt: bool) -> tuple[tuple[str, str], ...] | bool | None:
    """What `_merge_alternates` does for an alternative with these groups, worked out once: None (no
    `alt_` group), its (group, target) pairs in the order it visits them, or True (call it) when the
    prefregex has `alt_` groups too (their keys come first in the dict) or a target is itself an
    `alt_` group (it would be visited only if present before the loop)."""
    keys = [name for name in names if name.startswith("alt_")]
    if pref_alt:
        return True
    if not keys:
        return None
    plan = tuple((key, _alt_target(key)) for key in keys)
    return True if any(target.startswith("alt_") for _, target in plan) else plan


_Fused = tuple[Callable[[str], "re.Match[str] | None"], int, int, tuple[tuple[str, int], ...], Callable]


class Filter:
    """A compiled filter; `match` is pure apart from the multi-line state fail2ban's format implies."""

    def __init__(self, spec: FilterSpec, raw_hosts: bool = False) -> None:
        """`raw_hosts` keeps host names as failures' hosts (fail2ban's `returnRawHost`, for replaying
        annotated samples); otherwise `<HOST>` matches only addresses and a failure naming a host but no
        address is dropped, as fail2ban does with `usedns = no`."""
        self.spec = spec
        self.raw_hosts = raw_hosts
        self.maxlines = spec.maxlines
        flags = re.MULTILINE if spec.maxlines > 1 else 0
        self.dates = DateDetector(spec.datepattern)
        tags = partial(translate_tags, host_names=raw_hosts)
        self._prefregex = _compile(tags(spec.prefregex), flags, spec.name) if spec.prefregex else None
        sources = [tags(r) for r in spec.failregex]
        self._failregex = [_compile(s, flags, spec.name) for s in sources]
        pref_ids = set(self._prefregex.groupindex) if self._prefregex else set()
        for src, rx in zip(spec.failregex, self._failregex, strict=True):
            if not (set(rx.groupindex) | pref_ids) & set(_ID_GROUPS):
                raise FilterError(f"{spec.name}: no host or failure-id group in {src!r}")
        self._ignoreregex = [_compile(tags(r), flags, spec.name) for r in spec.ignoreregex]
        # Each failregex with its groups prefixed `_{i}_`, to sit in one regex with the others.
        self._prefixed = [_prefix_groups(_scoped(s), f"_{i}_") for i, s in enumerate(sources)]
        parts = [f"(?P<_r{i}>{s})" for i, s in enumerate(self._prefixed)]
        self._combined = self._combine(parts, flags)
        # A `^`-anchored single-line regex can only match at 0: if it failed there inside the
        # alternation, it cannot match at all, so the alternation's choice needs no re-check.
        self._anchored = [not flags and anchored_at_start(s) for s in sources]
        # When every failregex is anchored, the alternation's first hit at 0 *is* the first regex in
        # file order that matches, and its groups are that regex's groups: one `match`, no re-check;
        # and only the alternatives that may start with the text's first character need trying.
        self._exact_combined = self._combined is not None and all(self._anchored)
        self._dispatch = Dispatcher(parts, sources, flags) if self._exact_combined else None
        # Per alternative: whether `_merge_alternates` has anything to do (`<F-ALT_…>` groups).
        pref_alt = any(name.startswith("alt_") for name in pref_ids)
        alternatives = sorted(self._dispatch.full[1].values()) if self._dispatch else []
        self._alt_merge = [_alt_plan(names, pref_alt) for _, _, names in alternatives]
        # Lines without any literal some failregex needs skip all regexes but the date (single-line
        # filters only: multi-line ones must buffer every line).
        before_dates = "".join(t.before_date for t in self.dates.templates if t.before_date)
        prefilter = build_prefilter(sources, flags, before_dates) if spec.maxlines == 1 else None
        self._prefilter = prefilter.might_match if prefilter is not None else None
        self._block_prefilter = prefilter
        self._safe_templates: dict[DateTemplate, bool] = {}
        # Per date template: `(?>date)prefregex` (see `fused.py`), or None where it would differ.
        self._fused = Memo(self._fuse)
        # Per date template: the date, prefregex and failregexes as one PCRE2 regex for whole blocks
        # (`jitmatch.pyx`), or None; only for `scan`, only where `fuse_line` and `to_pcre2` give exactly that.
        self._jit_ready = LineMatcher is not None and self._exact_combined
        self._jit = Memo(self._line_matcher)
        self._pref_names = tuple(self._prefregex.groupindex) if self._prefregex else ()
        self._dense = (0, False)
        self._buffer: list[str] = []
        # Connections in the order first seen; an OrderedDict drops the oldest in O(1), where
        # `del d[next(iter(d))]` rescans the deleted slots at a dict's front (~5 µs at 10,000).
        self._mlfid: OrderedDict[str, dict] = OrderedDict()
        self._last_time: float | None = None
        # The last date's text, the fused regex or template it was parsed by, the `now` and zone it was
        # parsed for, and its time (`_memo_time`): the lines of a log share their second.
        self._date_memo: tuple = ("", None, None, None, None)

    @staticmethod
    def _combine(parts: list[str], flags: int) -> re.Pattern[str] | None:
        if len(parts) < 2 or any(NUMBERED_REF.search(s) for s in parts):
            return None
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
        return self._match(line.rstrip("\r\n"), now, tz)

    def scan(
        self, lines: Iterable[str], now: float, tz: tzinfo | None = None
    ) -> Iterator[tuple[int, Failure | _Ignored]]:
        """Match many lines; yield `(index, result)` for each line whose result is not None.

        Same results, in the same order, and the same state afterwards, as calling `match` on each
        line; meant for whole files (`test-filter`, replays), where the per-call overhead of `match`
        would dominate.
        """
        if self._jit_ready:
            yield from self._scan_jit(lines, now, tz)
            return
        yield from self._scan_plain(lines, now, tz)

    def _scan_plain(
        self, lines: Iterable[str], now: float, tz: tzinfo | None
    ) -> Iterator[tuple[int, Failure | _Ignored]]:
        """`scan` with `re` only."""
        if self._block_prefilter is not None:
            yield from self._scan_blocks(lines, now, tz)
            return
        match = self._match
        prefilter = self._prefilter
        index = -1
        try:
            if prefilter is not None:
                # The prefilter pays off only if it rejects many lines (it changes no result, only
                # the speed): sample the first lines, then keep it or drop it for this scan.
                counts = [0, 0]

                def sampled(text: str) -> bool:
                    counts[0] += 1
                    passed = prefilter(text)
                    counts[1] += passed
                    return passed

                self._prefilter = sampled
            for index, line in enumerate(lines):
                got = match(line.rstrip("\r\n"), now, tz)
                if got is not None:
                    yield index, got
                if index == _SAMPLE_LINES and prefilter is not None:
                    self._prefilter = prefilter if counts[1] < counts[0] * 0.7 else None
        finally:
            self._prefilter = prefilter

    def _scan_jit(
        self, lines: Iterable[str], now: float, tz: tzinfo | None
    ) -> Iterator[tuple[int, Failure | _Ignored]]:
        """`scan` with each block's lines matched by PCRE2 where the remembered date template has a
        `LineMatcher`, else by `re`."""
        base = 0
        for chunk, text in _chunks(lines):
            jit = self._jit[self.dates._last]
            if jit is None:
                block = Lines(chunk)
                block.text = text
                found = self._scan_plain(block, now, tz)
            else:
                found = self._jit_block(jit, chunk, text, self._jit_candidates(chunk, text), now, tz)
            for offset, got in found:
                yield base + offset, got
            base += len(chunk)

    def _jit_candidates(self, chunk: list[str], text: str) -> bytes | None:
        """For a `LineMatcher` of the date template and the failregexes, the lines that may hold a failure
        (a byte each, see `_scan_blocks`), or None: all may, or there is a prefregex."""
        prefilter = self._block_prefilter
        if prefilter is None or self._prefregex is not None or not self._cut_safe(self.dates._last):
            return None
        flags = bytearray(len(chunk))
        for k in self._candidate_lines(chunk, text):
            flags[k] = 1
        return bytes(flags)

    def _jit_block(
        self, jit: LineMatcher, chunk: list[str], text: str, candidates: bytes | None, now: float, tz: tzinfo | None
    ) -> Iterator[tuple[int, Failure | _Ignored]]:
        """What `_match` gives on each line of `chunk`, from the PCRE2 results of the remembered template.

        A line PCRE2 left to `re` goes through `_match`; one whose date gives no time through `_match_steps`,
        as `_match` sends it. After either, the lines PCRE2 left out
        as no-ops (the same date as the line before) are no longer known to be, and go through `_match`;
        once the date detector has moved to another template, the rest of the block does.
        """
        template = self.dates._last
        # What the line's date was found by: `_memo_time`'s key.
        key = self._fused[template] if self._prefregex is not None else template
        match = self._match
        done = 0  # lines before it are handled
        exact = True  # the last line handled took the fused path: the lines left out after it change nothing
        for k, start, end, content, alt, groups in jit.scan(text, candidates):
            if not exact:
                yield from self._each(chunk, done, k, now, tz)
            done = k + 1
            line = chunk[k]
            when = self._memo_time(line, start, end, key, None, now, tz) if alt != FALLBACK else _DIFFERENT
            if when is None or when is _DIFFERENT:
                exact = False
                got = match(line, now, tz) if when is _DIFFERENT else self._match_steps(line, now, tz)
                if got is not None:
                    yield k, got
                if self.dates._last is not template:
                    yield from self._each(chunk, done, len(chunk), now, tz)
                    return
                continue
            exact = True
            self._last_time = when
            if alt == NO_FAILURE:
                continue
            text = line[content:] if content >= 0 else line[:start] + line[end:]
            if self._ignoreregex and _any_search(self._ignoreregex, text + "\n"):
                yield k, IGNORED
                continue
            got = self._failure(alt, self._with_alternates(alt, groups), when)
            if got is not None:
                yield k, got
        if not exact:
            yield from self._each(chunk, done, len(chunk), now, tz)

    def _each(
        self, chunk: list[str], start: int, stop: int, now: float, tz: tzinfo | None
    ) -> Iterator[tuple[int, Failure | _Ignored]]:
        """`_match` on the lines `start` to `stop` of `chunk`."""
        match = self._match
        for j in range(start, stop):
            got = match(chunk[j], now, tz)
            if got is not None:
                yield j, got

    def _line_matcher(self, template: DateTemplate | None) -> LineMatcher | None:
        """The template's `LineMatcher` (see `_jit`), or None: with a prefregex, of `fuse_line`'s regex (as
        `_match` takes the fused path); without, of the template and the failregexes (as `_match_steps`)."""
        if template is None:
            return None
        if self._prefregex is not None:
            if self._fused[template] is None:
                return None
            full = fuse_line(template.regex, self._prefregex, self._prefixed)
            line, failregexes = full, None
        else:
            try:
                full = re.compile(marked_alternation(self._prefixed))
            except re.error:
                return None
            line, failregexes = template.regex, full
        if full is None:
            return None
        patterns = [to_pcre2(line.pattern), to_pcre2(failregexes.pattern) if failregexes is not None else ""]
        if None in patterns:
            return None
        index = full.groupindex
        pre = tuple((name, index[name]) for name in self._pref_names if name != "content")
        by_number = sorted(index.items(), key=lambda kv: kv[1])
        alternatives = tuple(
            tuple((name[len(f"_{i}_") :], number) for name, number in by_number if name.startswith(f"_{i}_"))
            for i in range(len(self._prefixed))
        )
        markers = tuple(index[f"_e{i}"] for i in range(len(self._prefixed)))
        date, content = line.groupindex["_date"], index.get("_c", 0)
        try:
            return LineMatcher(
                patterns[0], date, content, index["_none"], markers, pre, alternatives, patterns[1] or None
            )
        except ValueError:  # PCRE2 refuses a construct (a look-behind of several lengths…): `re` does it all
            return None

    def _scan_blocks(
        self, lines: Iterable[str], now: float, tz: tzinfo | None
    ) -> Iterator[tuple[int, Failure | _Ignored]]:
        """`scan` for single-line filters with a prefilter: the literals are searched in whole blocks.

        A line without any literal gets no regex but the date's: `_match` would find its date (which
        moves the date detector's state) and then reject it.  When the template the detector
        remembers matches every line of a run of rejected lines, `DateDetector.skip` applies that
        state change at once; otherwise the run goes through `_match` line by line.

        The prefilter looks at the line with its date cut out, while the block search sees the
        whole line: a literal could appear only once the date is cut, straddling the cut.  That needs
        the character before the date to be a non-final character of a literal, so templates where
        it is (or where it is not fixed) are never skipped over (`_cut_safe`).
        """
        assert self._block_prefilter is not None
        match = self._match
        dates = self.dates
        safe = self._cut_safe
        base = 0
        # Chunks left to match line by line after one where most lines had a literal, and whether
        # the per-line prefilter stays on for them (kept across calls: `scan` is called per block).
        dense, keep_prefilter = self._dense
        for chunk, text in _chunks(lines):
            if dense:
                dense -= 1
                self._dense = (dense, keep_prefilter)
                prefilter = self._prefilter
                if not keep_prefilter:
                    self._prefilter = None  # it would pass most lines
                try:
                    for offset, line in enumerate(chunk, base):
                        got = match(line, now, tz)
                        if got is not None:
                            yield offset, got
                finally:
                    self._prefilter = prefilter
                base += len(chunk)
                continue
            candidates = self._candidate_lines(chunk, text)
            if len(candidates) * 2 > len(chunk):
                # Most lines pass: line by line; as in the sampled path, the per-line prefilter stays
                # only while it rejects enough lines to pay for itself.
                keep_prefilter = len(candidates) < len(chunk) * 0.6  # measured break-even, sshd
                candidates = list(range(len(chunk)))
                dense = 64
                self._dense = (dense, keep_prefilter)
            done = 0
            line_prefilter = self._prefilter
            for k in [*candidates, len(chunk)]:
                if k > done:
                    run = chunk[done:k]
                    if dates.skip(run, now, tz, safe):
                        if dates.last_time is not None:
                            self._last_time = dates.last_time
                            dates.last_time = None
                    else:
                        for offset, line in enumerate(run, done):
                            got = match(line, now, tz)
                            if got is not None:
                                yield base + offset, got
                if k < len(chunk):
                    # A line holding a literal mostly still holds it once its date is cut: no prefilter.
                    self._prefilter = None
                    got = match(chunk[k], now, tz)
                    self._prefilter = line_prefilter
                    if got is not None:
                        yield base + k, got
                done = k + 1
            base += len(chunk)

    def _candidate_lines(self, chunk: list[str], text: str) -> list[int]:
        """Indexes of the lines of `chunk` (`text` is them joined) holding a literal of the block prefilter."""
        prefilter = self._block_prefilter
        ends = prefilter.ends(text)
        if ends is not None:
            return _lines_of(text, ends)
        literals = prefilter.literals
        return self._candidates(chunk, text, literals[0] if len(literals) == 1 else None, prefilter.regex.search)

    @staticmethod
    def _candidates(chunk: list[str], text: str, single: str | None, search: Callable) -> list[int]:
        """Indexes of the lines of `chunk` (`text` is them joined) holding a literal, found with `re`."""
        bounds = list(accumulate(len(line) + 1 for line in chunk))  # bounds[k]: start of line k + 1
        candidates: list[int] = []
        pos = 0
        limit = len(text)
        while pos < limit:
            if single is not None:
                hit = text.find(single, pos)
                if hit < 0:
                    break
            else:
                m = search(text, pos)
                if m is None:
                    break
                hit = m.start()
            k = bisect_right(bounds, hit)
            candidates.append(k)
            pos = bounds[k]
        return candidates

    def _cut_safe(self, template: DateTemplate) -> bool:
        """True when cutting this template's date out cannot join text into a prefilter literal."""
        try:
            return self._safe_templates[template]
        except KeyError:
            pass
        before = template.before_date
        assert self._block_prefilter is not None
        safe = before == "" or (
            before is not None and not any(before in literal[:-1] for literal in self._block_prefilter.literals)
        )
        self._safe_templates[template] = safe
        return safe

    def _match(self, line: str, now: float, tz: tzinfo | None) -> Failure | _Ignored | None:
        fused = self._fused[self.dates._last]
        if fused is not None:
            match, date_group, content_group, pre_groups, _time_of = fused
            fm = match(line + "\n")
            if fm is not None:
                start, end = fm.span(date_group)
                # Only a non-empty date at 0 leaves `line[end:]` as the text (see `fused.py`).
                if start == 0 and end:
                    when = self._memo_time(line, 0, end, fused, fm, now, tz)
                    if when is not None:
                        self._last_time = when
                        pre = {}
                        for name, number in pre_groups:
                            value = fm.group(number)
                            if value is not None:
                                pre[name] = value
                        content = fm.group(content_group) if content_group else None
                        # No prefilter here: with the alternatives dispatched by first character, a
                        # line no failregex matches costs about what the prefilter's search would.
                        return self._failregexes(content + "\n" if content else line[end:] + "\n", pre, when)
        return self._match_steps(line, now, tz)

    def _memo_time(
        self, line: str, start: int, end: int, key: _Fused | DateTemplate, fm: re.Match[str] | None, now: float,
        tz: tzinfo | None,
    ) -> float | object | None:
        """The time of the line's date (from `start` to `end`), found by `key`: a fused regex (its match `fm`,
        or None: matched here when needed) or a date template; `_DIFFERENT` if `re` does not find that date.

        A date's groups, hence its time, depend only on its text once its span is known (see `_date_memo`):
        one comparison instead of a parse per line.
        """
        text, memo_key, memo_now, memo_tz, when = self._date_memo
        if (
            end - start == len(text)
            and key is memo_key
            and now == memo_now
            and tz is memo_tz
            and line.startswith(text, start)
        ):
            return when
        if type(key) is tuple:
            if fm is None:
                fm = key[0](line + "\n")
                if fm is None or fm.span(key[1]) != (0, end):
                    return _DIFFERENT
            when = key[4](fm, now, tz)
        else:
            m = key.regex.search(line)
            if m is None or m.span("_date") != (start, end):
                return _DIFFERENT
            when = key.parse(m, now, tz)
        self._date_memo = (line[start:end], key, now, tz, when)
        return when

    def _fuse(self, template: DateTemplate | None) -> _Fused | None:
        """The template's date and the prefregex as one regex (its `match`), with the numbers in it of the
        date's group and the content's (0: none), the prefregex's other groups (name, number) and the
        template's time parser."""
        if template is None or self.maxlines > 1 or self._prefregex is None:
            return None
        fused = fuse(template.regex, self._prefregex)
        if fused is None:
            return None
        index = fused.groupindex
        others = tuple((name, index[name]) for name in self._pref_names if name != "content")
        return fused.match, index["_date"], index.get("content", 0), others, template.time_of

    def _match_steps(self, line: str, now: float, tz: tzinfo | None) -> Failure | _Ignored | None:
        found = self.dates.locate(line, now, tz)
        if found is None:
            text = line
            when = None
        else:
            start, end, when = found
            text = line[:start] + line[end:] if start != end else line
            if when is not None:
                self._last_time = when
        if when is None:
            last = self._last_time
            when = last if last is not None and last > now - 60 else now
        prefilter = self._prefilter
        if prefilter is not None and not prefilter(text):
            return None
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
        return self._failregexes(buf, pre, when)

    def _failregexes(self, buf: str, pre: dict[str, str], when: float) -> Failure | _Ignored | None:
        """The failregexes and ignoreregexes on the text the prefregex left (`buf`, newline-ended)."""
        if self._exact_combined:
            dispatch = self._dispatch
            pattern, alternatives = dispatch.by_first[buf[0]]  # type: ignore[union-attr]
            cm = pattern.match(buf)
            if cm is None:
                return None
            # The alternative's own group closes last, so `lastindex` names the alternative.
            index, numbers, names = alternatives[cm.lastindex]
            if self._ignoreregex and _any_search(self._ignoreregex, buf):
                return IGNORED
            groups = pre  # a fresh dict: the alternative's groups are added to it
            # `group(a, b, …)` returns a tuple, `group(a)` a string; without groups, `zip` ends at once.
            values = cm.group(*numbers) if len(numbers) > 1 else (cm.group(*numbers),)
            for name, value in zip(names, values, strict=False):
                if value is not None:
                    groups[name] = value
            return self._failure(index, self._with_alternates(index, groups), when)
        hit = self._search(buf)
        if hit is None:
            return None
        index, m = hit
        if _any_search(self._ignoreregex, buf):
            return IGNORED
        if self.maxlines > 1:
            self._drop_matched(buf, m)
        groups = _merge_alternates({**pre, **{k: v for k, v in m.groupdict().items() if v is not None}})
        return self._failure(index, groups, when)

    def _with_alternates(self, index: int, groups: dict[str, str]) -> dict[str, str]:
        """`_merge_alternates` for failregex `index`, as its plan (`_alt_merge`) says."""
        plan = self._alt_merge[index]
        if plan is True:
            return _merge_alternates(groups)
        if plan is not None:
            for key, target in plan:
                value = groups.get(key)
                if value is not None and not groups.get(target):
                    groups[target] = value
        return groups

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
        skipped = {line for k, v in m.groupdict().items() if k.startswith("skiplines") and v for line in v.splitlines()}
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
        host = _normalise_host(groups, self.raw_hosts)
        if host == _UNRESOLVED:
            return None
        if host is None:
            if fid is None:
                if mlfid is not None:
                    groups["mlfpending"] = 1  # the address will come on a later line
                return None
            host = fid
        fields = {k: v for k, v in groups.items() if k not in _NOT_FIELDS and isinstance(v, str)}
        return _make_failure(host, when, fid if fid != host else None, fields, index)

    def _merge_multiline(self, mlfid: str, fail: dict) -> dict | None:
        """Merge a line into its connection's state; None while the connection has no failure."""
        connections = self._mlfid
        cached = connections.get(mlfid)
        gained = fail.get("mlfgained")
        if gained:
            fail.setdefault("nofail", gained)
            nofail = True
        else:
            nofail = bool(fail.get("nofail"))
        forget = fail.pop("mlfforget", None)
        if cached is None and forget and nofail and not fail.get("mlfpending"):
            return None  # the end of a connection not remembered, without failure: nothing to do
        user = fail.get("user")
        if cached is not None:
            if user:
                first = cached.get(_USERS)
                if first is None:
                    cached[_USERS] = user
                elif first != user:
                    cached[_USERS] = True
            several = cached.get(_USERS) is True
            cached.pop("nofail", None)
            cached.pop("mlfgained", None)
            if gained:
                cached.pop("mlfpending", None)
            cached.update(fail)
            fail = cached
            if forget:
                del connections[mlfid]
        else:
            several = False
            if user:
                fail[_USERS] = user
            if not forget:
                connections[mlfid] = fail
                if len(connections) > MLFID_LIMIT:  # bounded: drop the oldest connection
                    connections.popitem(last=False)
        if fail.pop("mlfpending", 0) or several:
            fail.pop("nofail", None)
            fail.pop("mlfgained", None)
            nofail = False
        return None if nofail else fail


def _chunks(lines: Iterable[str]) -> Iterator[tuple[list[str], str]]:
    """`Filter.scan`'s lines in lists of at most `_BLOCK_LINES` lines without their endings, each with its
    lines joined by newlines (a `Lines` block from `read_byte_blocks` comes with that text)."""
    if type(lines) is Lines and len(lines) <= _BLOCK_LINES:
        yield lines, lines.text
        return
    source = iter(lines)
    while True:
        chunk = list(islice(source, _BLOCK_LINES))
        if not chunk:
            return
        text = "\n".join(chunk)
        if "\r" in text or "\n\n" in text or text.endswith("\n"):  # lines passed with their ending
            chunk = [line.rstrip("\r\n") for line in chunk]
            text = "\n".join(chunk)
        yield chunk, text


def _lines_of(text: str, ends: list[int]) -> list[int]:
    """Indexes of the lines of `text` (newline-separated) in which the given end offsets of literals fall,
    in order and each once (a literal holds no newline: its last character is on its line)."""
    ends.sort()
    found: list[int] = []
    count = text.count
    find = text.find
    limit = len(text)
    line = 0
    pos = 0
    next_start = 0  # where the line after the last one found starts
    for end in ends:
        last = end - 1
        if last < next_start:
            continue
        line += count("\n", pos, last)
        pos = last
        found.append(line)
        newline = find("\n", last)
        next_start = newline + 1 if newline >= 0 else limit
    return found


class Lines(list):
    """A block of lines that also holds `text`: the lines joined by newlines (`read_byte_blocks`)."""

    __slots__ = ("text",)


def _block(text: str) -> Lines | None:
    """The lines fail2ban-regex tests of `text` (complete lines joined by newlines), or None if none."""
    lines = Lines(text.split("\n"))
    # `"" in lines` and a search for "#" cost far less than searching the text for "\n\n" and "\n#".
    if "" in lines or ("#" in text and (text[0] == "#" or "\n#" in text)):
        lines = Lines([line for line in lines if line and line[0] != "#"])
        if not lines:
            return None
        text = "\n".join(lines)
    lines.text = text
    return lines


def _universal(text: str) -> str:
    """The text as a text-mode file reads it: `\\r\\n` and `\\r` become `\\n`."""
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def read_byte_blocks(
    raw: IO[bytes], size: int = 1 << 18, encoding: str = "utf-8", errors: str = "replace"
) -> Iterator[Lines]:
    """`read_blocks` of a binary file, as a text-mode file of that encoding reads it (for encodings in
    which a newline byte is a newline wherever it stands, like UTF-8).

    Faster: bytes are cut at the last newline and decoded at once, and only a block holding `\\r` pays
    for newline translation (a text-mode file scans every block for it).
    """
    rest = b""
    while True:
        chunk = raw.read(size)
        if not chunk:
            break
        data = rest + chunk if rest else chunk
        cut = data.rfind(b"\n") + 1
        if not cut:
            rest = data
            continue
        rest = data[cut:]
        # Without the last newline: a `\r` left at the end (of `\r\n`) only adds an empty line, left out.
        block = _block(_universal(data[: cut - 1].decode(encoding, errors)))
        if block is not None:
            yield block
    if b"\r" in rest:  # lines ended by `\\r` alone, then a last line without its ending (left out)
        text = _universal(rest.decode(encoding, errors))
        block = _block(text[: text.rfind("\n") + 1][:-1])
        if block is not None:
            yield block


def read_blocks(handle: IO[str], size: int = 1 << 20) -> Iterator[list[str]]:
    """The lines of a text file that fail2ban-regex tests, in lists, reading about `size` characters at once.

    Comments (`#…`) and empty lines are left out, and so is a last line without its newline: a writer is
    still appending it (fail2ban's file reader waits for the newline).  A text-mode file already turns
    `\\r\\n` and `\\r` into `\\n`.
    """
    rest = ""
    while True:
        chunk = handle.read(size)
        if not chunk:
            break
        text = rest + chunk
        lines = text.split("\n")
        rest = lines.pop()
        if text[0] in "#\n" or "\n#" in text or "\n\n" in text:
            lines = [line for line in lines if line and line[0] != "#"]
        if lines:
            yield lines
