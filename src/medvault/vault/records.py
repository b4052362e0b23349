"""Records at rest: sealed content blob + sealed metadata + sealed signed manifest + wrapped data keys.

Uploads are encrypted as they stream in (no plaintext temp file); the row that makes a record visible is
committed only after its blob is durably in place. Reads verify the signed manifest and key commitment, and
hand out content only chunk by verified chunk.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sqlalchemy import Engine, delete, insert, or_, select, update

from medvault.blobs import Store
from medvault.crypto import CryptoError
from medvault.crypto.envelope import (
    DataKey,
    metadata_digest,
    sign_manifest,
    unwrap_data_key,
    verify_manifest,
    wrap_data_key,
)
from medvault.crypto.keyring import PrivateKeys, open_sealed, seal
from medvault.crypto.stream import StreamDecryptor, StreamEncryptor
from medvault.db.schema import record_keys, records, shares, users
from medvault.vault import IntegrityError, RecordNotFound, TooLarge, VaultError
from medvault.vault.metadata import clean_filename, validate_metadata


def usable_key(now: float):
    """A reader's key counts if it is the owner's own or comes from a share neither revoked nor expired."""
    live = select(shares.c.id).where(
        shares.c.revoked_at.is_(None), or_(shares.c.expires_at.is_(None), shares.c.expires_at > now)
    )
    return or_(record_keys.c.share_id.is_(None), record_keys.c.share_id.in_(live))


def _content_ad(record_id: str, version: int) -> bytes:
    return f"medvault/record-content/v1:{record_id}:{version}".encode()


def _meta_ad(record_id: str, version: int, kind: str) -> bytes:
    return f"medvault/record-{kind}/v1:{record_id}:{version}".encode()


class Upload:
    """One record being received: feed plaintext with `write`, then `finish` or `abort` (or `seal`, then
    `insert` in a transaction of the caller's or `discard`)."""

    def __init__(self, vault: Vault, owner_id: str, max_bytes: int):
        self.record_id = str(uuid.uuid4())
        self.version = 1
        self._vault = vault
        self._owner_id = owner_id
        self._max = max_bytes
        self._key = DataKey.generate()
        self._enc = StreamEncryptor(self._key.content_key, _content_ad(self.record_id, self.version))
        self._blob = vault.blobs.create()
        self._blob.write(self._enc.header())
        self._sha = hashlib.sha256()
        self.size = 0
        self.keep_head = 0  # a caller may keep the first bytes of plaintext in memory (search indexing)
        self.head = bytearray()
        self.metadata: dict = {}
        self.created_at = 0.0
        self.supersedes: str | None = None  # set by the caller for a new version of an existing record
        self._mac = None
        self._row: dict | None = None  # made by `seal`

    def keep_duplicate_hash(self, key: bytes) -> None:
        """Also compute HMAC-SHA256(key, plaintext): the keyed hash that finds exact duplicates in one chart."""
        self._mac = hmac.new(key, digestmod=hashlib.sha256)

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self._max:
            raise TooLarge(f"File exceeds the upload limit of {self._max} bytes")
        self._sha.update(data)
        if self._mac is not None:
            self._mac.update(data)
        if len(self.head) < self.keep_head:
            self.head += data[: self.keep_head - len(self.head)]
        self._blob.write(self._enc.update(data))

    def finish(
        self,
        metadata: dict,
        filename: str | None,
        content_type: str | None,
        uploader_id: str,
        uploader_keys: PrivateKeys,
        more_readers: Callable[[dict], list[tuple[str, str]]] | None = None,
    ) -> str:
        """Seal and commit; `more_readers(metadata)` names (reader, share) pairs that get the key too."""
        self.seal(metadata, filename, content_type, uploader_id, uploader_keys)
        try:
            extra = more_readers(self.metadata) if more_readers is not None else []
            with self._vault._engine.begin() as conn:
                self.insert(conn, extra)
        except Exception:
            self.discard()
            raise
        return self.record_id

    def seal(
        self,
        metadata: dict,
        filename: str | None,
        content_type: str | None,
        uploader_id: str,
        uploader_keys: PrivateKeys,
    ) -> None:
        """Finish the blob (fsynced and in place) and make the record row, not yet committed: `insert` commits
        it in the caller's transaction (an import commits all its records at once) and `discard` undoes it."""
        if self.size == 0:
            raise VaultError("The file is empty")
        meta = validate_metadata(metadata)
        meta["filename"] = clean_filename(filename)
        meta["content_type"] = (content_type or "application/octet-stream")[:100]
        self._blob.write(self._enc.finalize())
        manifest = sign_manifest(
            {
                "record_id": self.record_id,
                "version": self.version,
                "sha256": self._sha.hexdigest(),
                "size": self.size,
                "metadata_sha256": metadata_digest(meta),
                "key_commitment": self._key.commitment,
                "signer": uploader_id,
            },
            uploader_keys.ed25519,
        )
        mkey = self._key.metadata_key
        row = {
            "id": self.record_id,
            "version": self.version,
            "owner_id": self._owner_id,
            "uploader_id": uploader_id,
            "created_at": time.time(),
            "size": self.size,
            "stream_header": self._enc.header(),
            "sealed_metadata": seal(mkey, json.dumps(meta).encode(), _meta_ad(self.record_id, self.version, "meta")),
            "sealed_manifest": seal(
                mkey, json.dumps(manifest).encode(), _meta_ad(self.record_id, self.version, "manifest")
            ),
            "dup_hash": self._mac.hexdigest() if self._mac is not None else None,
            "supersedes": self.supersedes,
        }
        row["blob"] = self._blob.commit()
        self._row, self.metadata, self.created_at = row, meta, row["created_at"]

    def insert(self, conn, more_readers: list[tuple[str, str]]) -> None:
        """Insert the sealed record, its key wrapped to the owner and to each (reader, share) pair, in `conn`'s
        transaction: the record is visible once that commits."""
        self._vault.insert(conn, self._row, self._key, [(self._owner_id, None), *more_readers])

    def discard(self) -> None:
        """Remove every trace of an upload whose row was not committed: the temp file, or the sealed blob."""
        self._blob.abort()
        if self._row is not None:
            self._vault.blobs.delete(self._row["blob"])

    def abort(self) -> None:
        self._blob.abort()


@dataclass
class OpenRecord:
    id: str
    owner_id: str
    uploader_id: str
    created_at: float
    size: int
    metadata: dict
    signed_by: str
    signature_valid: bool
    decryptor: StreamDecryptor
    blob: str

    def as_json(self) -> dict:
        return {
            "id": self.id,
            **self.metadata,
            "size": self.size,
            "uploaded_at": self.created_at,
            "signed_by": self.signed_by,
            "signature_valid": self.signature_valid,
        }


class Vault:
    def __init__(self, engine: Engine, blobs: Store):
        self._engine = engine
        self.blobs = blobs

    def begin_upload(self, owner_id: str, max_bytes: int) -> Upload:
        return Upload(self, owner_id, max_bytes)

    def insert(self, conn, row: dict, key: DataKey, readers: list[tuple[str, str | None]]) -> None:
        """Insert the record row with its data key wrapped to each (reader, share) pair, in `conn`'s transaction."""
        ids = [reader for reader, _ in readers]
        publics = dict(conn.execute(select(users.c.id, users.c.x25519_public).where(users.c.id.in_(ids))).all())
        conn.execute(insert(records).values(**row))
        for reader, share_id in readers:
            self.grant(conn, row["id"], reader, publics[reader], key, share_id, row["created_at"])

    @staticmethod
    def grant(
        conn, record_id: str, reader_id: str, public: bytes, key: DataKey, share_id: str | None, at: float
    ) -> None:
        conn.execute(
            insert(record_keys).values(
                record_id=record_id,
                reader_id=reader_id,
                granted_at=at,
                share_id=share_id,
                wrapped_key=wrap_data_key(key, public, record_id, reader_id),
            )
        )

    def data_key(self, record_id: str, reader_id: str, keys: PrivateKeys) -> DataKey:
        """The data key of a record the reader holds a usable key for."""
        with self._engine.connect() as conn:
            wrapped = conn.execute(
                select(record_keys.c.wrapped_key).where(
                    record_keys.c.record_id == record_id, record_keys.c.reader_id == reader_id, usable_key(time.time())
                )
            ).scalar()
        if wrapped is None:
            raise RecordNotFound
        try:
            return unwrap_data_key(wrapped, keys.x25519, record_id, reader_id)
        except CryptoError:
            raise IntegrityError from None

    def readable_ids(self, reader_id: str, limit: int, after: float | None) -> list[tuple[str, float]]:
        query = select(record_keys.c.record_id, record_keys.c.granted_at).where(
            record_keys.c.reader_id == reader_id, usable_key(time.time())
        )
        if after is not None:
            query = query.where(record_keys.c.granted_at < after)
        query = query.order_by(record_keys.c.granted_at.desc()).limit(limit)
        with self._engine.connect() as conn:
            return [(r.record_id, r.granted_at) for r in conn.execute(query)]

    def open(self, record_id: str, reader_id: str, keys: PrivateKeys) -> OpenRecord:
        """Unwrap, decrypt and verify one record's metadata and manifest for a reader."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(records, record_keys.c.wrapped_key, users.c.username, users.c.ed25519_public)
                .join(record_keys, record_keys.c.record_id == records.c.id)
                .join(users, users.c.id == records.c.uploader_id)
                .where(records.c.id == record_id, record_keys.c.reader_id == reader_id, usable_key(time.time()))
            ).first()
        if row is None:
            raise RecordNotFound
        try:
            key = unwrap_data_key(row.wrapped_key, keys.x25519, row.id, reader_id)
            mkey = key.metadata_key
            meta = json.loads(open_sealed(mkey, row.sealed_metadata, _meta_ad(row.id, row.version, "meta")))
            manifest = json.loads(open_sealed(mkey, row.sealed_manifest, _meta_ad(row.id, row.version, "manifest")))
            decryptor = StreamDecryptor(key.content_key, _content_ad(row.id, row.version), row.stream_header, row.size)
        except (CryptoError, ValueError):
            raise IntegrityError from None
        body = manifest.get("manifest", {})
        valid = (
            verify_manifest(manifest, row.ed25519_public)
            and body.get("record_id") == row.id
            and body.get("size") == row.size
            and body.get("metadata_sha256") == metadata_digest(meta)
            and body.get("key_commitment") == key.commitment
        )
        return OpenRecord(
            row.id,
            row.owner_id,
            row.uploader_id,
            row.created_at,
            row.size,
            meta,
            row.username,
            valid,
            decryptor,
            row.blob,
        )

    def read_range(self, record: OpenRecord, start: int, end: int) -> Iterator[bytes]:
        """Yield verified plaintext of [start, end); raises IntegrityError at the first bad chunk."""
        dec = record.decryptor
        try:
            handle = self.blobs.open(record.blob)
        except OSError:
            raise IntegrityError from None
        with handle:
            for index, lo, hi in dec.chunks_for_range(start, end):
                handle.seek(dec.chunk_offset(index))
                sealed = handle.read(dec.sealed_length(index))
                try:
                    plain = dec.open_chunk(index, sealed)
                except CryptoError:
                    raise IntegrityError from None
                yield plain[lo:hi]

    def delete(self, record_id: str, owner_id: str) -> None:
        with self._engine.begin() as conn:
            blob = conn.execute(
                select(records.c.blob).where(records.c.id == record_id, records.c.owner_id == owner_id)
            ).scalar()
            if blob is None:
                raise RecordNotFound
            conn.execute(delete(record_keys).where(record_keys.c.record_id == record_id))
            conn.execute(delete(records).where(records.c.id == record_id))
        self.blobs.delete(blob)

    # Duplicates and versions: a record row may name the older version it `supersedes`; the chain is kept.

    def current_owned(self, owner_id: str) -> list[tuple[str, str | None, float]]:
        """(id, dup_hash, created_at) of the owner's records that no newer version supersedes, oldest first."""
        newer = select(records.c.supersedes).where(records.c.supersedes.is_not(None))
        query = (
            select(records.c.id, records.c.dup_hash, records.c.created_at)
            .where(records.c.owner_id == owner_id, records.c.id.not_in(newer))
            .order_by(records.c.created_at, records.c.id)
        )
        with self._engine.connect() as conn:
            return [tuple(r) for r in conn.execute(query)]

    def duplicate_of(self, record_id: str) -> str | None:
        """The oldest other current record of the same owner with the same keyed hash, if any."""
        with self._engine.connect() as conn:
            row = conn.execute(select(records.c.owner_id, records.c.dup_hash).where(records.c.id == record_id)).first()
            if row is None or row.dup_hash is None:
                return None
            newer = select(records.c.supersedes).where(records.c.supersedes.is_not(None))
            return conn.execute(
                select(records.c.id)
                .where(
                    records.c.owner_id == row.owner_id,
                    records.c.dup_hash == row.dup_hash,
                    records.c.id != record_id,
                    records.c.id.not_in(newer),
                )
                .order_by(records.c.created_at, records.c.id)
                .limit(1)
            ).scalar()

    def superseded_among(self, record_ids: list[str]) -> set[str]:
        """Those of the ids that a newer version supersedes."""
        if not record_ids:
            return set()
        with self._engine.connect() as conn:
            return set(conn.execute(select(records.c.supersedes).where(records.c.supersedes.in_(record_ids))).scalars())

    def mark_superseded(self, items: list[dict]) -> list[dict]:
        """Listed records, each with `superseded`: lists show earlier versions too, so they must say which are."""
        superseded = self.superseded_among([item["id"] for item in items])
        return [{**item, "superseded": item["id"] in superseded} for item in items]

    def lineage(self, record_id: str, reader_id: str) -> dict:
        """`supersedes` (the older version), `superseded` and `superseded_by` (the newer version, shown only to
        a reader holding a usable key for it: a revoked reader never learns of later versions)."""
        with self._engine.connect() as conn:
            older = conn.execute(select(records.c.supersedes).where(records.c.id == record_id)).scalar()
            newer = conn.execute(select(records.c.id).where(records.c.supersedes == record_id)).scalar()
            readable = None
            if newer is not None:
                readable = conn.execute(
                    select(record_keys.c.record_id).where(
                        record_keys.c.record_id == newer,
                        record_keys.c.reader_id == reader_id,
                        usable_key(time.time()),
                    )
                ).scalar()
        return {"supersedes": older, "superseded": newer is not None, "superseded_by": readable}

    def chain(self, record_id: str) -> list[str]:
        """Every stored version of the record, oldest first (a deleted version ends the walk)."""
        with self._engine.connect() as conn:

            def older(rid: str) -> str | None:
                link = conn.execute(select(records.c.supersedes).where(records.c.id == rid)).scalar()
                return conn.execute(select(records.c.id).where(records.c.id == link)).scalar() if link else None

            out = [record_id]
            while (prev := older(out[0])) is not None and prev not in out:
                out.insert(0, prev)
            while (nxt := conn.execute(select(records.c.id).where(records.c.supersedes == out[-1])).scalar()) and (
                nxt not in out
            ):
                out.append(nxt)
        return out

    def live_readers(self, record_id: str, owner_id: str) -> list[tuple[str, str]]:
        """(reader, share) pairs holding a usable key for the record through a share, the owner excluded."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(record_keys.c.reader_id, record_keys.c.share_id).where(
                    record_keys.c.record_id == record_id,
                    record_keys.c.reader_id != owner_id,
                    record_keys.c.share_id.is_not(None),
                    usable_key(time.time()),
                )
            ).all()
        return [(r.reader_id, r.share_id) for r in rows]

    def link_version(self, older_id: str, newer_id: str, owner_id: str, keys: PrivateKeys) -> None:
        """Make an existing record the newer version of another of the same owner (a duplicate judged so).

        Nothing is re-encrypted or re-signed: the newer record keeps its id, its data key and its uploader's
        signature (a specialist's summary stays theirs). As for an uploaded version, readers holding a live
        share of the older record get the newer one's key too. The caller checks the chain first (no fork, no
        cycle); the unique `supersedes` column still refuses a fork made meanwhile (sqlalchemy IntegrityError).
        """
        key = self.data_key(newer_id, owner_id, keys)
        readers = self.live_readers(older_id, owner_id)
        now = time.time()
        with self._engine.begin() as conn:
            linked = conn.execute(
                update(records)
                .where(records.c.id == newer_id, records.c.owner_id == owner_id, records.c.supersedes.is_(None))
                .values(supersedes=older_id)
            ).rowcount
            if not linked:
                raise RecordNotFound
            holding = set(
                conn.execute(select(record_keys.c.reader_id).where(record_keys.c.record_id == newer_id)).scalars()
            )
            wanted = [(reader, share) for reader, share in readers if reader not in holding]
            ids = [reader for reader, _ in wanted]
            publics = dict(conn.execute(select(users.c.id, users.c.x25519_public).where(users.c.id.in_(ids))).all())
            for reader, share_id in wanted:
                self.grant(conn, newer_id, reader, publics[reader], key, share_id, now)

    def referenced_blobs(self) -> set[str]:
        with self._engine.connect() as conn:
            return set(conn.execute(select(records.c.blob)).scalars())
