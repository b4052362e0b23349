# cython: language_level=3
"""A block of log lines matched by PCRE2's JIT: a line's date, prefregex and failregexes.

`re` spends most of a line's time in the date, the prefregex and the failregexes; PCRE2's JIT runs the
same regexes (rewritten by `pcresyntax.to_pcre2`) several times faster, on the block's text in place: no
line is decoded, and only the lines with a failure become Python objects. Two forms, as `Filter._match`
takes them: one regex of the line (`fused.fuse_line`, the date at its start); or the date template
searched in the line, the date cut out, and the failregexes' alternation matched on what is left. Only printable-ASCII lines (tabs allowed) are matched here, where both engines
agree; any other line, and any line PCRE2 does not match or gives up on (its match limit), is reported
for `re` to do (`FALLBACK`), so an error here can cost time but never change an answer.

libpcre2-8 is Debian's (a dependency of grep, so on every machine); it is linked by its soname and its
few functions are declared here, so building needs no `-dev` package.
"""

from cpython.unicode cimport PyUnicode_DecodeASCII
from libc.stdint cimport uint8_t, uint32_t
from libc.string cimport memchr, memcmp, memcpy
from libc.stdlib cimport malloc, free, realloc

cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object, Py_ssize_t*) except NULL

cdef extern from *:
    """
    #include <stddef.h>
    #include <stdint.h>
    typedef struct pcre2_real_code_8 pcre2_code_8;
    typedef struct pcre2_real_match_data_8 pcre2_match_data_8;
    typedef struct pcre2_real_match_context_8 pcre2_match_context_8;
    typedef struct pcre2_real_jit_stack_8 pcre2_jit_stack_8;
    pcre2_code_8 *pcre2_compile_8(const uint8_t *, size_t, uint32_t, int *, size_t *, void *);
    void pcre2_code_free_8(pcre2_code_8 *);
    int pcre2_jit_compile_8(pcre2_code_8 *, uint32_t);
    pcre2_match_data_8 *pcre2_match_data_create_from_pattern_8(const pcre2_code_8 *, void *);
    void pcre2_match_data_free_8(pcre2_match_data_8 *);
    size_t *pcre2_get_ovector_pointer_8(pcre2_match_data_8 *);
    pcre2_match_context_8 *pcre2_match_context_create_8(void *);
    void pcre2_match_context_free_8(pcre2_match_context_8 *);
    pcre2_jit_stack_8 *pcre2_jit_stack_create_8(size_t, size_t, void *);
    void pcre2_jit_stack_free_8(pcre2_jit_stack_8 *);
    void pcre2_jit_stack_assign_8(pcre2_match_context_8 *, void *, void *);
    int pcre2_jit_match_8(const pcre2_code_8 *, const uint8_t *, size_t, size_t, uint32_t,
                          pcre2_match_data_8 *, pcre2_match_context_8 *);
    int pcre2_get_error_message_8(int, uint8_t *, size_t);
    """
    ctypedef struct pcre2_code_8
    ctypedef struct pcre2_match_data_8
    ctypedef struct pcre2_match_context_8
    ctypedef struct pcre2_jit_stack_8
    pcre2_code_8 *pcre2_compile_8(const uint8_t *, size_t, uint32_t, int *, size_t *, void *)
    void pcre2_code_free_8(pcre2_code_8 *)
    int pcre2_jit_compile_8(pcre2_code_8 *, uint32_t)
    pcre2_match_data_8 *pcre2_match_data_create_from_pattern_8(const pcre2_code_8 *, void *)
    void pcre2_match_data_free_8(pcre2_match_data_8 *)
    size_t *pcre2_get_ovector_pointer_8(pcre2_match_data_8 *)
    pcre2_match_context_8 *pcre2_match_context_create_8(void *)
    void pcre2_match_context_free_8(pcre2_match_context_8 *)
    pcre2_jit_stack_8 *pcre2_jit_stack_create_8(size_t, size_t, void *)
    void pcre2_jit_stack_free_8(pcre2_jit_stack_8 *)
    void pcre2_jit_stack_assign_8(pcre2_match_context_8 *, void *, void *)
    int pcre2_jit_match_8(const pcre2_code_8 *, const uint8_t *, size_t, size_t, uint32_t,
                          pcre2_match_data_8 *, pcre2_match_context_8 *)
    int pcre2_get_error_message_8(int, uint8_t *, size_t)

cdef uint32_t PCRE2_ANCHORED = 0x80000000u
cdef uint32_t PCRE2_JIT_COMPLETE = 1
cdef size_t PCRE2_UNSET = <size_t>-1

