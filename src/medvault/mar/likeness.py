"""Whether two texts are the same document (a fax or a re-scan of a report), not two notes from one template.

How much two texts are alike says little: daily notes written from one template share their headings and
boilerplate and differ in a date and a few measurements, while a fax of a report adds a header line, wraps its
lines elsewhere and comes back from OCR with letters wrong. So the test looks at *what* differs. A text is
first reduced to its words (`Fingerprint`): transmission lines dropped (a fax header or footer: "FAX",
"FROM: … TO: …", "PAGE 1/3", "Received:"), line-end hyphens joined, case and accents folded, and inside a token
holding a digit the letters OCR takes for digits read as digits (O→0, l and I→1, S→5, B→8), so line breaks and
those misreadings change nothing (a word misread with a digit, "1eft", is compared the same way). Two texts are
the same document (`compare`) when

- their dates agree: each one's date of service (mar/extraction.py's rules) is among the other's dates;
- aligned word by word (difflib on the word lists), no number differs: a date, a visit number or a
  measurement that differs means another document, however alike the rest;
- what else differs is noise: a differing run ≥ 60 % alike letter by letter is a misreading; other words
  (longer than two letters: OCR specks are not words) make at most 1 % of the text, at least one (a stamp);
- and the aligned words, misreadings included, make ≥ 90 % of both texts.

Speed. The alignment costs milliseconds, so it runs only on candidates (`pairs`): texts whose dates agree,
whose sets of word pairs (bigrams) are within a factor of two in size and ≥ 50 % alike (Jaccard). Those
checks are set operations, cheap enough for every pair of a few hundred records.
"""

from __future__ import annotations

import difflib
import itertools
import re
from dataclasses import dataclass

from medvault.mar import extraction
from medvault.mar.index import normalise

SIMILARITY = 0.9  # aligned words, of both texts
NOISE = 0.6  # letter likeness above which a differing run is a misreading
OTHER_WORDS = 0.01  # differing words that are not misreadings, of the longer text
CANDIDATE = 0.5  # Jaccard of word bigrams for the alignment to be tried
MAX_TOKENS = 20_000  # words aligned at most (a long report's first pages)

_TRANSMISSION = re.compile(
    r"\bfax(?:ed)?\b|\bpage\s*\d+\s*(?:/|of)\s*\d+\b|^\s*(?:from|to|sent|received|rcvd)\s*:", re.IGNORECASE
)
_HYPHEN = re.compile(r"(\w)-\n\s*(?=[a-z])")
_DIGIT = re.compile(r"\d")
_TOKEN = re.compile(r"[^\W_]+")
_OCR_DIGITS = str.maketrans({"o": "0", "l": "1", "i": "1", "|": "1", "s": "5", "b": "8"})


def _as_read(chunk: str) -> str:
    """A whitespace-separated chunk with OCR's letter-for-digit misreadings undone when it holds a digit."""
    return chunk.translate(_OCR_DIGITS) if _DIGIT.search(chunk) else chunk


@dataclass(frozen=True)
class Fingerprint:
    """What the comparison needs of one text: its words, their bigrams, its dates and its date of service."""

    tokens: tuple[str, ...]
    bigrams: frozenset
    dates: frozenset[str]
    service: str | None

    @classmethod
    def of(cls, text: str) -> Fingerprint:
        lines = []
        for line in _HYPHEN.sub(r"\1", normalise(text)).splitlines():
            read = " ".join(_as_read(chunk) for chunk in line.split())
            if read and not _TRANSMISSION.search(read):
                lines.append(read)
        kept = "\n".join(lines)
        tokens = tuple(_TOKEN.findall(kept)[:MAX_TOKENS])
        found = extraction.dates(kept, 1)
        service = extraction.Extracted(dates=found).date_of_service
        return cls(
            tokens,
            frozenset(itertools.pairwise(tokens)),
            frozenset(d.value for d in found),
            service.value if service else None,
        )


def dates_agree(a: Fingerprint, b: Fingerprint) -> bool:
    """No date of service of one is missing from the other (a text without one agrees with any)."""
    return (a.service is None or a.service in b.dates) and (b.service is None or b.service in a.dates)


def candidates(a: Fingerprint, b: Fingerprint) -> bool:
    """The cheap checks: dates agree and the word bigrams are alike enough to be worth aligning."""
    if not a.tokens or not b.tokens or not dates_agree(a, b):
        return False
    small, large = sorted((len(a.bigrams), len(b.bigrams)))
    if small < CANDIDATE * large:
        return False
    if not large:  # one word each
        return a.tokens == b.tokens
    shared = len(a.bigrams & b.bigrams)
    return shared >= CANDIDATE * (small + large - shared)


def compare(a: Fingerprint, b: Fingerprint) -> float | None:
    """How alike the two texts are when they are the same document (≥ SIMILARITY), else None."""
    if not a.tokens or not b.tokens or not dates_agree(a, b):
        return None
    aligned = other = 0
    matcher = difflib.SequenceMatcher(None, a.tokens, b.tokens, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            aligned += i2 - i1
            continue
        left, right = a.tokens[i1:i2], b.tokens[j1:j2]
        seen_left, seen_right = " ".join(left).translate(_OCR_DIGITS), " ".join(right).translate(_OCR_DIGITS)
        if seen_left == seen_right and left and right:  # "1eft" for "left": a misreading, not a number
            aligned += min(len(left), len(right))
            continue
        if any(_DIGIT.search(t) for t in left + right):
            return None  # a number differs: another day, another visit, another measurement
        if left and right and difflib.SequenceMatcher(None, seen_left, seen_right).ratio() >= NOISE:
            aligned += min(len(left), len(right))
        else:
            other += sum(len(t) > 2 for t in left + right)
    longest = max(len(a.tokens), len(b.tokens))
    if other > max(1, OTHER_WORDS * longest):
        return None
    similarity = 2 * aligned / (len(a.tokens) + len(b.tokens))
    return similarity if similarity >= SIMILARITY else None


def pairs(prints: dict[str, Fingerprint]) -> list[tuple[str, str, float]]:
    """Every pair (in the order given) that is the same document, with its similarity."""
    ids = list(prints)
    found = []
    for i, a in enumerate(ids):
        for b in ids[i + 1 :]:
            if candidates(prints[a], prints[b]):
                similarity = compare(prints[a], prints[b])
                if similarity is not None:
                    found.append((a, b, similarity))
    return found
