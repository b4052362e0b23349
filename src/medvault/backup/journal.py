"""The journal a restore into a bucket puts under the prefix before its first blob, and removes once it is done.

A restore killed half-way (`kill -9` runs no clean-up) leaves the blobs it had put. Without a journal the next
try could not tell them from someone else's objects and would have to refuse the bucket; with one, a bucket
holding only the journal of the same snapshot and blobs of that snapshot's manifest is that restore, resumed:
those blobs are kept once read back and hashed (a name and a size prove nothing), its incomplete uploads are
aborted and the rest is put. Anything else under the prefix is still refused. The journal holds the snapshot ID
and the SHA-256 of its encrypted manifest (what the backup folder shows anyway) and a random token for each run:
a run whose token was replaced (a second restore resumed it meanwhile) deletes nothing when it fails.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from medvault.backup import BackupError

NAME = "medvault-restore.json"
FORMAT = "medvault-restore/v1"


@dataclass(frozen=True)
class Journal:
    snapshot: str
    manifest_sha256: str
    token: str

    def to_json(self) -> bytes:
        body = {"format": FORMAT, "snapshot": self.snapshot, "manifest_sha256": self.manifest_sha256}
        return json.dumps({**body, "token": self.token}).encode()

    @classmethod
    def from_json(cls, data: bytes, where: str) -> Journal:
        try:
            body = json.loads(data)
            if body["format"] != FORMAT:
                raise ValueError
            return cls(str(body["snapshot"]), str(body["manifest_sha256"]), str(body["token"]))
        except (ValueError, KeyError, TypeError):
            raise BackupError(f"{where}{NAME} is not a restore's journal: restore only into an empty bucket") from None

    def same_backup(self, other: Journal) -> bool:
        return (self.snapshot, self.manifest_sha256) == (other.snapshot, other.manifest_sha256)


def resumable(
    found: Journal,
    mine: Journal,
    objects: dict[str, int],
    uploads: list[tuple[str, str]],
    blobs: dict[str, tuple[int, str]],
    where: str,
) -> tuple[set[str], list[tuple[str, str]]]:
    """(blobs already put, incomplete uploads to abort) of the interrupted restore `found` that `mine` resumes,
    given what lies under the prefix and the snapshot's manifest; BackupError if anything else is there."""
    if not found.same_backup(mine):
        raise BackupError(
            f"{where} holds an unfinished restore of snapshot {found.snapshot}, not of {mine.snapshot}: resume it "
            "from the backup whose newest snapshot that is, or empty the prefix"
        )
    kept = {name: size for name, size in objects.items() if name != NAME}
    foreign = sorted(n for n in kept if n not in blobs) + sorted(n for n, _ in uploads if n not in blobs)
    if foreign:
        raise BackupError(
            f"{where} holds {foreign[0][:60]!r} beside an unfinished restore, which is not a blob of snapshot "
            f"{mine.snapshot}: restore only into an empty bucket, or one that restore left"
        )
    for name, size in kept.items():
        if size != blobs[name][0]:
            raise BackupError(f"{where}{name} is not the size the manifest gives: empty the prefix and restore again")
    return set(kept), uploads
