"""Read fail2ban filter files unmodified.

Operators already own years of tuned fail2ban filters, and Debian ships a hundred of them with
annotated sample logs; reading that format as-is lets MedVault reuse both and lets its own filters
be checked with `fail2ban-regex`.  This module only turns files into a `FilterSpec` of plain
strings; compiling regexes is `matcher.py`'s job, so the config semantics can be tested alone.

The format is an INI dialect with three layers of substitution, applied in this order:

* `[INCLUDES] before/after` pull in other files (relative to the filter's folder), each followed
  by its `.local` override; later files override earlier values, and `%(known/opt)s` reaches the
  value an option had before the current file redefined it.
* `%(opt)s` and `%(section/opt)s` (ConfigParser style) resolve within a section, then `[DEFAULT]`.
* `<opt>` tags (fail2ban style) resolve against filter options given by the caller
  (`sshd[mode=aggressive]`), then `[Init]`, then `[Definition]`/`[DEFAULT]`; tags nest
  (`<mdre-<mode>>`) and unknown tags such as `<HOST>` are left for the regex compiler.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from medvault.guard.errors import FilterError

DEFAULT_FILTER_DIR = Path("/etc/fail2ban/filter.d")

_SECTION_RE = re.compile(r"^\[([^\]]+)\]\s*$")
_OPTION_RE = re.compile(r"^([^=:\s][^=:]*?)\s*[=:]\s?(.*)$")
_PERCENT_RE = re.compile(r"%\(([^)]+)\)s")
_TAG_RE = re.compile(r"<([A-Za-z_][\w\-./]*)>")
_SPEC_RE = re.compile(r"^\s*([^\[\]]+?)\s*(?:\[(.*)\])?\s*$", re.S)
_OPT_ITEM_RE = re.compile(r"""\s*([\w.\-]+)\s*=\s*("(?:[^"\\]|\\.)*"|'[^']*'|[^,]*)\s*(?:,|$)""")
_MAX_DEPTH = 50


@dataclass(frozen=True)
class FilterSpec:
    """The resolved contents of one filter: regex sources still in fail2ban's tag syntax."""

    name: str
    failregex: tuple[str, ...]
    ignoreregex: tuple[str, ...] = ()
    prefregex: str | None = None
    datepattern: str | None = None
    maxlines: int = 1
    options: dict[str, str] = field(default_factory=dict)


def parse_filter_name(spec: str) -> tuple[str, dict[str, str]]:
    """Split `name[opt=value, ...]` (fail2ban's jail syntax) into a name and its options."""
    m = _SPEC_RE.match(spec)
    if not m:
        raise FilterError(f"cannot parse filter spec {spec!r}")
    name, raw = m.group(1), m.group(2)
    opts: dict[str, str] = {}
    pos = 0
    while raw and pos < len(raw):
        item = _OPT_ITEM_RE.match(raw, pos)
        if not item or item.end() == pos:
            raise FilterError(f"cannot parse filter options {raw!r}")
        value = item.group(2).strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        opts[item.group(1)] = value
        pos = item.end()
    return name, opts


def _parse_ini(text: str, path: Path) -> dict[str, dict[str, str]]:
    """Parse one INI file the way fail2ban's ConfigParser does (continuations, `#`/`;` comments)."""
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    last: str | None = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if raw[0] in " \t" and current is not None and last is not None:
            current[last] = f"{current[last]}\n{stripped}" if current[last] else stripped
            continue
        sec = _SECTION_RE.match(stripped)
        if sec:
            current = sections.setdefault(sec.group(1), {})
            last = None
            continue
        opt = _OPTION_RE.match(raw.rstrip())
        if not opt or current is None:
            raise FilterError(f"{path}:{lineno}: cannot parse line {raw!r}")
        last = opt.group(1).strip()
        current[last] = opt.group(2).strip()
    return sections


