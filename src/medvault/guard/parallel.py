"""Match a whole log file on several cores, with exactly the results of one sequential `Filter.scan`.

The file is cut into line-aligned byte ranges.  The parent scans the first range with the caller's
filter; worker processes (forked, so they share the compiled filter) scan the others, each starting
from empty state.  A filter carries state from line to line, so a worker's result is only right if
its range does not depend on the state the previous range left.  The parent checks that, in file
order, against the state the previous range really ended in, and re-scans a range itself (with the
carried state) when a check fails:

* date template: the detector tries the template that matched last first.  The worker started with
  none, so its first dated line got the first template in priority order; the carried template
  would have been tried first and wins if it matches that line.  Checked on that line.
* time of undated lines: a line without a date takes the previous line's time (if recent).  A
  failure the worker found before any line of its range set a time is rejected when the carried
  time would have been used instead.
* connections (`<F-MLFID>`, sshd): `Filter._mlfid` remembers up to `MLFID_LIMIT` connections and
  drops the oldest beyond.  In the worker it is a `_Connections` dict that records what is needed:
  the ids it looked up and did not find while connections of the previous range could still be
  remembered; none of them may be in the carried state.  Then the true state is, at every line, the
  carried connections not yet pushed out followed by the worker's (see `_carry`), and how many are
  remembered after the range is `min(count before + net, cap)`, two numbers the worker tracks.

Multi-line filters (`maxlines` > 1) buffer lines across the cut and always run sequentially.
Where `fork` is unavailable, or with one job, everything runs in this process.
"""

from __future__ import annotations

import codecs
import io
import itertools
import multiprocessing
import os
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from typing import Any

from medvault.guard import matcher
from medvault.guard.matcher import IGNORED, Failure, Filter, _Ignored, _make_failure, read_blocks, read_byte_blocks

_UNBOUNDED = 1 << 62
_MISSING = object()
_dict_get = dict.get
_READ_SIZE = 1 << 16  # 64 KiB: as fast as 1 MiB reads, and ~10 MB less at the peak (each read is split into lines)
_MIN_SPLIT_BYTES = 4 << 20  # smaller files: starting processes costs more than it saves
# The parent's range is longer: a worker's lines cost more (its connections record what the parent
# checks) and its result still has to be sent and merged when it is done (measured on sshd: 1.1).
_PARENT_WEIGHT = 1.1
Result = tuple[int, Failure | _Ignored]


# --- what a scan collects ------------------------------------------------------------------------


class Tally:
    """Counts of a scan: lines, matched, ignored, matches per host, and optionally matched lines."""

    def __init__(self, keep_lines: bool = False) -> None:
        self.lines = 0
        self.matched = 0
        self.ignored = 0
        self.hosts: Counter[str] = Counter()
        self.matched_lines: list[str] | None = [] if keep_lines else None

    @property
    def missed(self) -> int:
        return self.lines - self.matched - self.ignored

    def consume(self, lines: list[str], base: int, pairs: Iterable[tuple[int, Any]]) -> None:
        ignored = 0
        hosts: list[str] = []
        keep = self.matched_lines
        for index, got in pairs:
            if got is IGNORED:
                ignored += 1
            else:
                hosts.append(got.host)
                if keep is not None:
                    keep.append(lines[index])
        self.lines += len(lines)
        self.ignored += ignored
        self.matched += len(hosts)
        self.hosts.update(hosts)

    def payload(self) -> tuple:
        return (self.lines, self.matched, self.ignored, self.hosts, self.matched_lines)

    def merge(self, payload: tuple, offset: int) -> None:
        lines, matched, ignored, hosts, matched_lines = payload
        self.lines += lines
        self.matched += matched
        self.ignored += ignored
        self.hosts.update(hosts)
        if self.matched_lines is not None:
            self.matched_lines.extend(matched_lines)


