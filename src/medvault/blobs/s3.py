"""Blobs in an S3-compatible bucket, for several nodes sharing one store: the local store's interface over boto3.

Blobs arrive sealed (STREAM over AES-256-GCM under per-record keys the store never sees), so the bucket holds
only ciphertext under random names. A writer sends each full 8 MiB part with UploadPart from a worker thread
while the next one fills (so at most two parts are in memory); `commit` is CompleteMultipartUpload, so the
object appears whole or not at all, and `abort` is AbortMultipartUpload. A blob smaller than one part goes in
one PutObject at `commit`: just as atomic, one request instead of three, and no multipart upload to leave
behind. `open` gives a seekable reader that streams one GET and opens a ranged GET only when the vault seeks
elsewhere (a range request).

`sweep` aborts incomplete multipart uploads and deletes objects no row names, only once they are older than
the grace period: an upload by the time of its newest part (long uploads stay safe), an object by its
LastModified. Only keys under the prefix that are blob names are touched, so a bucket may hold other things.
"""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from typing import BinaryIO

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from medvault.blobs import BlobError, check_name, is_blob_name, sweep_cutoff
from medvault.blobs.location import S3Location

PART = 8 * 1024 * 1024  # S3 wants >= 5 MiB for every part but the last, and at most 10,000 parts (80 GB here)
_MISSING = {"NoSuchKey", "404", "NotFound", "NoSuchUpload"}
log = logging.getLogger("medvault")


