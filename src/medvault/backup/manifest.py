"""What one snapshot holds: the encrypted state file and every blob, each with its size and SHA-256.

The manifest is written last, itself age-encrypted (which blobs belong to which snapshot says when records
came and went), so a snapshot folder without `manifest.json.age` is an unfinished one and is never restored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from medvault.backup import BackupError

FORMAT = "medvault-backup/v1"
STATE = "state.tar.age"
MANIFEST = "manifest.json.age"


@dataclass
class Manifest:
    snapshot: str
    created_at: float
    state_sha256: str
    state_size: int
    blobs: dict[str, tuple[int, str]] = field(default_factory=dict)  # name -> (size, sha256)

    def to_json(self) -> bytes:
        body = {
            "format": FORMAT,
            "snapshot": self.snapshot,
            "created_at": self.created_at,
            "state": {"sha256": self.state_sha256, "size": self.state_size},
            "blobs": {n: {"size": s, "sha256": h} for n, (s, h) in sorted(self.blobs.items())},
        }
        return json.dumps(body, indent=1).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        try:
            body = json.loads(data)
            if body["format"] != FORMAT:
                raise BackupError(f"unknown backup format {body['format']!r}")
            return cls(
                body["snapshot"],
                float(body["created_at"]),
                body["state"]["sha256"],
                int(body["state"]["size"]),
                {n: (int(b["size"]), b["sha256"]) for n, b in body["blobs"].items()},
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            raise BackupError("the snapshot's manifest is malformed") from None
