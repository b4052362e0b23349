# Cython declarations for matcher.py (setup.py compiles it; the .py stays the source of truth).
# Every attribute the .py gives these classes must be declared here: a C type has no instance dict.
# As a final C type, `Filter` keeps its attributes in fixed slots instead of an instance dict, and its
# per-line steps call each other directly instead of through a method lookup.

cimport cython


@cython.final
cdef class Filter:
    cdef public object spec, maxlines, dates, _prefregex, _failregex, _ignoreregex, _combined
    cdef public object _anchored, _exact_combined, _dispatch, _alt_merge, _prefilter, _block_prefilter
    cdef public object _safe_templates, _fused, _pref_names, _dense, _buffer, _mlfid, _last_time
    cdef public object raw_hosts, _date_memo, _prefixed, _jit_ready, _jit

    cpdef _match(self, line, now, tz)
    cpdef _failregexes(self, buf, pre, when)
    cpdef _memo_time(self, str line, start, end, key, fm, now, tz)
    cpdef _with_alternates(self, index, dict groups)
    # Typed dicts: `d.get(k)` and `d.pop(k)` become direct calls instead of method look-ups (the
    # connections stay an untyped OrderedDict, whose order `PyDict_*` calls would not keep).
    cpdef _failure(self, index, dict groups, when)
    @cython.locals(cached=dict)
    cpdef _merge_multiline(self, mlfid, dict fail)
