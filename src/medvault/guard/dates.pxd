# Cython declarations for dates.py (setup.py compiles it; the .py stays the source of truth).
# Every attribute the .py gives these classes must be declared here: a C type has no instance dict.
# As C types, templates and the detector keep their attributes in fixed slots, read on every line.

cdef class DateTemplate:
    cdef public object pattern, kind, regex, anchored, before_date, _s_index, _key_groups, _cache
    cdef public object time_of, _now_memo, _last_minute, found, found_quick


cdef class DateDetector:
    cdef public object templates, _last, last_time
