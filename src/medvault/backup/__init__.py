"""Encrypted, incremental backups of a data folder taken while the server runs, and their restore.

`snapshot` takes one (database via SQLite's online backup API, then the blobs its rows reference), `restore`
rebuilds an empty data folder from one; `ageio` is the only code that encrypts (the `age` tool), `files` the
only code that writes into a destination (temp + fsync + rename), `manifest` what a snapshot lists.
"""

from __future__ import annotations


class BackupError(RuntimeError):
    """A backup or restore that cannot be done, or a backup that does not verify; the message says why."""