class Results:
    """Every `(line index, Failure | IGNORED)`, as `Filter.scan` yields them over the whole file.

    Workers send compact tuples (not `Failure` objects) back: pickling ~300k objects costs more
    than the matching it saves.
    """

    def __init__(self) -> None:
        self.lines = 0
        self.items: list[Result] = []
        self._compact: list[tuple] = []

    def consume(self, lines: list[str], base: int, pairs: Iterable[tuple[int, Any]]) -> None:
        start = self.lines + base
        self.items.extend((start + index, got) for index, got in pairs)
        self.lines += len(lines)

    def payload(self) -> list[tuple]:
        return [
            (index,) if got is IGNORED else (index, got.host, got.time, got.fid, got.fields, got.regex_index)
            for index, got in self.items
        ]

    def merge(self, payload: list[tuple], offset: int) -> None:
        self.items.extend(
            (row[0] + offset, IGNORED) if len(row) == 1 else (row[0] + offset, _make_failure(*row[1:]))
            for row in payload
        )


# --- reading byte ranges -------------------------------------------------------------------------


class _Range(io.RawIOBase):
    """At most `length` bytes of a file from its current position."""

    def __init__(self, raw: io.FileIO, length: int) -> None:
        super().__init__()
        self._raw = raw
        self._left = length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._left <= 0:
            return 0
        view = memoryview(buffer)
        n = self._raw.readinto(view[: min(len(view), self._left)]) or 0
        self._left -= n
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


def _open_range(path: str | Path, start: int, end: int, encoding: str, errors: str) -> io.TextIOWrapper:
    """The text of bytes `start:end` as `open(path, encoding=…, errors=…)` would read it there.

    Ranges start right after a `\\n` byte, which no multi-byte UTF-8 sequence contains and which
    ends any `\\r\\n`, so decoding and newline translation agree with reading the whole file.
    """
    raw = io.FileIO(path, "rb")
    raw.seek(start)
    return io.TextIOWrapper(io.BufferedReader(_Range(raw, end - start), _READ_SIZE), encoding=encoding, errors=errors)


def _read_range(path: str | Path, span: tuple[int, int], encoding: str, errors: str) -> Iterator[list[str]]:
    """The blocks of lines (`read_blocks`) of bytes `span` of the file, read as `open(path, encoding=…,
    errors=…)` reads them; UTF-8 (the default) is read as bytes and decoded a block at once, faster."""
    start, end = span
    if codecs.lookup(encoding).name != "utf-8":
        with _open_range(path, start, end, encoding, errors) as handle:
            yield from read_blocks(handle, _READ_SIZE)
        return
    raw = io.FileIO(path, "rb")
    raw.seek(start)
    with _Range(raw, end - start) as handle:
        yield from read_byte_blocks(handle, _READ_SIZE, encoding, errors)


def split_ranges(
    path: str | Path, parts: int, block_bytes: int | None = None, first_weight: float = 1.0
) -> list[tuple[int, int]]:
    """Byte ranges covering the file, each ending right after a `\\n` (the last: at the end).

    `parts` ranges, the first `first_weight` times as long as the others, or ranges of `block_bytes`.
    """
    size = os.path.getsize(path)
    if size == 0:
        return [(0, 0)]
    if block_bytes:
        targets = range(block_bytes, size, block_bytes)
    else:
        unit = size / (first_weight + max(parts, 1) - 1)
        targets = [round(unit * (first_weight + k)) for k in range(parts - 1)]
    bounds = [0]
    with open(path, "rb") as f:
        for target in targets:
            if target <= bounds[-1]:
                continue
            f.seek(target - 1)
            pos = target - 1
            while True:
                chunk = f.read(65536)
                found = chunk.find(b"\n")
                if found >= 0 or not chunk:
                    break
                pos += len(chunk)
            cut = pos + found + 1 if found >= 0 else size
            if cut >= size:
                break
            bounds.append(cut)
    bounds.append(size)
    return list(itertools.pairwise(bounds))


# --- the worker side -----------------------------------------------------------------------------