class _Layers:
    """All values an option took, oldest first, so `known/` can reach the overridden one."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, str], list[str]] = {}

    def add_file(self, sections: dict[str, dict[str, str]]) -> None:
        for section, options in sections.items():
            if section == "INCLUDES":
                continue
            for option, value in options.items():
                self.values.setdefault((section, option), []).append(value)

    def lookup(self, section: str, option: str, depth: int = 0) -> tuple[str, int, str] | None:
        """Return (section, layer index, raw value) of the newest definition, with DEFAULT fallback."""
        for sec in (section, "DEFAULT"):
            stack = self.values.get((sec, option))
            if stack:
                return sec, len(stack) - 1, stack[-1]
        return None


class _Resolver:
    def __init__(self, layers: _Layers, overrides: dict[str, str], origin: Path) -> None:
        self.layers = layers
        self.overrides = overrides
        self.origin = origin

    def percent(self, section: str, option: str, index: int | None = None, depth: int = 0) -> str | None:
        """`%(..)s`-interpolated value of `option` in `section` (newest layer unless `index`)."""
        if depth > _MAX_DEPTH:
            raise FilterError(f"{self.origin}: interpolation too deep at {section}/{option}")
        if index is None:
            found = self.layers.lookup(section, option)
            if found is None:
                return None
            section, index, raw = found
        else:
            raw = self.layers.values[(section, option)][index]

        def repl(m: re.Match[str]) -> str:
            ref = m.group(1)
            if ref.startswith("known/"):
                name = ref[6:]
                stack_sec = section if (section, name) in self.layers.values else "DEFAULT"
                stack = self.layers.values.get((stack_sec, name), [])
                at = (index if name == option and stack_sec == section else len(stack)) - 1
                if at < 0 and stack_sec != "DEFAULT":
                    # No earlier layer in this section: the included files' [DEFAULT] value is the known
                    # one (sendmail's `__prefix_line = %(known/__prefix_line)s…` over common.conf's).
                    stack_sec = "DEFAULT"
                    at = len(self.layers.values.get((stack_sec, name), [])) - 1
                if at < 0:
                    return ""
                return self.percent(stack_sec, name, at, depth + 1) or ""
            sec, _, name = ref.rpartition("/")
            if sec:
                value = self.percent(sec, name, depth=depth + 1)
            elif name == option:
                found = self.layers.lookup("DEFAULT" if section != "DEFAULT" else "", name)
                value = self.percent(found[0], name, found[1], depth + 1) if found else None
            else:
                value = self.percent(section, name, depth=depth + 1)
            if value is None:
                raise FilterError(f"{self.origin}: unknown reference %({ref})s in {section}/{option}")
            return value

        return _PERCENT_RE.sub(repl, raw).replace("%%", "%")

    def option(self, name: str) -> str | None:
        """Final value of a filter option: caller overrides, then [Init], then [Definition]."""
        if name in self.overrides:
            return self.overrides[name]
        for section in ("Init", "Definition"):
            if (section, name) in self.layers.values:
                return self.percent(section, name)
        return self.percent("Definition", name)

    def tags(self, value: str) -> str:
        """Substitute `<opt>` tags until nothing changes; unknown tags stay for the regex compiler."""
        for _ in range(_MAX_DEPTH):

            def repl(m: re.Match[str]) -> str:
                ref = m.group(1)
                sec, _, name = ref.rpartition("/")
                if sec == "known":
                    stack = self.layers.values.get(("Definition", name), [])
                    got = self.percent("Definition", name, len(stack) - 2) if len(stack) > 1 else None
                elif sec:
                    got = self.percent(sec, name)
                else:
                    got = self.option(name)
                return m.group(0) if got is None else got

            new = _TAG_RE.sub(repl, value)
            if new == value:
                return new
            value = new
        raise FilterError(f"{self.origin}: tag substitution does not terminate")


def _read_with_includes(path: Path, layers: _Layers, seen: set[Path]) -> None:
    if path in seen:
        raise FilterError(f"include loop at {path}")
    seen = seen | {path}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FilterError(f"cannot read filter {path}: {exc.strerror}") from None
    sections = _parse_ini(text, path)
    local = path.with_suffix(".local")
    local_sections = _parse_ini(local.read_text(encoding="utf-8"), local) if local.is_file() else {}
    includes = {**sections.get("INCLUDES", {}), **local_sections.get("INCLUDES", {})}
    for name in includes.get("before", "").split():
        _read_optional(path.parent / name, layers, seen)
    layers.add_file(sections)
    layers.add_file(local_sections)
    for name in includes.get("after", "").split():
        _read_optional(path.parent / name, layers, seen)


def _read_optional(path: Path, layers: _Layers, seen: set[Path]) -> None:
    """Included files may be absent (`common.local` usually is), like in fail2ban."""
    if path.is_file():
        _read_with_includes(path, layers, seen)


def _lines(value: str | None) -> tuple[str, ...]:
    return tuple(line.strip() for line in (value or "").splitlines() if line.strip())


def resolve_filter_path(spec: str, filter_dir: Path = DEFAULT_FILTER_DIR) -> tuple[Path, dict[str, str]]:
    """Map `path/to/x.conf[opts]` or `name[opts]` (looked up in `filter_dir`) to a file and options."""
    name, opts = parse_filter_name(spec)
    path = Path(name)
    if not path.suffix and not path.is_file():
        path = filter_dir / f"{name}.conf"
    if not path.is_file():
        raise FilterError(f"filter not found: {name}")
    return path, opts


def load_filter(path: Path | str, options: dict[str, str] | None = None) -> FilterSpec:
    """Read a filter file with its includes and resolve it under the given filter options."""
    path = Path(path)
    layers = _Layers()
    _read_with_includes(path, layers, set())
    resolver = _Resolver(layers, dict(options or {}), path)

    def get(name: str) -> str | None:
        value = resolver.option(name)
        return None if value is None else resolver.tags(value)

    failregex = _lines(get("failregex"))
    if not failregex:
        raise FilterError(f"{path}: no failregex")
    maxlines = get("maxlines")
    try:
        lines = int(maxlines) if maxlines else 1
    except ValueError:
        raise FilterError(f"{path}: maxlines is not a number: {maxlines!r}") from None
    return FilterSpec(
        name=path.stem,
        failregex=failregex,
        ignoreregex=_lines(get("ignoreregex")),
        prefregex=(get("prefregex") or "").strip() or None,
        datepattern=(get("datepattern") or "").strip() or None,
        maxlines=max(1, lines),
        options=dict(options or {}),
    )
