"""`medvault backup` / `medvault restore` against `tar | age` and `age -d | tar -x` on the same data folder.

A real `medvault serve` is started and one patient uploads N records of random bytes over HTTPS; then, while
that server keeps running, in the same run:

* `medvault backup --to DEST --recipient KEY --quiet`: first full, then again with nothing new (incremental:
  only the database is copied and encrypted again, every blob is already there);
* `medvault restore --from DEST --identity KEY` into an empty folder (verifies every SHA-256);
* peer: `sh -c 'tar -cf - -C DATA . | age -r KEY > OUT'` and `sh -c 'age -d -i KEY OUT | tar -xf - -C DIR'`
  (the same bytes, but neither consistent with a running server nor verified against a manifest).

With `--bucket`, a second section in the same run does the same with the blobs in a bucket of a moto_server on
loopback (tests/blobs/s3server.py, what tests/test_backup_s3.py uses): a server whose `blob_url` is that bucket
gets the same records; then `medvault backup` (full, then nothing new: it reads the blobs from the bucket as
stored) and `medvault restore --blob-url` into an empty bucket (each blob hashed before it is put, the journal put
first and removed last). Peer: a plain boto3 copy of the same objects (benchlib/s3copy.py, its own process, 8
threads like MedVault's), bucket to folder and folder to an empty bucket (no checksum, no fsync, no database).
MiB/s there is over the blobs' bytes in the bucket; moto_server's own CPU over each command is printed beside it
(it counts for neither).

Each command is measured by `wait4`: wall time, CPU time (user+sys of the command and every process it waited
for: age, tar, the shell) and MiB/s over the data folder's size. MedVault fsyncs every file it writes and
hashes every blob; tar and age do neither. `medvault --help` is timed too: the Python start-up every
`medvault` command pays, which dominates at the default size. Never asserts on timing.

    .venv/bin/python bench/backup.py                        # 200 records x 256 KiB (~50 MiB)
    .venv/bin/python bench/backup.py --records 1000 --size-kib 1024
    .venv/bin/python bench/backup.py --records 100 --size-kib 256 --bucket     # and the bucket section
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import BIN, MIB, MedVaultServer, machine_summary, proc_cpu, tool
from tests.support import upload


def run(argv: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (the command and every process it waited for) and its standard output."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.PIPE, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        err = proc.stderr.read().decode(errors="replace")  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]
        if os.waitstatus_to_exitcode(status):
            raise SystemExit(f"{' '.join(argv)} failed: {err}")
        out.seek(0)
        return wall, usage.ru_utime + usage.ru_stime, out.read().decode(errors="replace")


def folder_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def report(name: str, wall: float, cpu: float, size: int, note: str = "") -> None:
    print(f"{name:<34} {wall:7.2f} s wall {cpu:7.2f} s cpu {size / MIB / wall:8.1f} MiB/s  {note}")


def populate(server: MedVaultServer, records: int, size: int) -> None:
    client = server.account("benchpatient")["client"]
    for i in range(records):
        made = upload(client, os.urandom(size), f"scan-{i}.bin", {"title": f"Scan {i}"}, "application/octet-stream")
        if made.status_code != 201:
            raise SystemExit(f"upload {i} failed: {made.text}")
    client.close()


PEER = Path(__file__).resolve().parent / "benchlib" / "s3copy.py"  # the bucket section's peer, its own process


def bucket_section(tmp: Path, args, identity: Path, recipient: str) -> None:
    from tests.blobs.s3server import MOTO_SERVER, S3Server

    if not MOTO_SERVER.exists():
        print("moto_server not installed: bucket section skipped (pip install -e '.[test]')")
        return
    s3 = S3Server(tmp).start()
    try:
        keys = {"MEDVAULT_S3_ACCESS_KEY": s3.access_key, "MEDVAULT_S3_SECRET_KEY": s3.secret_key}
        aws = {"AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": s3.secret_key}
        bucket = s3.new_bucket()
        env = {"MEDVAULT_GUARD_ENABLED": "false", "MEDVAULT_BLOB_URL": s3.url(bucket, "records"), **keys}

        def timed(argv: list[str], env: dict) -> tuple[float, float, str, float]:
            before = proc_cpu(s3.proc.pid)  # type: ignore[union-attr]
            wall, cpu, out = run(argv, env)
            return wall, cpu, out, proc_cpu(s3.proc.pid) - before  # type: ignore[union-attr]

        def listing(name: str) -> list[dict]:  # every object (s3.objects stops at one page of 1000)
            pages = s3.client().get_paginator("list_objects_v2").paginate(Bucket=name)
            return [o for page in pages for o in page.get("Contents", [])]

        def line(name: str, measured: tuple[float, float, str, float], size: int, note: str = "") -> None:
            report(name, measured[0], measured[1], size, f"moto_server {measured[3]:.2f} s cpu; {note}".rstrip("; "))

        with MedVaultServer(tmp / "s3data", env=env) as server:
            started = time.perf_counter()
            populate(server, args.records, args.size_kib * 1024)
            objects = listing(bucket)
            size = sum(o["Size"] for o in objects)
            print(
                f"bucket: {args.records} records x {args.size_kib} KiB uploaded in "
                f"{time.perf_counter() - started:.1f} s; {len(objects)} blobs, {size / MIB:.1f} MiB in the bucket"
            )
            dest, data = tmp / "s3backup", str(server.data_dir)
            backup = [str(BIN), "backup", "--to", str(dest), "--recipient", recipient, "--quiet", "--data-dir", data]
            full = timed(backup, server.env)
            line("medvault backup (bucket, full)", full, size, full[2].strip().split(": ", 1)[1])
            again = timed(backup, server.env)
            line("medvault backup (bucket, no new)", again, size, again[2].strip().split(": ", 1)[1])
            peer_dir = tmp / "s3peer"
            me = [sys.executable, str(PEER)]
            peer_start = run([*me, "--start-up"], {**os.environ, **aws})
            print(f"{'peer start-up alone (boto3 import)':<34} {peer_start[0]:7.2f} s wall {peer_start[1]:7.2f} s cpu")
            down = timed([*me, "download", s3.endpoint, bucket, "records/", str(peer_dir)], {**os.environ, **aws})
            line("peer: boto3 bucket -> folder", down, size, f"{folder_bytes(peer_dir) / MIB:.1f} MiB written")
        target = s3.new_bucket()
        restore = [
            *(str(BIN), "restore", "--from", str(dest), "--identity", str(identity), "--quiet"),
            *("--data-dir", str(tmp / "s3restored"), "--blob-url", s3.url(target, "restored")),
        ]
        restored = timed(restore, {**os.environ, **keys})
        verified = restored[2].strip().split(": ", 1)[-1]
        line("medvault restore --blob-url", restored, size, f"{verified}, {len(listing(target))} objects left")
        peer_target = s3.new_bucket()
        up = timed([*me, "upload", s3.endpoint, peer_target, "restored/", str(peer_dir)], {**os.environ, **aws})
        put = listing(peer_target)
        line("peer: boto3 folder -> bucket", up, size, f"{len(put)} objects put")
        print(
            f"medvault / peer (bucket): backup {full[0] / down[0]:.2f}x wall {full[1] / down[1]:.2f}x cpu; "
            f"restore {restored[0] / up[0]:.2f}x wall {restored[1] / up[1]:.2f}x cpu (below 1 = faster than the peer)"
        )
    finally:
        s3.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=200, help="records to upload (default 200)")
    parser.add_argument("--size-kib", type=int, default=256, help="size of each record in KiB (default 256)")
    parser.add_argument("--tmp-dir", type=Path, default=None, help="where the data and backup folders go")
    parser.add_argument("--bucket", action="store_true", help="also with the blobs in a bucket on a moto_server")
    args = parser.parse_args()
    age, age_keygen, tar = tool("age"), tool("age-keygen"), tool("tar")
    if not (age and age_keygen and tar):
        print("age, age-keygen or tar not installed: skipped (medvault backup needs age too)")
        return
    print(machine_summary())
    with tempfile.TemporaryDirectory(dir=args.tmp_dir) as tmp_name:
        tmp = Path(tmp_name)
        identity = tmp / "offline" / "key.txt"
        identity.parent.mkdir()
        subprocess.run([age_keygen, "-o", str(identity)], check=True, capture_output=True)
        recipient = re.search(r"age1[0-9a-z]+", identity.read_text()).group(0)
        # the guard off: hundreds of uploads in seconds are a flood to it, and it is not what is measured here
        with MedVaultServer(tmp / "data", env={"MEDVAULT_GUARD_ENABLED": "false"}) as server:
            started = time.perf_counter()
            try:
                populate(server, args.records, args.size_kib * 1024)
            except Exception:
                log = server.data_dir.parent / f"{server.data_dir.name}-server.log"
                print("".join(log.read_text(errors="replace").splitlines(keepends=True)[-30:]), file=sys.stderr)
                raise
            size = folder_bytes(server.data_dir)
            print(
                f"{args.records} records x {args.size_kib} KiB uploaded in {time.perf_counter() - started:.1f} s; "
                f"data folder {size / MIB:.1f} MiB; server running during the backups"
            )
            dest, data = tmp / "backup", str(server.data_dir)
            start_up = run([str(BIN), "--help"])
            print(f"{'medvault --help (start-up alone)':<34} {start_up[0]:7.2f} s wall {start_up[1]:7.2f} s cpu")
            backup = [str(BIN), "backup", "--to", str(dest), "--recipient", recipient, "--quiet", "--data-dir", data]
            full = run(backup, server.env)
            report("medvault backup (full)", *full[:2], size, full[2].strip().split(": ", 1)[1])
            again = run(backup, server.env)
            report("medvault backup (nothing new)", *again[:2], size, again[2].strip().split(": ", 1)[1])
            out = tmp / "peer.tar.age"
            peer = run(["sh", "-c", f'"{tar}" -cf - -C "{data}" . | "{age}" -r {recipient} > "{out}"'])
            report("peer: tar -cf - | age -r", *peer[:2], size, f"{out.stat().st_size / MIB:.1f} MiB written")
        restore_dir = tmp / "restored"
        restore = run(
            [str(BIN), "restore", "--from", str(dest), "--identity", str(identity), "--data-dir", str(restore_dir)]
        )
        report("medvault restore", *restore[:2], size, "every blob's SHA-256 checked")
        peer_dir = tmp / "peer-restored"
        peer_dir.mkdir()
        unpack = run(["sh", "-c", f'"{age}" -d -i "{identity}" "{out}" | "{tar}" -xf - -C "{peer_dir}"'])
        report("peer: age -d | tar -x", *unpack[:2], size)
        print(
            f"medvault / peer: backup {full[0] / peer[0]:.2f}x wall {full[1] / peer[1]:.2f}x cpu; "
            f"incremental {again[0] / peer[0]:.2f}x wall; restore {restore[0] / unpack[0]:.2f}x wall "
            f"{restore[1] / unpack[1]:.2f}x cpu (below 1 = faster than the peer)"
        )
        if args.bucket:
            bucket_section(tmp, args, identity, recipient)


if __name__ == "__main__":
    main()