class S3Store:
    remote = True

    def __init__(self, location: S3Location, access_key: str = "", secret_key: str = "", part_size: int = PART):
        self.location = location
        self.part_size = part_size
        self.pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="medvault-s3")  # parts being sent
        config = Config(
            # why: self-hosted servers rarely resolve BUCKET.host names, so an explicit endpoint gets paths
            s3={"addressing_style": "path" if location.endpoint else "auto"},
            retries={"mode": "standard", "max_attempts": 4},
            connect_timeout=5,
            read_timeout=60,
            # why: the content is authenticated end to end by its AEAD already, and the CRC32 checksums newer
            # boto3 adds by default are refused by many S3-compatible servers
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        # A session of our own (boto3's default one is not thread-safe); without keys, the standard AWS chain
        # (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws, an instance role) supplies them.
        self.client = boto3.session.Session().client(
            "s3",
            endpoint_url=location.endpoint or None,
            region_name=location.region,
            aws_access_key_id=access_key or None,
            aws_secret_access_key=secret_key or None,
            config=config,
        )

    def key(self, name: str) -> str:
        return self.location.prefix + check_name(name)

    @contextmanager
    def calling(self, action: str) -> Iterator[None]:
        """Turn boto3's errors into FileNotFoundError (no such object) or BlobError naming the store."""
        try:
            yield
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", "?"))
            if code in _MISSING:
                raise FileNotFoundError(f"{self.location}: {action}: {code}") from None
            raise BlobError(f"blob store {self.location}: {action} failed: {code}") from None
        except BotoCoreError as exc:
            raise BlobError(f"blob store {self.location}: {action} failed: {exc}") from None

    def create(self, name: str | None = None) -> S3Writer:
        """A writer for a new blob; `name` only for a restore, which puts blobs back under their own names."""
        return S3Writer(self, name)

    def open(self, name: str) -> BinaryIO:
        return io.BufferedReader(_ObjectReader(self, self.key(name)), buffer_size=256 * 1024)

    def delete(self, name: str) -> None:
        with self.calling("delete"):
            self.client.delete_object(Bucket=self.location.bucket, Key=self.key(name))

    def _entries(self, operation: str, field: str) -> Iterator[tuple[str, dict]]:
        """(key after the prefix, listing entry) for every entry under the prefix, blob or not."""
        prefix = self.location.prefix
        with self.calling(operation):
            pages = self.client.get_paginator(operation).paginate(Bucket=self.location.bucket, Prefix=prefix)
            for page in pages:
                for entry in page.get(field, []):
                    yield entry["Key"][len(prefix) :], entry

    def _listed(self, operation: str, field: str) -> Iterator[tuple[str, dict]]:
        """(blob name, listing entry) for every entry under the prefix whose key is a blob name."""
        return ((name, entry) for name, entry in self._entries(operation, field) if is_blob_name(name))

    def names(self) -> Iterable[str]:
        return (name for name, _ in self._listed("list_objects_v2", "Contents"))

    def sizes(self) -> dict[str, int]:
        """Every blob under the prefix with its size, from the listing (1,000 a request, not a HEAD per blob)."""
        return {name: int(entry["Size"]) for name, entry in self._listed("list_objects_v2", "Contents")}

    def is_empty(self) -> bool:
        """Whether nothing at all lies under the prefix: no object, blob or not, and no incomplete upload."""
        bucket, prefix = self.location.bucket, self.location.prefix
        with self.calling("list_objects_v2"):
            if self.client.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1).get("KeyCount", 0):
                return False
        with self.calling("list_multipart_uploads"):
            return not self.client.list_multipart_uploads(Bucket=bucket, Prefix=prefix, MaxUploads=1).get("Uploads")

    def contents(self) -> tuple[dict[str, int], list[tuple[str, str]]]:
        """Everything under the prefix, blob or not: {name: size} of the objects, and (name, upload id) of the
        incomplete uploads, each name being the key after the prefix."""
        objects = {name: int(entry["Size"]) for name, entry in self._entries("list_objects_v2", "Contents")}
        uploads = [(name, entry["UploadId"]) for name, entry in self._entries("list_multipart_uploads", "Uploads")]
        return objects, uploads

    def _note_key(self, name: str) -> str:
        if is_blob_name(name):
            raise ValueError("a note is never named like a blob")
        return self.location.prefix + name

    def put_note(self, name: str, data: bytes) -> None:
        """A small object beside the blobs (a restore's journal): not named like a blob, so never served or swept."""
        with self.calling("put_object"):
            self.client.put_object(Bucket=self.location.bucket, Key=self._note_key(name), Body=data)

    def note(self, name: str) -> bytes | None:
        """The note `name`, or None if there is none."""
        try:
            with self.calling("get_object"):
                return self.client.get_object(Bucket=self.location.bucket, Key=self._note_key(name))["Body"].read()
        except FileNotFoundError:
            return None

    def delete_note(self, name: str) -> None:
        with self.calling("delete"):
            self.client.delete_object(Bucket=self.location.bucket, Key=self._note_key(name))

    def _last_activity(self, upload: dict) -> float:
        """When an upload last moved: its newest part, or its start. Initiated alone would let a node starting
        up abort another node's upload that began more than the grace period ago and is still sending."""
        newest = upload["Initiated"].timestamp()
        with self.calling("list_parts"):
            pages = self.client.get_paginator("list_parts").paginate(
                Bucket=self.location.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
            )
            for page in pages:
                for part in page.get("Parts", []):
                    newest = max(newest, part["LastModified"].timestamp())
        return newest

    def sweep(self, referenced: set[str], grace: float, now: float | None = None) -> int:
        """Abort incomplete uploads and delete unreferenced objects idle for `grace` seconds; how many."""
        cutoff = sweep_cutoff(grace, now)
        removed = 0
        for _name, upload in list(self._listed("list_multipart_uploads", "Uploads")):
            try:
                if self._last_activity(upload) < cutoff:
                    self.abort_upload(upload["Key"], upload["UploadId"])
                    removed += 1
            except FileNotFoundError:
                pass  # completed or aborted by its node meanwhile
        for name, entry in list(self._listed("list_objects_v2", "Contents")):
            if name not in referenced and entry["LastModified"].timestamp() < cutoff:
                self.delete(name)
                removed += 1
        return removed

    def abort_upload(self, key: str, upload_id: str) -> None:
        with self.calling("abort_multipart_upload"):
            self.client.abort_multipart_upload(Bucket=self.location.bucket, Key=key, UploadId=upload_id)


