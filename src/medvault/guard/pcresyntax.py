"""A Python regex rewritten in PCRE2's syntax, for subjects on which both engines must agree.

PCRE2's JIT (`jitmatch.pyx`) runs a line's date, prefregex and failregexes many times faster than `re`,
but fail2ban's filters are Python regexes and their answers are the reference. The rewrite is made from
`re`'s own parse tree, not from the text, so every construct is one `re` understood the same way: groups
keep their numbers (every group is written as a plain numbered one, names left out), references and
conditionals go by number, `\\Z` becomes PCRE2's `\\z`, `{,n}` is spelled `{0,n}`.

The two engines agree only where their character semantics agree, so:
- the pattern may hold ASCII characters only (any other literal or class bound: no rewrite);
- the subject must be printable ASCII and tabs (`jitmatch` checks every line and leaves any other line to
  `re`): there Python's `\\d`, `\\w`, `\\s`, `\\b` and case folding are PCRE2's ASCII ones (Python's `\\s`
  also takes `\\x1c`-`\\x1f`, which such a line cannot hold);
- constructs outside the list below (locale flags, multi-line mode, unknown opcodes) give no rewrite.
The tests compare both engines on every filter of fail2ban's and on generated and sample logs.
"""

from __future__ import annotations

import re
from typing import Any

from medvault.guard.regexparse import constants as _c
from medvault.guard.regexparse import parser as _p

_CATEGORIES = {
    _c.CATEGORY_DIGIT: r"\d",
    _c.CATEGORY_NOT_DIGIT: r"\D",
    _c.CATEGORY_SPACE: r"\s",
    _c.CATEGORY_NOT_SPACE: r"\S",
    _c.CATEGORY_WORD: r"\w",
    _c.CATEGORY_NOT_WORD: r"\W",
}
_AT = {
    _c.AT_BEGINNING: "^",
    _c.AT_BEGINNING_STRING: r"\A",
    _c.AT_END: "$",
    _c.AT_END_STRING: r"\z",
    _c.AT_BOUNDARY: r"\b",
    _c.AT_NON_BOUNDARY: r"\B",
}
_FLAGS = {2: "i", 16: "s"}  # re.IGNORECASE, re.DOTALL: the scoped flags with a meaning after parsing
_IGNORED_FLAGS = 32 | 64 | 256  # re.UNICODE, re.VERBOSE (already applied by the parser), re.ASCII
_PCRE_MAX_REPEAT = 65535
_BOUNDS = {(0, 1): "?", (0, _c.MAXREPEAT): "*", (1, _c.MAXREPEAT): "+"}
_SINGLE = {_c.LITERAL, _c.NOT_LITERAL, _c.ANY, _c.IN, _c.CATEGORY}  # one character each


class _Unsupported(Exception):
    pass


def _char(code: int) -> str:
    if code > 0x7F:
        raise _Unsupported
    return chr(code) if chr(code).isalnum() else f"\\x{code:02x}"


def _flags(flags: int) -> str:
    if flags & ~(_IGNORED_FLAGS | 2 | 16):
        raise _Unsupported  # multi-line or locale mode
    return "".join(letter for bit, letter in _FLAGS.items() if flags & bit)


def _class(items: Any) -> str:
    if len(items) == 1 and items[0][0] is _c.CATEGORY and items[0][1] in _CATEGORIES:
        return _CATEGORIES[items[0][1]]  # `[\d]`
    out = []
    for op, av in items:
        if op is _c.NEGATE:
            out.append("^")
        elif op is _c.LITERAL:
            out.append(_char(av))
        elif op is _c.RANGE:
            out.append(f"{_char(av[0])}-{_char(av[1])}")
        elif op is _c.CATEGORY and av in _CATEGORIES:
            out.append(_CATEGORIES[av])
        else:
            raise _Unsupported
    return "[" + "".join(out) + "]"


def _repeat(op: Any, av: Any) -> str:
    low, high, item = av
    if (high != _c.MAXREPEAT and high > _PCRE_MAX_REPEAT) or low > _PCRE_MAX_REPEAT:
        raise _Unsupported
    bound = _BOUNDS.get((low, high)) or (f"{{{low},}}" if high == _c.MAXREPEAT else f"{{{low},{high}}}")
    suffix = "?" if op is _c.MIN_REPEAT else "+" if op is _c.POSSESSIVE_REPEAT else ""
    # One character or class repeated stays one opcode; a group repeated {m,n} is compiled n times over, and
    # PCRE2's compiled size is bounded (sshd's ddos mode would not fit).
    single = len(item) == 1 and item[0][0] in _SINGLE
    return f"{_sequence(item) if single else f'(?:{_sequence(item)})'}{bound}{suffix}"


def _item(op: Any, av: Any) -> str:
    if op is _c.LITERAL:
        return _char(av)
    if op is _c.NOT_LITERAL:
        return f"[^{_char(av)}]"
    if op is _c.ANY:
        return "."
    if op is _c.IN:
        return _class(av)
    if op is _c.CATEGORY and av in _CATEGORIES:
        return _CATEGORIES[av]
    if op is _c.AT and av in _AT:
        return _AT[av]
    if op is _c.BRANCH:
        return "(?:" + "|".join(_sequence(sub) for sub in av[1]) + ")"
    if op is _c.SUBPATTERN:
        group, add, delete, sub = av
        scope = _flags(add) + ("-" + _flags(delete) if _flags(delete) else "")
        inner = _sequence(sub)
        if scope:
            inner = f"(?{scope}:{inner})"
        return f"({inner})" if group is not None else f"(?:{inner})"
    if op is _c.ATOMIC_GROUP:
        return f"(?>{_sequence(av)})"
    if op in (_c.MAX_REPEAT, _c.MIN_REPEAT, _c.POSSESSIVE_REPEAT):
        return _repeat(op, av)
    if op in (_c.ASSERT, _c.ASSERT_NOT):
        direction, sub = av
        kind = ("=" if op is _c.ASSERT else "!") if direction > 0 else ("<=" if op is _c.ASSERT else "<!")
        return f"(?{kind}{_sequence(sub)})"
    if op is _c.GROUPREF:
        return f"(?:\\g{{{av}}})"
    if op is _c.GROUPREF_EXISTS:
        group, yes, no = av
        return f"(?({group}){_sequence(yes)}" + (f"|{_sequence(no)}" if no is not None else "") + ")"
    raise _Unsupported


def _sequence(items: Any) -> str:
    return "".join(_item(op, av) for op, av in items)


def to_pcre2(pattern: str) -> str | None:
    """`pattern` (Python `re` syntax) in PCRE2 syntax with the same group numbers, or None (see above)."""
    try:
        parsed = _p.parse(pattern)
        flags = _flags(parsed.state.flags)
        return (f"(?{flags})" if flags else "") + _sequence(parsed)
    except (_Unsupported, re.error):
        return None