class _Connections(OrderedDict):
    """A worker's `Filter._mlfid`: an OrderedDict that records what the parent needs to validate it.

    The matcher only calls `get`, sets new keys, deletes (forgetting a connection), drops the oldest
    with `popitem(last=False)` when more than `MLFID_LIMIT` are remembered (which changes neither
    `net` nor `cap`) and iterates.
    """

    def __init__(self) -> None:
        super().__init__()
        self.net = 0  # connections added minus forgotten
        self.cap = _UNBOUNDED  # the count afterwards is min(count before + net, cap)
        self.misses: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        found = _dict_get(self, key, _MISSING)  # not try/except: most lookups of a log's new connections miss
        if found is _MISSING:
            # Connections of the previous range are all pushed out once net >= cap: until then, a
            # miss here might have been a hit there.
            if self.net < self.cap:
                self.misses.add(key)
            return default
        return found

    def __setitem__(self, key: str, value: Any) -> None:
        OrderedDict.__setitem__(self, key, value)
        self.net += 1
        self.cap = min(self.cap + 1, matcher.MLFID_LIMIT)

    def __delitem__(self, key: str) -> None:
        OrderedDict.__delitem__(self, key)
        self.net -= 1
        self.cap -= 1


@dataclass
class _Done:
    """A worker's range: its collected payload and what the parent checks and carries on."""

    lines: int
    payload: Any
    first_template: int | None = None
    first_line: str = ""
    early_failure: bool = False
    last_template: int | None = None
    last_time: float | None = None
    connections: OrderedDict = field(default_factory=OrderedDict)
    net: int = 0
    cap: int = _UNBOUNDED
    misses: set[str] = field(default_factory=set)


_JOB: tuple | None = None  # (filter, path, now, tz, sink factory, encoding, errors); set before forking


def _work(span: tuple[int, int]) -> _Done:
    assert _JOB is not None
    flt, path, now, tz, make_sink, encoding, errors = _JOB
    flt.reset()
    dates = flt.dates
    dates._last = None
    connections = _Connections()
    flt._mlfid = connections
    sink = make_sink()
    done = _Done(0, None)
    templates = dates.templates
    settled = False
    for block in _read_range(path, span, encoding, errors):
        k = 0
        while not settled and k < len(block):
            # Line by line until a template and a time are known: the checks need the line
            # that picked the first template and whether a failure came before any time.
            line = block[k]
            got = flt.match(line, now, tz)
            if done.first_template is None and dates._last is not None:
                done.first_template = templates.index(dates._last)
                done.first_line = line
            if isinstance(got, Failure) and flt._last_time is None:
                done.early_failure = True
            sink.consume([line], 0, [] if got is None else [(0, got)])
            settled = dates._last is not None and flt._last_time is not None
            k += 1
        if k < len(block):
            rest = block[k:] if k else block
            sink.consume(rest, 0, flt.scan(rest, now, tz))
        done.lines += len(block)
    done.payload = sink.payload()
    done.last_template = None if dates._last is None else templates.index(dates._last)
    done.last_time = flt._last_time
    done.connections = OrderedDict(connections)
    done.net, done.cap = connections.net, connections.cap
    done.misses = connections.misses
    return done


# --- the parent side -----------------------------------------------------------------------------


def _scan_here(
    flt: Filter,
    path: str | Path,
    span: tuple[int, int],
    now: float,
    tz: tzinfo | None,
    sink: Any,
    encoding: str,
    errors: str,
) -> int:
    lines = 0
    for block in _read_range(path, span, encoding, errors):
        sink.consume(block, 0, flt.scan(block, now, tz))
        lines += len(block)
    return lines


