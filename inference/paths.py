"""Batches of tag paths -> spans, with the result of ``annotation.tags.tags_to_spans``
(``strict=False``) and without a Python step per character.

A CRF trained with the scheme's constraints (``learner/crf.py``) only produces well-formed
paths; those rows are read with array operations (entity starts and ends are positions, so
``np.nonzero`` pairs them up). A row holding any ill-formed piece falls back to
``tags_to_spans`` on its runs of non-O tags (an O closes any open entity, so runs decode
independently), which keeps the lenient repair rules in one place.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from annotation.tags import SCHEMES, split_tag, tags_to_spans

_O, _B, _I, _E, _S = range(5)
_CODES = {"O": _O, "B": _B, "I": _I, "M": _I, "E": _E, "S": _S}


class PathReader:
    def __init__(self, tags: Sequence[str], scheme: str):
        if scheme not in SCHEMES:
            raise ValueError(f"unknown tag scheme {scheme!r}")
        self.tags = list(tags)
        self.scheme = scheme
        self.types = sorted({split_tag(tag)[1] for tag in self.tags if tag != "O"})
        type_index = {name: i for i, name in enumerate(self.types)}
        prefixes, types = [], []
        for tag in self.tags:  # split_tag raises TagError on a malformed tag
            prefix, label = split_tag(tag)
            prefixes.append(_CODES[prefix])
            types.append(type_index.get(label, -1))
        self._prefix = np.array(prefixes, dtype=np.int8)
        self._type = np.array(types, dtype=np.int64)

    def read(self, paths: np.ndarray, lengths: np.ndarray):
        """``(rows, starts, ends, labels)`` lists of every span, sorted by row then start."""
        batch, width = paths.shape
        inside = np.arange(width)[None, :] < np.asarray(lengths)[:, None]
        pre = np.where(inside, self._prefix[paths], _O)
        kind = np.where(inside, self._type[paths], -1)
        after = np.full_like(pre, _O)
        after[:, :-1] = pre[:, 1:]
        before = np.full_like(pre, _O)
        before[:, 1:] = pre[:, :-1]
        same_after = np.zeros(pre.shape, bool)
        same_after[:, :-1] = kind[:, 1:] == kind[:, :-1]
        same_before = np.zeros(pre.shape, bool)
        same_before[:, 1:] = same_after[:, :-1]
        opens_or_goes_on = (pre == _B) | (pre == _I)
        goes_on_before = ((before == _B) | (before == _I)) & same_before
        if self.scheme == "bio":
            starts = pre == _B
            continued = (after == _I) & same_after
            ends = opens_or_goes_on & ~continued
            bad = (pre == _E) | (pre == _S) | ((pre == _I) & ~goes_on_before)
        else:
            starts = (pre == _B) | (pre == _S)
            ends = (pre == _E) | (pre == _S)
            closes_after = ((after == _I) | (after == _E)) & same_after
            bad = (opens_or_goes_on & ~closes_after) | (
                ((pre == _I) | (pre == _E)) & ~goes_on_before
            )
        bad_rows = bad.any(axis=1)
        good = ~bad_rows[:, None]
        rows, start_cols = np.nonzero(starts & good)
        _, end_cols = np.nonzero(ends & good)
        names = self.types
        out_rows = rows.tolist()
        out_starts = start_cols.tolist()
        out_ends = (end_cols + 1).tolist()
        out_labels = [names[k] for k in kind[rows, start_cols].tolist()]
        if bad_rows.any():
            self._repair(
                paths, pre, np.flatnonzero(bad_rows), out_rows, out_starts, out_ends, out_labels
            )
        return out_rows, out_starts, out_ends, out_labels

    def _repair(self, paths, pre, bad_rows, rows, starts, ends, labels) -> None:
        """Append the spans of ill-formed rows, read by ``tags_to_spans`` run by run, then
        restore the row-then-start order."""
        tagged = pre[bad_rows] != _O
        edges = np.zeros((len(bad_rows), tagged.shape[1] + 2), np.int8)
        edges[:, 1:-1] = tagged
        steps = np.diff(edges, axis=1)
        run_rows, run_starts = np.nonzero(steps == 1)
        _, run_ends = np.nonzero(steps == -1)
        for k, lo, hi in zip(
            run_rows.tolist(), run_starts.tolist(), run_ends.tolist(), strict=True
        ):
            row = int(bad_rows[k])
            tags = [self.tags[tag] for tag in paths[row, lo:hi].tolist()]
            for span in tags_to_spans(tags, self.scheme, strict=False):
                rows.append(row)
                starts.append(lo + span.start)
                ends.append(lo + span.end)
                labels.append(span.label)
        order = sorted(range(len(rows)), key=lambda i: (rows[i], starts[i]))
        for column in (rows, starts, ends, labels):
            column[:] = [column[i] for i in order]