class S3Writer:
    """Append-only writer streaming parts; `commit` makes the object visible, `abort` removes every trace.

    Parts go out from the store's worker threads, one at a time per writer: the caller (the event loop, for
    an upload) waits only when the store is slower than the client, and at most two parts are held."""

    def __init__(self, store: S3Store, name: str | None = None):
        self.name = check_name(name) if name is not None else uuid.uuid4().hex
        self.size = 0
        self._store = store
        self._key = store.key(self.name)
        self._buffer = bytearray()
        self._upload_id: str | None = None  # set by the first part's worker, read only after waiting for it
        self._parts: list[dict] = []
        self._sent = 0
        self._sending: Future | None = None

    def write(self, data: bytes) -> None:
        self._buffer += data
        self.size += len(data)
        step = self._store.part_size
        while len(self._buffer) >= step:
            part = bytes(self._buffer[:step])
            del self._buffer[:step]
            self._send(part)

    def _send(self, part: bytes) -> None:
        self._wait()
        self._sent += 1
        self._sending = self._store.pool.submit(self._upload_part, self._sent, part)

    def _wait(self) -> None:
        """Wait for the part in flight; its error, if any, is raised here."""
        if self._sending is not None:
            sending, self._sending = self._sending, None
            sending.result()

    def _upload_part(self, number: int, part: bytes) -> None:
        s3, bucket = self._store.client, self._store.location.bucket
        if self._upload_id is None:
            with self._store.calling("create_multipart_upload"):
                self._upload_id = s3.create_multipart_upload(Bucket=bucket, Key=self._key)["UploadId"]
        with self._store.calling("upload_part"):
            sent = s3.upload_part(Bucket=bucket, Key=self._key, UploadId=self._upload_id, PartNumber=number, Body=part)
        self._parts.append({"PartNumber": number, "ETag": sent["ETag"]})

    def commit(self) -> str:
        s3, bucket = self._store.client, self._store.location.bucket
        if not self._sent:
            with self._store.calling("put_object"):
                s3.put_object(Bucket=bucket, Key=self._key, Body=bytes(self._buffer))
        else:
            if self._buffer:
                self._send(bytes(self._buffer))
            self._wait()
            with self._store.calling("complete_multipart_upload"):
                s3.complete_multipart_upload(
                    Bucket=bucket, Key=self._key, UploadId=self._upload_id, MultipartUpload={"Parts": self._parts}
                )
        self._buffer.clear()
        self._upload_id = None  # done: a later `abort` (the vault's clean-up path) has nothing to abort
        return self.name

    def abort(self) -> None:
        """Drop the buffer and abort the upload; if the store cannot be reached, the sweep aborts it later
        (an error here would hide the one that made the caller abort)."""
        self._buffer.clear()
        with suppress(OSError):  # a part that failed is what the abort removes
            self._wait()
        if self._upload_id is not None:
            upload_id, self._upload_id = self._upload_id, None
            try:
                self._store.abort_upload(self._key, upload_id)
            except OSError as exc:
                log.warning("could not abort an upload, left to the sweep: %s", exc)


class _ObjectReader(io.RawIOBase):
    """A seekable read-only view of one object: reads in order stream one GET; a seek elsewhere opens a
    ranged GET from there. The first GET is sent at once, so a missing object fails `open` itself."""

    def __init__(self, store: S3Store, key: str):
        super().__init__()
        self._store, self._key = store, key
        self._pos = 0
        self._body = None
        self._body_pos = 0
        self.size = self._get(0)

    def _get(self, start: int) -> int:
        if self._body is not None:
            self._body.close()
        args = {"Range": f"bytes={start}-"} if start else {}
        with self._store.calling("get_object"):
            answer = self._store.client.get_object(Bucket=self._store.location.bucket, Key=self._key, **args)
        self._body, self._body_pos = answer["Body"], start
        return start + answer["ContentLength"]

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer) -> int:
        if self._pos >= self.size:
            return 0
        if self._body_pos != self._pos:
            self._get(self._pos)
        with self._store.calling("get_object (reading)"):
            data = self._body.read(len(buffer))
        buffer[: len(data)] = data
        self._pos += len(data)
        self._body_pos += len(data)
        return len(data)

    def close(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None
        super().close()