FALLBACK = -2
"""`alt` of a line left to `re`."""
NO_FAILURE = -1
"""`alt` of a line whose date and prefregex matched but no failregex."""


cdef inline bint _plain(const uint8_t *p, size_t n) noexcept:
    """Printable ASCII and tabs only: the characters on which `re` and PCRE2 agree."""
    cdef size_t i
    cdef uint8_t c
    for i in range(n):
        c = p[i]
        if (c < 0x20 and c != 0x09) or c > 0x7E:
            return False
    return True


cdef void _raise(int error, str what) except *:
    cdef uint8_t message[256]
    pcre2_get_error_message_8(error, message, sizeof(message))
    raise ValueError(f"{what}: {(<bytes>message).decode()}")


cdef class _Regex:
    """One JIT-compiled PCRE2 regex with its match data."""

    cdef pcre2_code_8 *code
    cdef pcre2_match_data_8 *data
    cdef size_t *ovector

    def __cinit__(self, str pattern, bint anchored):
        cdef int error = 0
        cdef size_t offset = 0
        encoded = pattern.encode("ascii")
        self.code = pcre2_compile_8(encoded, len(encoded), PCRE2_ANCHORED if anchored else 0, &error, &offset, NULL)
        if self.code == NULL:
            _raise(error, f"PCRE2 does not compile it (at {offset})")
        error = pcre2_jit_compile_8(self.code, PCRE2_JIT_COMPLETE)
        if error:
            _raise(error, "PCRE2's JIT does not compile it")
        self.data = pcre2_match_data_create_from_pattern_8(self.code, NULL)
        if self.data == NULL:
            raise MemoryError
        self.ovector = pcre2_get_ovector_pointer_8(self.data)

    def __dealloc__(self):
        if self.data != NULL:
            pcre2_match_data_free_8(self.data)
        if self.code != NULL:
            pcre2_code_free_8(self.code)


cdef class _Scratch:
    """A growing buffer: a line with its newline, or a line with its date cut out."""

    cdef uint8_t *data
    cdef size_t size

    cdef uint8_t *reserve(self, size_t n) except NULL:
        if n > self.size:
            grown = <uint8_t *>realloc(self.data, n)
            if grown == NULL:
                raise MemoryError
            self.data, self.size = grown, n
        return self.data

    def __dealloc__(self):
        free(self.data)


