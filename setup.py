"""Compile the guard's per-line hot path with Cython (see docs/architecture.md, "Why the filter engine is fast").

The modules stay plain Python: where no C compiler is present the extensions are skipped
(`optional=True`) and the same code runs interpreted, only slower. `jitmatch.pyx` binds PCRE2's JIT,
linked by its soname (Debian's libpcre2-8-0, no -dev package); without it every line goes to `re`.
"""

from Cython.Build import cythonize
from setuptools import Extension, setup

HOT_MODULES = ("matcher", "dates", "parallel")

setup(
    ext_modules=cythonize(
        [Extension(f"medvault.guard.{name}", [f"src/medvault/guard/{name}.py"], optional=True) for name in HOT_MODULES]
        + [
            Extension(
                "medvault.guard.jitmatch",
                ["src/medvault/guard/jitmatch.pyx"],
                extra_link_args=["-l:libpcre2-8.so.0"],
                optional=True,
            )
        ],
        # Annotations stay hints: typed arguments would reject subclasses (an OrderedDict for a dict).
        compiler_directives={"language_level": 3, "annotation_typing": False},
        quiet=True,
    )
)
