"""Throughput of MedVault's at-rest format (STREAM over AES-256-GCM) vs `openssl enc` and `age`.

Generates one random file in a temp dir, then in the same run:

* MedVault: plaintext streamed in 1 MiB pieces through `StreamEncryptor` into a file (as `Upload.write`
  does), then decrypted chunk by chunk with `StreamDecryptor` (seek, read one sealed chunk, verify, slice,
  exactly as `Vault.read_range` does) into a file;
* `openssl enc -aes-256-ctr -K .. -iv .. -nosalt` (unauthenticated CTR: the upper bound for AES in a CLI);
* `age -r RECIPIENT` / `age -d -i IDENTITY` (X25519 + ChaCha20-Poly1305 STREAM, 64 KiB chunks);

and prints MiB/s, wall and CPU seconds, and MedVault's throughput as a percentage of each peer's
(targets: >= 100 % of age, >= 75 % of openssl). Every decryption is checked against the plaintext with
`cmp` after its timing. With `--proposals` (default on) it also times prototypes of two small changes
to `stream.py` (see bench/README.md), writing the same format that the unchanged `StreamDecryptor` reads.

    .venv/bin/python bench/at_rest_format.py                  # 256 MiB, ~30 s
    .venv/bin/python bench/at_rest_format.py --size-mib 1024  # the 1 GiB figures
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import MIB, children_cpu, machine_summary, tool
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from medvault.crypto.envelope import DataKey
from medvault.crypto.stream import (
    CHUNK_SIZE,
    HEADER_SIZE,
    StreamDecryptor,
    StreamEncryptor,
)

PIECE = MIB  # how the plaintext is fed to the encryptor


@dataclass
class Timing:
    wall: float
    cpu: float


@dataclass
class Result:
    name: str
    enc: Timing
    dec: Timing


def measure_inprocess(fn: Callable[[], None]) -> Timing:
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    return Timing(time.perf_counter() - t0, time.process_time() - c0)


def measure_command(argv: list[str], stdin_path: Path | None = None) -> Timing:
    c0, t0 = children_cpu(), time.perf_counter()
    if stdin_path is None:
        subprocess.run(argv, check=True, stdin=subprocess.DEVNULL)
    else:
        with stdin_path.open("rb") as src:
            subprocess.run(argv, check=True, stdin=src)
    return Timing(time.perf_counter() - t0, children_cpu() - c0)


def make_plaintext(path: Path, size: int) -> None:
    with path.open("wb") as out:
        left = size
        while left:
            n = min(left, 16 * MIB)
            out.write(os.urandom(n))
            left -= n


# --- MedVault's format, used exactly as the vault uses it -------------------------------------------------

AD = b"medvault/record-content/v1:bench:1"


def medvault_encrypt(src: Path, dst: Path, key: bytes, chunk_size: int = CHUNK_SIZE) -> None:
    enc = StreamEncryptor(key, AD, chunk_size)
    with src.open("rb") as fin, dst.open("wb") as fout:
        fout.write(enc.header())
        while piece := fin.read(PIECE):
            fout.write(enc.update(piece))
        fout.write(enc.finalize())


def medvault_decrypt(src: Path, dst: Path, key: bytes, size: int) -> None:
    """The loop of `Vault.read_range(record, 0, size)`, writing the yielded plaintext to a file."""
    with src.open("rb") as handle, dst.open("wb") as fout:
        dec = StreamDecryptor(key, AD, handle.read(HEADER_SIZE), size)
        for index, lo, hi in dec.chunks_for_range(0, size):
            handle.seek(dec.chunk_offset(index))
            sealed = handle.read(dec.sealed_length(index))
            plain = dec.open_chunk(index, sealed)
            fout.write(plain[lo:hi])


# --- The same work without the filesystem: what the format itself costs -----------------------------------


def in_memory(size: int, key: bytes, repeat: int) -> list[tuple[str, float, float]]:
    """(label, encrypt MiB/s, decrypt MiB/s), best of `repeat`: StreamEncryptor/StreamDecryptor on a buffer
    in RAM (output discarded) and bare AESGCM.encrypt/decrypt calls on the same 256 KiB chunks (the floor)."""
    data = os.urandom(min(size, 256 * MIB))
    passes = max(1, size // len(data))
    total = passes * len(data) / MIB

    def stream_enc(keep: bool = False) -> list[bytes]:
        sealed: list[bytes] = []
        for _ in range(1 if keep else passes):
            enc = StreamEncryptor(key, AD)
            sealed.append(enc.header())
            with memoryview(data) as view:
                for i in range(0, len(data), PIECE):
                    out = enc.update(view[i : i + PIECE])
                    if keep:
                        sealed.append(out)
            sealed.append(enc.finalize())
        return sealed

    blob = b"".join(stream_enc(keep=True))  # one pass's sealed stream, for the decryption

    def stream_dec() -> None:
        for _ in range(passes):
            dec = StreamDecryptor(key, AD, blob[:HEADER_SIZE], len(data))
            with memoryview(blob) as view:
                for index, lo, hi in dec.chunks_for_range(0, len(data)):
                    off = dec.chunk_offset(index)
                    dec.open_chunk(index, view[off : off + dec.sealed_length(index)])[lo:hi]

    aead = AESGCM(key)
    nonce = os.urandom(12)
    raw_sealed = aead.encrypt(nonce, data[:CHUNK_SIZE], AD)

    def raw_enc() -> None:
        with memoryview(data) as view:
            for _ in range(passes):
                for i in range(0, len(data), CHUNK_SIZE):
                    aead.encrypt(nonce, view[i : i + CHUNK_SIZE], AD)

    def raw_dec() -> None:
        for _ in range(passes * (len(data) // CHUNK_SIZE)):
            aead.decrypt(nonce, raw_sealed, AD)

    def best_rate(fn) -> float:
        return max(total / measure_inprocess(fn).wall for _ in range(repeat))

    return [
        ("medvault STREAM, in memory", best_rate(stream_enc), best_rate(stream_dec)),
        ("bare AESGCM 256 KiB calls, in memory", best_rate(raw_enc), best_rate(raw_dec)),
    ]


# ----------------------------------------------------------------------------------------------------------


def rate(size: int, t: Timing) -> float:
    return size / MIB / t.wall


def best(runs: list[Timing]) -> Timing:
    return min(runs, key=lambda t: t.wall)


def check_same(a: Path, b: Path) -> None:
    if subprocess.run(["cmp", "-s", str(a), str(b)]).returncode != 0:
        raise SystemExit(f"decrypted output {b.name} differs from the plaintext")


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mib", type=int, default=256, help="plaintext size in MiB (default 256; 1024 = 1 GiB)")
    ap.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="rounds over all tools (default 3); the fastest pass per tool and direction is kept",
    )
    ap.add_argument(
        "--no-proposals",
        dest="proposals",
        action="store_false",
        help="skip the prototypes of the proposed stream.py changes",
    )
    ap.add_argument("--tmp-dir", default=None, help="where the temp files go (default: $TMPDIR)")
    args = ap.parse_args()
    size = args.size_mib * MIB

    openssl, age, age_keygen = tool("openssl"), tool("age"), tool("age-keygen")
    print(f"machine: {machine_summary()}")
    print(
        f"file: {args.size_mib} MiB random, {args.repeat} round(s) over all tools (fastest kept); "
        f"MedVault chunk {CHUNK_SIZE // 1024} KiB, fed in {PIECE // MIB} MiB pieces; outputs go to files "
        f"in {args.tmp_dir or tempfile.gettempdir()} (sync before each timed pass)"
    )

    with tempfile.TemporaryDirectory(prefix="mv-bench-rest-", dir=args.tmp_dir) as tmp_name:
        tmp = Path(tmp_name)
        plain = tmp / "plain.bin"
        t0 = time.perf_counter()
        make_plaintext(plain, size)
        print(f"generated plaintext in {time.perf_counter() - t0:.1f} s\n")
        key = DataKey.generate().content_key
        # (name, encrypt, decrypt): each callable runs one timed pass; outputs are name.enc / name.dec
        contestants: list[tuple[str, Callable[[], Timing], Callable[[], Timing]]] = []

        def inprocess(name: str, enc_fn, dec_fn, enc_args=()) -> None:
            sealed, out = tmp / f"{name}.enc", tmp / f"{name}.dec"
            contestants.append(
                (
                    name,
                    lambda: measure_inprocess(lambda: enc_fn(plain, sealed, key, *enc_args)),
                    lambda: measure_inprocess(lambda: dec_fn(sealed, out, key, size)),
                )
            )

        def cli(name: str, enc_argv: list[str], dec_argv: list[str]) -> None:
            contestants.append((name, lambda: measure_command(enc_argv), lambda: measure_command(dec_argv)))

        inprocess("medvault", medvault_encrypt, medvault_decrypt)
        if openssl:
            k, iv = os.urandom(32).hex(), os.urandom(16).hex()
            common = [openssl, "enc", "-aes-256-ctr", "-K", k, "-iv", iv, "-nosalt"]
            cli(
                "openssl",
                [*common, "-in", str(plain), "-out", str(tmp / "openssl.enc")],
                [*common, "-d", "-in", str(tmp / "openssl.enc"), "-out", str(tmp / "openssl.dec")],
            )
        else:
            print("openssl not installed: skipped")
        if age and age_keygen:
            identity = tmp / "age-identity.txt"
            subprocess.run([age_keygen, "-o", str(identity)], check=True, capture_output=True)
            recipient = subprocess.run(
                [age_keygen, "-y", str(identity)], check=True, capture_output=True, text=True
            ).stdout.strip()
            cli(
                "age",
                [age, "-r", recipient, "-o", str(tmp / "age.enc"), str(plain)],
                [age, "-d", "-i", str(identity), "-o", str(tmp / "age.dec"), str(tmp / "age.enc")],
            )
        else:
            print("age / age-keygen not installed: skipped")
        if args.proposals:
            inprocess("proposal: 1 MiB chunks", medvault_encrypt, medvault_decrypt, (MIB,))

        # Round robin, with the page cache's dirty data written back (untimed) before every timed pass,
        # so no tool pays for another's writeback and all see the same conditions.
        timings: dict[str, tuple[list[Timing], list[Timing]]] = {name: ([], []) for name, _, _ in contestants}
        for _ in range(args.repeat):
            for name, enc, dec in contestants:
                os.sync()
                timings[name][0].append(enc())
                os.sync()
                timings[name][1].append(dec())
                check_same(plain, tmp / f"{name}.dec")
                (tmp / f"{name}.dec").unlink()
                (tmp / f"{name}.enc").unlink()
        results = [Result(name, best(e), best(d)) for name, (e, d) in timings.items()]

        memory = in_memory(size, key, args.repeat)

    print(f"{'':32}{'encrypt':>30}    {'decrypt':>30}")
    print(f"{'tool':32}{'MiB/s':>10}{'wall s':>10}{'CPU s':>10}    {'MiB/s':>10}{'wall s':>10}{'CPU s':>10}")
    for r in results:
        print(
            f"{r.name:32}{rate(size, r.enc):>10.0f}{r.enc.wall:>10.2f}{r.enc.cpu:>10.2f}    "
            f"{rate(size, r.dec):>10.0f}{r.dec.wall:>10.2f}{r.dec.cpu:>10.2f}"
        )

    print("\nthe same without files (CPU-bound floor of the format; MiB/s, best of the rounds):")
    for label, enc_rate, dec_rate in memory:
        print(f"{label:40}{enc_rate:>10.0f}{'':24}{dec_rate:>10.0f}")

    by_name = {r.name: r for r in results}
    mv = by_name["medvault"]
    print()
    for peer, target in (("openssl", 75), ("age", 100)):
        if peer not in by_name:
            continue
        p = by_name[peer]
        for direction in ("enc", "dec"):
            pct = 100 * rate(size, getattr(mv, direction)) / rate(size, getattr(p, direction))
            verdict = "meets" if pct >= target else "BELOW"
            label = "encrypt" if direction == "enc" else "decrypt"
            print(f"MedVault {label} = {pct:5.1f} % of {peer:8} (target >= {target} %: {verdict})")
    for r in results:
        if r.name.startswith("proposal"):
            gains = [100 * (rate(size, getattr(r, d)) / rate(size, getattr(mv, d)) - 1) for d in ("enc", "dec")]
            extra = ""
            if "openssl" in by_name:
                o = by_name["openssl"]
                extra = (
                    f"; = {100 * rate(size, r.enc) / rate(size, o.enc):.0f} % / "
                    f"{100 * rate(size, r.dec) / rate(size, o.dec):.0f} % of openssl"
                )
            print(f"{r.name:32} encrypt {gains[0]:+.0f} %, decrypt {gains[1]:+.0f} % vs current{extra}")


if __name__ == "__main__":
    main()
