"""Encryption of snapshot files with the standard `age` tool (X25519 recipients, ChaCha20-Poly1305 STREAM).

Backups need only the operator's public recipient; the identity (private key) stays offline and is needed
only to restore. Plaintext reaches age through a pipe and ciphertext is written by age to our temp file.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO, cast

from medvault.backup import BackupError


def _age() -> str:
    path = shutil.which("age")
    if path is None:
        raise BackupError("the `age` tool is not installed (Debian package `age`)")
    return path


def check_recipient(recipient: str) -> str:
    if not recipient.startswith("age1") or not recipient.isalnum():
        raise BackupError(f"not an age recipient (age1…): {recipient[:12]!r}")
    return recipient


def check_recipients(recipients: list[str]) -> None:
    """Let age itself parse the recipients before anything is copied (a typo would otherwise fail only at the end)."""
    if not recipients:
        raise BackupError("no --recipient: give the age public key (age1…) the backup is encrypted to")
    args = [_age(), "--encrypt", "--output", "/dev/null"]
    for r in recipients:
        args += ["--recipient", check_recipient(r)]
    done = subprocess.run(args, input=b"", capture_output=True, check=False)
    if done.returncode != 0:
        err = done.stderr.decode(errors="replace").strip()
        raise BackupError(f"age refuses the recipient: {_last_line(err, done.returncode)}")


@contextmanager
def encrypting(recipients: list[str], out: Path) -> Iterator[BinaryIO]:
    """A pipe whose bytes age encrypts into `out`; raises BackupError if age fails."""
    args = [_age(), "--encrypt", "--output", str(out)]
    for r in recipients:
        args += ["--recipient", check_recipient(r)]
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    stdin, stderr = cast(BinaryIO, proc.stdin), cast(BinaryIO, proc.stderr)
    broken = False
    try:
        yield stdin
        stdin.close()
    except BrokenPipeError:
        broken = True  # why: age exited early (e.g. a malformed recipient); its message below says why
    except BaseException:
        proc.kill()
        raise
    finally:
        with suppress(OSError):
            stdin.close()
        err = stderr.read().decode(errors="replace").strip()
        stderr.close()
        code = proc.wait()
    if code != 0 or broken:
        raise BackupError(f"age could not encrypt: {_last_line(err, code)}")


def encrypt_bytes(recipients: list[str], data: bytes, out: Path) -> None:
    with encrypting(recipients, out) as pipe:
        pipe.write(data)


def decrypt(identity: Path, source: Path, consume: Callable[[BinaryIO], None]) -> None:
    """Hand age's plaintext output, as a stream, to `consume`; a wrong identity or tampered file raises."""
    proc = subprocess.Popen(
        [_age(), "--decrypt", "--identity", str(identity), str(source)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    stdout, stderr = cast(BinaryIO, proc.stdout), cast(BinaryIO, proc.stderr)
    err, code = "", 0
    try:
        try:
            consume(stdout)
            stdout.read()
        except BaseException:
            proc.kill()  # why: age would otherwise block on a full pipe nobody reads
            raise
        finally:
            stdout.close()
            err = stderr.read().decode(errors="replace").strip()
            stderr.close()
            code = proc.wait()
    except Exception as exc:
        # age stops at the first chunk that fails to authenticate, so the consumer sees a truncated stream
        # and fails less clearly; age's own verdict (it exited by itself, code > 0) is the real reason.
        if code > 0 and not isinstance(exc, BackupError):
            raise BackupError(f"{source.name} does not decrypt: {_last_line(err, code)}") from None
        raise
    if code != 0:
        raise BackupError(f"{source.name} does not decrypt: {_last_line(err, code)}")


def _last_line(err: str, code: int) -> str:
    """age's error line (it adds a line asking for bug reports after it), else its exit code."""
    lines = [line for line in err.splitlines() if "filippo.io/age/report" not in line]
    return lines[-1].removeprefix("age: error: ") if lines else f"exit code {code}"


def decrypt_bytes(identity: Path, source: Path) -> bytes:
    chunks: list[bytes] = []
    decrypt(identity, source, lambda stream: chunks.append(stream.read()))
    return b"".join(chunks)
