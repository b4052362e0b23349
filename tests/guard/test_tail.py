"""Tailing across rotation, truncation and restarts."""

import os
from pathlib import Path

from medvault.guard.tail import FileTail


def _append(path: Path, *lines: str) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.writelines(line + "\n" for line in lines)


def test_reads_only_complete_new_lines(tmp_path: Path) -> None:
    """A half-written line is held back until its newline arrives."""
    log = tmp_path / "a.log"
    log.write_text("one\ntw", encoding="utf-8")
    tail = FileTail(log)
    assert tail.read_lines() == ["one"]
    _append(log, "o")
    assert tail.read_lines() == ["two"]
    assert tail.read_lines() == []


def test_rename_rotation_drains_old_file(tmp_path: Path) -> None:
    """Lines written to the old file just before a rename are read, then the new file from its start."""
    log = tmp_path / "a.log"
    _append(log, "1", "2")
    tail = FileTail(log)
    assert tail.read_lines() == ["1", "2"]
    _append(log, "3")
    os.rename(log, tmp_path / "a.log.1")
    _append(log, "4")
    assert tail.read_lines() == ["3", "4"]


def test_copytruncate_restarts_at_zero(tmp_path: Path) -> None:
    """After the file is truncated in place, new lines are read from the beginning."""
    log = tmp_path / "a.log"
    _append(log, "first line", "second line")
    tail = FileTail(log)
    assert len(tail.read_lines()) == 2
    with log.open("w", encoding="utf-8"):
        pass
    _append(log, "x")
    assert tail.read_lines() == ["x"]


def test_resume_after_restart_without_duplicates_or_loss(tmp_path: Path) -> None:
    """A new reader given the saved position returns exactly the lines written since."""
    log = tmp_path / "a.log"
    _append(log, "1", "2")
    first = FileTail(log)
    assert first.read_lines() == ["1", "2"]
    saved = first.position
    first.close()
    _append(log, "3")
    second = FileTail(log, saved)
    assert second.read_lines() == ["3"]


def test_resume_on_replaced_file_starts_over(tmp_path: Path) -> None:
    """If the first line changed since the save, the file is new and is read from 0."""
    log = tmp_path / "a.log"
    _append(log, "old", "lines")
    first = FileTail(log)
    first.read_lines()
    saved = first.position
    first.close()
    log.write_text("new\n", encoding="utf-8")
    assert FileTail(log, saved).read_lines() == ["new"]


def test_reads_are_bounded(tmp_path: Path) -> None:
    """Each call returns at most max_bytes of lines; the rest comes on later calls, in order."""
    log = tmp_path / "a.log"
    _append(log, *[f"line {i:04d}" for i in range(100)])
    tail = FileTail(log, max_bytes=100)
    got: list[str] = []
    for _ in range(50):
        chunk = tail.read_lines()
        assert sum(len(x) + 1 for x in chunk) <= 100
        got += chunk
    assert got == [f"line {i:04d}" for i in range(100)]
