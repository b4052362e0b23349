"""The standard library's regex parser, for the guard's analyses of a regex's structure (prefilter
literals, first characters, whether a prefregex can be fused, date groups).

`re._parser` and `re._constants` are private names of Python 3.11+ (the project's minimum); importing them
in one place leaves one place to follow if they move.
"""

from re import _constants as constants
from re import _parser as parser

REPEATS = frozenset({constants.MAX_REPEAT, constants.MIN_REPEAT, constants.POSSESSIVE_REPEAT})
ZERO_WIDTH = frozenset({constants.AT, constants.ASSERT, constants.ASSERT_NOT})

__all__ = ["REPEATS", "ZERO_WIDTH", "constants", "parser"]
