"""Errors of the guard subsystem.

One base class (`GuardError`) so callers can catch everything the guard raises, and precise
subclasses that carry the offending path or option, because a filter that does not load is a
configuration mistake the operator must be able to locate.
"""


class GuardError(Exception):
    """Base error for everything raised by `medvault.guard`."""


class FilterError(GuardError):
    """A filter file is missing, unreadable or holds a regex that does not compile."""


class ConfigError(GuardError):
    """The guard's TOML configuration is invalid; the message names the key's path."""
