"""The peer of bench/backup.py's bucket section, run as its own process: a plain boto3 copy with 8 threads (as
many objects in flight as MedVault's backup and restore, backup/stores.py WORKERS), no checksum, no fsync.

    python s3copy.py download ENDPOINT BUCKET PREFIX FOLDER   # every object under PREFIX to FOLDER/NAME[:2]/NAME
    python s3copy.py upload ENDPOINT BUCKET PREFIX FOLDER     # every file under FOLDER to PREFIX + its name
    python s3copy.py --start-up                               # just the imports

Keys from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY. Only boto3 is imported (not benchlib), so its start-up is
the interpreter's and boto3's.
"""

from __future__ import annotations

import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
from botocore.config import Config

WORKERS = 8


def copy(direction: str, endpoint: str, bucket: str, prefix: str, folder: Path) -> None:
    config = Config(s3={"addressing_style": "path"}, max_pool_connections=WORKERS)
    client = boto3.session.Session().client("s3", endpoint_url=endpoint, region_name="us-east-1", config=config)
    if direction == "download":
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        work: list = [o["Key"] for page in pages for o in page.get("Contents", [])]

        def one(key: str) -> None:
            name = key.removeprefix(prefix)
            path = folder / name[:2] / name
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("wb") as out:
                shutil.copyfileobj(client.get_object(Bucket=bucket, Key=key)["Body"], out, 1024 * 1024)

    else:
        work = [p for p in folder.rglob("*") if p.is_file()]

        def one(path: Path) -> None:  # type: ignore[misc]
            with path.open("rb") as body:
                client.put_object(Bucket=bucket, Key=prefix + path.name, Body=body)

    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(one, work))


if __name__ == "__main__":
    if sys.argv[1:] != ["--start-up"]:
        direction, endpoint, bucket, prefix, folder = sys.argv[1:6]
        copy(direction, endpoint, bucket, prefix, Path(folder))
