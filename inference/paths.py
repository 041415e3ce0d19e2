"""Batches of tag paths -> spans, with the result of ``annotation.tags.tags_to_spans``
(``strict=False``) and without a Python step per character.

A CRF trained with the scheme's constraints (``learner/crf.py``) only produces well-formed
paths; those rows are read by one compiled loop over the batch. A row holding any ill-formed
piece falls back to ``tags_to_spans`` on its runs of non-O tags (an O closes any open entity,
so runs decode independently), which keeps the lenient repair rules in one place.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
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
        paths = np.ascontiguousarray(paths, dtype=np.int64)
        lengths = np.ascontiguousarray(lengths, dtype=np.int64)
        size = paths.size
        rows, starts, ends = (np.empty(size, np.int64) for _ in range(3))
        kinds = np.empty(size, np.int64)
        bad_rows = np.zeros(len(paths), np.bool_)
        count = _read_rows(paths, lengths, self._prefix, self._type, self.scheme == "bio",
                           rows, starts, ends, kinds, bad_rows)  # fmt: skip
        names = self.types
        out_rows = rows[:count].tolist()
        out_starts = starts[:count].tolist()
        out_ends = ends[:count].tolist()
        out_labels = [names[k] for k in kinds[:count].tolist()]
        if bad_rows.any():
            inside = np.arange(paths.shape[1])[None, :] < lengths[:, None]
            pre = np.where(inside, self._prefix[paths], _O)
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


@numba.njit(cache=True, nogil=True)
def _read_rows(paths, lengths, prefix, kind, bio, rows, starts, ends, kinds, bad) -> int:
    """The spans of every well-formed row, in row then start order; an ill-formed row (an
    I or E that goes on no entity of its type, an entity left open, and under BIO any E or S)
    gets ``bad`` set and no spans here."""
    count = 0
    for b in range(len(lengths)):
        first, opened, open_kind, ok = count, -1, -1, True
        for t in range(lengths[b]):
            p, k = prefix[paths[b, t]], kind[paths[b, t]]
            if bio:
                if p in (_E, _S) or (p == _I and (opened < 0 or open_kind != k)):
                    ok = False
                    break
                if p == _I:
                    continue
                if opened >= 0:  # an O or a B closes the open entity
                    rows[count], starts[count], ends[count], kinds[count] = b, opened, t, open_kind
                    count += 1
                    opened = -1
                if p == _B:
                    opened, open_kind = t, k
            elif p in (_I, _E):
                if opened < 0 or open_kind != k:
                    ok = False
                    break
                if p == _E:
                    rows[count], starts[count], ends[count], kinds[count] = b, opened, t + 1, k
                    count += 1
                    opened = -1
            elif opened >= 0:  # an O, B or S while an entity is open
                ok = False
                break
            elif p == _B:
                opened, open_kind = t, k
            elif p == _S:
                rows[count], starts[count], ends[count], kinds[count] = b, t, t + 1, k
                count += 1
        if ok and opened >= 0:
            if bio:
                rows[count], starts[count], ends[count] = b, opened, lengths[b]
                kinds[count] = open_kind
                count += 1
            else:
                ok = False
        if not ok:
            count = first
            bad[b] = True
    return count
