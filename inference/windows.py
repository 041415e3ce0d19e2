"""Texts longer than the model's window: overlapping windows out, merged spans back.

A window is cut after Chinese sentence punctuation when one lies in its second half, so most
cuts fall between sentences; otherwise it is cut at ``max_len``. Consecutive windows share
``overlap`` characters, giving the model context on both sides of every hard cut. The engine
predicts all windows of all texts in the same length-bucketed batches as short texts, then
calls ``merge_spans`` and ``owned_ranges`` here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

SENTENCE_ENDS = "。！？；\n"


class Window(NamedTuple):
    start: int
    end: int  # exclusive


def _effective_overlap(max_len: int, overlap: int) -> tuple[int, int]:
    """(shortest window before a punctuation cut, overlap actually used).

    The overlap is capped at a quarter of the window so every window advances and each
    character lies in at most two windows, which ``owned_ranges`` relies on.
    """
    if max_len < 1:
        raise ValueError(f"max_len must be at least 1, got {max_len}")
    if overlap < 0:
        raise ValueError(f"overlap must not be negative, got {overlap}")
    shortest = max(1, max_len // 2)
    return shortest, min(overlap, shortest // 2)


def split_windows(text: str, max_len: int, overlap: int) -> list[Window]:
    """Windows covering ``text`` (one window when it fits), each at most ``max_len`` long."""
    length = len(text)
    if length <= max_len:
        return [Window(0, length)]
    shortest, overlap = _effective_overlap(max_len, overlap)
    windows = []
    start = 0
    while True:
        if length - start <= max_len:
            windows.append(Window(start, length))
            return windows
        limit = start + max_len
        cut = max(text.rfind(mark, start + shortest - 1, limit) for mark in SENTENCE_ENDS)
        end = cut + 1 if cut >= 0 else limit
        windows.append(Window(start, end))
        start = end - overlap


def owned_ranges(windows: Sequence[Window]) -> list[tuple[int, int]]:
    """Split the text between its windows: each character goes to the window where it is
    furthest from a cut (the middle of each overlap). Ranges are disjoint and cover the text.
    """
    ranges = []
    lo = windows[0].start
    for left, right in zip(windows, windows[1:], strict=False):
        middle = (right.start + left.end) // 2
        ranges.append((lo, middle))
        lo = middle
    ranges.append((lo, windows[-1].end))
    return ranges


def merge_spans(
    windows: Sequence[Window], spans: Sequence[Sequence[tuple]], length: int
) -> list[tuple]:
    """Merge per-window spans into spans over the whole text, sorted, without overlaps.

    ``spans[k]`` holds window k's ``(start, end, label, score)`` tuples in window offsets;
    the result is in text offsets. A span seen by several windows (or cut short at one
    window's edge) is taken from the window where it lies furthest from a cut; the text's own
    start and end are not cuts. Ties go to the higher score. A candidate overlapping an
    already chosen span is dropped, so no duplicates and no overlaps remain.
    """
    candidates = []
    for window, found in zip(windows, spans, strict=True):
        left_cut = window.start > 0
        right_cut = window.end < length
        for start, end, label, score, *rest in found:
            start += window.start
            end += window.start
            margin = min(
                start - window.start if left_cut else length,
                window.end - end if right_cut else length,
            )
            candidates.append((-margin, -score, start, end, label, score, *rest))
    candidates.sort(key=lambda item: item[:4])
    taken = bytearray(length)
    merged = []
    for candidate in candidates:
        start, end = candidate[2], candidate[3]
        if taken.find(1, start, end) >= 0:
            continue
        taken[start:end] = b"\x01" * (end - start)
        merged.append(candidate[2:])
    merged.sort()
    return merged
