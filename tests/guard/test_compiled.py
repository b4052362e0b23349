"""The guard's per-line modules run compiled (setup.py), never from a build older than their source."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

HOT_MODULES = ("matcher", "dates", "parallel")  # as in setup.py


def test_hot_modules_are_compiled_from_their_current_source() -> None:
    """On CI the build must have compiled them; anywhere, a compiled module is newer than its `.py` and `.pxd`.

    Python imports an extension module before the `.py` next to it, so a stale build would silently
    run old code after an edit (`make setup` rebuilds).
    """
    for name in HOT_MODULES:
        module = importlib.import_module(f"medvault.guard.{name}")
        built = Path(module.__file__ or "")
        if built.suffix == ".py":
            assert os.environ.get("CI") != "true", f"medvault.guard.{name} is not compiled (no C compiler?)"
            continue
        for source in (built.parent / f"{name}.py", built.parent / f"{name}.pxd"):
            if source.exists():
                assert built.stat().st_mtime >= source.stat().st_mtime, f"{built.name} is older than {source.name}"


def test_pcre2_jit_is_built_from_its_current_source() -> None:
    """`jitmatch.pyx` (PCRE2's JIT) must be built on CI: without it every line silently goes to `re`."""
    try:
        module = importlib.import_module("medvault.guard.jitmatch")
    except ImportError:
        assert os.environ.get("CI") != "true", "medvault.guard.jitmatch is not built (no C compiler or libpcre2-8?)"
        return
    built = Path(module.__file__ or "")
    assert built.stat().st_mtime >= (built.parent / "jitmatch.pyx").stat().st_mtime, "jitmatch is older than its .pyx"
