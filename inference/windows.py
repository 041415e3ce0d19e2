"""Texts longer than the model's window: windows out, merged spans back.

A long text is predicted sentence by sentence: each sentence (up to and including its end
mark, closing quotes and the whitespace after it) is a window of its own, as the training
sentences were. A sentence longer than ``max_len`` is cut into windows of ``max_len`` that
share ``overlap`` characters, giving the model context on both sides of every such hard cut.
A text that fits ``max_len`` is one window unless it holds a line break: the model never saw
one inside a training sentence, and read as one sentence, a text of several lines got
entities across the break (the demo model: "第一行\r\n张伟在北京大学工作。" gave PER
"第一行\r\n张", "第一行。\n张伟在北京大学工作。" lost 张伟, "但是\n并且我们去了上海。" gave PER
"但是"; each line on its own gives 张伟, 张伟 and nothing). Such a text is predicted sentence
by sentence like a long one. (CLUENER dev joined into
1,100-character documents, a two-epoch model: 69.57 F1 predicting the sentences one by one,
69.04 with the earlier 256-character windows cut at the last sentence end and overlapping,
69.42 this way. MSRA test, whose 12 sentences over 256 characters are windowed, with a model
trained 420 s on msra/dev.bio: 73.82 before, 73.88 this way.) The engine predicts all windows of all texts in the same length-bucketed
batches as short texts, then calls ``merge_spans`` and ``owned_ranges`` here. (Hard cuts
only: CLUENER dev joined into 45 documents of about 1,100 characters with 。！？； replaced by
，, the 2-epoch bench bundle in INT8: 68.00 F1 with 826 false positives when a span could come
from any window that saw it, 68.05 with 820 since it comes from the window owning its middle.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

SENTENCE_ENDS = "。！？；\n\r"
# what still belongs to the sentence an end mark closes: more end marks, closing quotes and
# brackets, whitespace
_CLOSERS = SENTENCE_ENDS + "!?”’」』）)》 \t\u3000"


class Window(NamedTuple):
    start: int
    end: int  # exclusive


def _effective_overlap(max_len: int, overlap: int) -> int:
    """The overlap actually used: at most a quarter of the window, so every window advances
    and each character lies in at most two windows, which ``owned_ranges`` relies on."""
    if max_len < 1:
        raise ValueError(f"max_len must be at least 1, got {max_len}")
    if overlap < 0:
        raise ValueError(f"overlap must not be negative, got {overlap}")
    return min(overlap, max(1, max_len // 2) // 2)


def sentences(text: str) -> list[Window]:
    """The text cut after each sentence end (with what closes it); they cover the text."""
    cuts, index, length = [], 0, len(text)
    while index < length:
        if text[index] in SENTENCE_ENDS:
            while index + 1 < length and text[index + 1] in _CLOSERS:
                index += 1
            cuts.append(index + 1)
        index += 1
    if not cuts or cuts[-1] != length:
        cuts.append(length)
    return [Window(lo, hi) for lo, hi in zip([0, *cuts], cuts, strict=False) if hi > lo]


def has_line_break(text: str) -> bool:
    return "\n" in text or "\r" in text


def split_windows(text: str, max_len: int, overlap: int) -> list[Window]:
    """Windows covering ``text`` (one window when it fits and is one line), each at most
    ``max_len`` long: its sentences, and a sentence longer than that in overlapping pieces."""
    length = len(text)
    if length <= max_len and not has_line_break(text):
        return [Window(0, length)]
    overlap = _effective_overlap(max_len, overlap)
    windows = []
    for sentence in sentences(text):
        start = sentence.start
        while sentence.end - start > max_len:
            windows.append(Window(start, start + max_len))
            start += max_len - overlap
        windows.append(Window(start, sentence.end))
    return windows


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
    the result is in text offsets. A span counts only from the window that owns its middle
    (``owned_ranges``): in an overlap, the window that sees a stretch with context on both
    sides decides, and a guess made at another window's edge without its left or right
    context is dropped (a model that read "…在北京工作" from a cut just before "工作" called it
    a person; the window that read it in the middle found nothing). Spans that still overlap
    (each from its own window, across the middle of an overlap) are decided in favour of the
    one furthest from a cut, the text's own start and end not being cuts; ties go to the
    higher score.
    """
    owners = owned_ranges(windows) if windows else []
    candidates = []
    for window, (lo, hi), found in zip(windows, owners, spans, strict=True):
        left_cut = window.start > 0
        right_cut = window.end < length
        for start, end, label, score, *rest in found:
            start += window.start
            end += window.start
            if not 2 * lo <= start + end < 2 * hi:
                continue  # its middle belongs to another window
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