def _adopt(flt: Filter, done: _Done, now: float) -> bool:
    """Take over a worker's range if it cannot depend on the filter's current state; False if not."""
    dates = flt.dates
    carried = dates._last
    if done.first_template is not None and carried is not None:
        picked = dates.templates[done.first_template]
        if picked is not carried and carried.regex.search(done.first_line):
            return False
    last_time = flt._last_time
    if done.early_failure and last_time is not None and last_time > now - 60:
        return False
    before = flt._mlfid
    if not before.keys().isdisjoint(done.misses):
        return False
    if done.last_template is not None:
        dates._last = dates.templates[done.last_template]
    if done.last_time is not None:
        flt._last_time = done.last_time
    flt._mlfid = _carry(before, done.connections, done.net, done.cap)
    return True


def _carry(before: dict, worker: dict, net: int, cap: int) -> dict:
    """The connections after a range that `_adopt` accepted.

    With no lookup of a carried connection in the range, the true state is at every line the
    carried connections not yet pushed out followed by exactly the worker's: an id is new to both or
    known to both, so both add, forget and push out the same ones of the range's own (the oldest
    carried ones go first).  Only how many carried ones remain is left to compute.
    """
    if not before:
        return worker
    count = min(len(before) + net, cap)
    kept = count - len(worker)
    assert 0 <= kept <= len(before)
    return OrderedDict([*list(before.items())[len(before) - kept :], *worker.items()]) if kept else worker


def _can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def _run(
    flt: Filter,
    path: str | Path,
    now: float,
    tz: tzinfo | None,
    jobs: int | None,
    make_sink: Callable[[], Any],
    block_bytes: int | None,
    encoding: str,
    errors: str,
) -> Any:
    global _JOB
    jobs = jobs or os.cpu_count() or 1
    sink = make_sink()
    small = block_bytes is None and os.path.getsize(path) < _MIN_SPLIT_BYTES
    if jobs <= 1 or small or flt.maxlines > 1 or not _can_fork():
        _scan_here(flt, path, (0, os.path.getsize(path)), now, tz, sink, encoding, errors)
        return sink
    spans = split_ranges(path, jobs, block_bytes, _PARENT_WEIGHT)
    if len(spans) == 1:
        _scan_here(flt, path, spans[0], now, tz, sink, encoding, errors)
        return sink
    _JOB = (flt, path, now, tz, make_sink, encoding, errors)
    try:
        with multiprocessing.get_context("fork").Pool(min(jobs - 1, len(spans) - 1)) as pool:
            pending = pool.imap(_work, spans[1:])
            offset = _scan_here(flt, path, spans[0], now, tz, sink, encoding, errors)
            for span, done in zip(spans[1:], pending, strict=True):
                if _adopt(flt, done, now):
                    sink.merge(done.payload, offset)
                    sink.lines = offset + done.lines
                    offset += done.lines
                else:
                    offset += _scan_here(flt, path, span, now, tz, sink, encoding, errors)
    finally:
        _JOB = None
    return sink


def tally_file(
    flt: Filter,
    path: str | Path,
    now: float,
    tz: tzinfo | None = None,
    *,
    jobs: int | None = None,
    keep_lines: bool = False,
    block_bytes: int | None = None,
    encoding: str = "utf-8",
    errors: str = "replace",
) -> Tally:
    """Count lines, matches (per host) and ignored lines of a file, like `Filter.scan` over it.

    `jobs` processes (default: one per CPU); `keep_lines` also collects the matched lines in order;
    `block_bytes` cuts the file into more ranges than jobs (the tests use it to force many cuts).
    """
    return _run(flt, path, now, tz, jobs, lambda: Tally(keep_lines), block_bytes, encoding, errors)


def scan_file(
    flt: Filter,
    path: str | Path,
    now: float,
    tz: tzinfo | None = None,
    *,
    jobs: int | None = None,
    block_bytes: int | None = None,
    encoding: str = "utf-8",
    errors: str = "replace",
) -> list[Result]:
    """`list(Filter.scan(lines of the file))` computed on `jobs` processes, with the same state after."""
    return _run(flt, path, now, tz, jobs, Results, block_bytes, encoding, errors).items
