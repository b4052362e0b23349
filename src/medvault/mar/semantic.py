"""Search by meaning: "broken wrist" finds the record that says "distal radius fracture".

The model is WordLlama's l2_supercat (256 dimensions, static token embeddings), whose weights and tokenizer
ship inside its PyPI wheel. It is loaded from the installed package (`cache_dir` pointed at it, downloads
disabled), so nothing is fetched at run time, and a missing file is an error, never a download.

A record's vector is computed from its row of the reader's decrypted index when a search first asks for one:
its first WORDS searchable words, which are its title, description and tags, then its text's beginning (a
static model averages tokens, so more words cost time and add little), and kept beside that index in server
memory until its rows change or the session ends. Vectors are never written anywhere: there is nothing more at
rest to seal.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy and the model are imported on first use: a server never asked pays no memory for them
    import numpy as np

WORDS = 64


@functools.cache
def _model():
    import wordllama

    return wordllama.WordLlama.load(cache_dir=Path(wordllama.__file__).parent, disable_download=True)


def vectors(texts: list[str]) -> np.ndarray:
    """Unit vectors, one row per text; a text with no known token is the zero vector (similar to nothing)."""
    import numpy as np

    if not texts:
        return np.zeros((0, 256), dtype=np.float32)
    texts = [" ".join(t.split(maxsplit=WORDS)[:WORDS]) for t in texts]
    with np.errstate(invalid="ignore", divide="ignore"):  # a zero vector's norm: 0/0, made 0 below
        found = _model().embed(texts, norm=True)
    return np.nan_to_num(found).astype(np.float32, copy=False)


def similarities(query: str, matrix: np.ndarray) -> list[float]:
    """Cosine similarity of `query` to each row of `matrix`, rounded so that a cursor's key is stable."""
    return [round(float(s), 6) for s in matrix @ vectors([query])[0]]
