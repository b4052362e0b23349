"""Name matching for the professionals directory: titles, suffixes, "Surname, Given", initials, accents."""

from __future__ import annotations

import pytest

from medvault.mar.professionals import parse, same_person


@pytest.mark.parametrize(
    ("name", "words", "profession"),
    [
        ("Dr. J. Smith", ["j", "smith"], None),
        ("John Smith, MD", ["john", "smith"], "physician"),
        ("Smith, John", ["john", "smith"], None),
        ("Prof. Zoë  Müller, PhD", ["zoe", "muller"], None),
        ("Mary O'Neil RN", ["mary", "oneil"], "nurse"),
    ],
)
def test_parse(name, words, profession):
    """A name parses into lower-case, accent-free name words, given names first and titles dropped, and the profession
    its suffix (MD, RN) names."""
    assert parse(name) == (words, profession)


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("Dr. J. Smith", "John Smith, MD", True),
        ("Smith, John", "Dr. John Smith", True),
        ("Dr. Smith", "Jane Smith", True),
        ("Jane Smith", "John Smith, MD", False),
        ("J. Smith", "J. Smyth", False),
        ("Zoë Müller", "Dr. Z. Muller", True),
    ],
)
def test_same_person(a, b, same):
    """Two names are one person when the surnames match and the given names or initials do not conflict."""
    assert same_person(a, b) is same
