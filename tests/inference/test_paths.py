"""Batched path reading gives exactly what tags_to_spans(strict=False) gives, row by row."""

import numpy as np
import pytest

from annotation.spans import Span
from annotation.tags import TagError, spans_to_tags, tags_to_spans
from inference.paths import PathReader

TAGSETS = {
    "bio": ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "E-LOC", "S-PER"],
    "bioes": ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC"],
    "bmes": ["O", "B-PER", "M-PER", "E-PER", "S-PER", "B-LOC", "M-LOC", "E-LOC", "S-LOC"],
}


def _expected(tags, scheme, paths, lengths):
    out = []
    for row, (path, length) in enumerate(zip(paths, lengths, strict=True)):
        for span in tags_to_spans([tags[t] for t in path[:length]], scheme, strict=False):
            out.append((row, span.start, span.end, span.label))
    return out


def _read(reader, paths, lengths):
    return list(zip(*reader.read(paths, lengths), strict=True))


@pytest.mark.parametrize("scheme", sorted(TAGSETS))
@pytest.mark.parametrize("seed", range(4))
def test_paths_random_tag_soup_matches_tags_to_spans(scheme, seed):
    tags = TAGSETS[scheme]
    rng = np.random.default_rng(seed)
    paths = rng.integers(0, len(tags), size=(40, 12))
    lengths = rng.integers(1, 13, size=40)
    reader = PathReader(tags, scheme)
    assert _read(reader, paths, lengths) == _expected(tags, scheme, paths, lengths)


@pytest.mark.parametrize("scheme", ["bio", "bioes", "bmes"])
def test_paths_well_formed_rows_match_tags_to_spans(scheme):
    tags = TAGSETS[scheme]
    index = {tag: i for i, tag in enumerate(tags)}
    rng = np.random.default_rng(1)
    rows, lengths = [], []
    for _ in range(50):
        length = int(rng.integers(1, 15))
        spans, cursor = [], int(rng.integers(0, 3))
        while cursor < length:
            end = min(length, cursor + int(rng.integers(1, 4)))
            spans.append(Span(cursor, end, ["PER", "LOC"][int(rng.integers(0, 2))]))
            cursor = end + int(rng.integers(0, 3))
        path = [index[t] for t in spans_to_tags(length, spans, scheme)] + [0] * (15 - length)
        rows.append(path)
        lengths.append(length)
    paths, lengths = np.array(rows), np.array(lengths)
    reader = PathReader(tags, scheme)
    assert _read(reader, paths, lengths) == _expected(tags, scheme, paths, lengths)


def test_paths_padding_never_makes_spans():
    tags = TAGSETS["bioes"]
    paths = np.array([[4, 4, 4, 4], [1, 3, 1, 3]])  # S-PER everywhere, B/E pairs
    got = _read(PathReader(tags, "bioes"), paths, np.array([1, 2]))
    assert got == [(0, 0, 1, "PER"), (1, 0, 2, "PER")]


def test_paths_malformed_tag_list_is_refused():
    with pytest.raises(TagError):
        PathReader(["O", "X-PER"], "bioes")