cdef class LineMatcher:
    """`scan(text)`: per line of `text`, the date and the first failregex that matched (see `scan`).

    With `failregexes` None, `line` is `fuse_line`'s regex of the whole line (the date must start it);
    otherwise `line` is the date template, searched in the line, and `failregexes` the alternation matched
    on the line without its date. `date`: the number of the group `_date` in `line`; `content` (`_c`),
    `none` (`_none`) and `markers` (`_e0`, `_e1`…) are numbers in the regex holding the failregexes, and
    so are `alternatives` (per failregex, the (name, number) of its groups) and `pre` (the prefregex's).
    """

    cdef _Regex line, failregexes
    cdef pcre2_match_context_8 *context
    cdef pcre2_jit_stack_8 *stack
    cdef int date, content, none, count
    cdef int *markers
    cdef tuple pre, alternatives
    cdef _Scratch with_newline, cut

    def __cinit__(
        self, str line, int date, int content, int none, tuple markers, tuple pre, tuple alternatives,
        str failregexes=None,
    ):
        self.line = _Regex(line, failregexes is None)
        self.failregexes = _Regex(failregexes, True) if failregexes is not None else None
        self.context = pcre2_match_context_create_8(NULL)
        # Lines an attacker writes can make a regex backtrack deeply: a larger stack than the 32 KiB default
        # (an overflow is an error, and the line goes to `re`).
        self.stack = pcre2_jit_stack_create_8(32 * 1024, 1024 * 1024, NULL)
        self.markers = <int *>malloc(len(markers) * sizeof(int) + 1)
        if self.context == NULL or self.stack == NULL or self.markers == NULL:
            raise MemoryError
        pcre2_jit_stack_assign_8(self.context, NULL, self.stack)
        self.count = len(markers)
        for i, number in enumerate(markers):
            self.markers[i] = number
        self.date, self.content, self.none = date, content, none
        self.pre, self.alternatives = pre, alternatives
        self.with_newline, self.cut = _Scratch(), _Scratch()

    def __dealloc__(self):
        if self.stack != NULL:
            pcre2_jit_stack_free_8(self.stack)
        if self.context != NULL:
            pcre2_match_context_free_8(self.context)
        free(self.markers)

    cdef int _match(self, _Regex regex, const uint8_t *subject, size_t n) noexcept:
        return pcre2_jit_match_8(regex.code, subject, n, 0, 0, regex.data, self.context)

    cdef dict _groups(self, const uint8_t *subject, size_t *ov, int alt):
        """The prefregex's and the failregex's set groups, by name (the failregex's last)."""
        cdef dict groups = {}
        cdef int number
        for pairs in (self.pre, self.alternatives[alt]):
            for name, number in pairs:
                if ov[2 * number] != PCRE2_UNSET:
                    groups[name] = PyUnicode_DecodeASCII(
                        <const char *>subject + ov[2 * number], ov[2 * number + 1] - ov[2 * number], NULL
                    )
        return groups

    def scan(self, str text, bytes candidates=None):
        """Per line of `text` (lines joined by newlines), in order, `(index, date_start, date_end, content_start,
        alt, groups)`: `alt` is the failregex that matched first (`groups` its and the prefregex's groups),
        `NO_FAILURE`, or `FALLBACK` (the rest then -1 and None) for a line left to `re`: not plain, no date
        there (or an empty one, or not at the start of the line for a fused regex), or a PCRE2 error.
        `content_start` is -1 where the failregexes saw the line without its date.

        With `candidates` (a byte per line; only without a fused regex), a line whose byte is 0 cannot hold
        a failure (the literal prefilter found none of its literals): only its date is searched.

        A `NO_FAILURE` line with the same date text as the line before (that line not `FALLBACK`) is left
        out: it has that line's date, hence its time, and changes nothing else.
        """
        cdef Py_ssize_t size
        cdef const uint8_t *data = <const uint8_t *>PyUnicode_AsUTF8AndSize(text, &size)
        cdef const uint8_t *end = data + size
        cdef const uint8_t *line = data
        cdef const uint8_t *stop
        cdef const uint8_t *subject
        cdef const uint8_t *previous = NULL  # the date text of the line before, when it was matched here
        cdef size_t previous_size = 0
        cdef size_t n, start, finish
        cdef size_t *ov = self.line.ovector
        cdef size_t *fail_ov = ov
        cdef uint8_t *cut
        cdef Py_ssize_t index = 0
        cdef int rc, alt, i
        cdef bint skipped
        cdef bint fused = self.failregexes is None
        cdef list found = []
        cdef const char *maybe = NULL
        if candidates is not None:
            if fused or len(candidates) != text.count("\n") + 1:
                raise ValueError("one candidate byte per line, and only without a fused regex")
            maybe = candidates
        if not fused:
            fail_ov = self.failregexes.ovector
        while True:
            stop = <const uint8_t *>memchr(line, 10, end - line)
            n = (stop if stop != NULL else end) - line
            rc = -1
            skipped = False
            if _plain(line, n):
                if fused:  # as `re` is given `line + "\n"`
                    subject = line
                    if stop == NULL:
                        subject = self.with_newline.reserve(n + 1)
                        memcpy(<void *>subject, line, n)
                        (<uint8_t *>subject)[n] = 10
                    rc = self._match(self.line, subject, n + 1)
                    if rc > 0 and (ov[2 * self.date] != 0 or ov[2 * self.date + 1] == 0):
                        rc = -1
                else:
                    rc = self._match(self.line, line, n)
                    if rc > 0:
                        start, finish = ov[2 * self.date], ov[2 * self.date + 1]
                        if start == finish:
                            rc = -1
                        elif maybe != NULL and not maybe[index]:
                            skipped = True
                        else:  # `line[:start] + line[end:] + "\n"`
                            subject = cut = self.cut.reserve(n - (finish - start) + 1)
                            memcpy(cut, line, start)
                            memcpy(cut + start, line + finish, n - finish)
                            cut[n - (finish - start)] = 10
                            rc = self._match(self.failregexes, subject, n - (finish - start) + 1)
            if rc <= 0:
                found.append((index, -1, -1, -1, FALLBACK, None))
                previous = NULL
            else:
                start, finish = ov[2 * self.date], ov[2 * self.date + 1]
                if skipped or fail_ov[2 * self.none] != PCRE2_UNSET:
                    if not (
                        previous != NULL and finish - start == previous_size
                        and memcmp(line + start, previous, previous_size) == 0
                    ):
                        found.append(
                            (index, start, finish, fail_ov[2 * self.content] if fused else -1, NO_FAILURE, None)
                        )
                else:
                    alt = 0
                    for i in range(self.count):
                        if fail_ov[2 * self.markers[i]] != PCRE2_UNSET:
                            alt = i
                            break
                    found.append((
                        index, start, finish, fail_ov[2 * self.content] if fused else -1, alt,
                        self._groups(subject, fail_ov, alt),
                    ))
                previous, previous_size = line + start, finish - start
            if stop == NULL:
                return found
            line = stop + 1
            index += 1
