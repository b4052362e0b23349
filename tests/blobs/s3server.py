"""An S3-compatible server for the blob tests: moto's standalone `moto_server`, its own process on loopback.

s3rver (npm) was tried first and lacks ListMultipartUploads and AbortMultipartUpload, which the sweep and
`abort` need (docs/architecture.md). moto comes with the test extras (`pip install -e '.[test]'`).
"""

from __future__ import annotations

import secrets
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
from botocore.config import Config

from medvault.blobs.location import parse_s3_url
from medvault.blobs.s3 import S3Store
from tests.support import free_port

MOTO_SERVER = Path(sys.executable).with_name("moto_server")
SMALL_PART = 5 * 1024 * 1024  # the smallest part S3 accepts, to keep the in-process tests quick


def eventually(check, seconds: float = 10) -> bool:
    """Whether `check()` becomes true within `seconds` (an S3 writer sends parts from worker threads)."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


class S3Server:
    """A private moto_server on a free loopback port; any key pair is accepted, requests are still signed."""

    def __init__(self, folder: Path):
        self.port = free_port()
        self.access_key = "AK" + secrets.token_hex(8).upper()
        self.secret_key = secrets.token_urlsafe(30)
        self.log = folder / "moto.log"
        self.proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> S3Server:
        self.proc = subprocess.Popen(
            [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"moto_server exited with {self.proc.returncode}: {self.log.read_text()[-500:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError("moto_server did not start within 20 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def client(self):
        """A plain boto3 client, to look at the bucket the way an operator (or a thief of the bucket) would."""
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(s3={"addressing_style": "path"}),
        )

    def new_bucket(self) -> str:
        name = f"medvault-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def url(self, bucket: str, prefix: str = "") -> str:
        return f"s3://{bucket}/{prefix}?endpoint={self.endpoint}"

    def store(self, bucket: str, prefix: str = "blobs") -> S3Store:
        """MedVault's store on `bucket`, with the smallest parts S3 accepts."""
        return S3Store(parse_s3_url(self.url(bucket, prefix)), self.access_key, self.secret_key, SMALL_PART)

    def uploads(self, bucket: str) -> list[str]:
        """Keys of the bucket's incomplete multipart uploads."""
        return [u["Key"] for u in self.client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])]

    def objects(self, bucket: str) -> dict[str, dict]:
        return {o["Key"]: o for o in self.client().list_objects_v2(Bucket=bucket).get("Contents", [])}
