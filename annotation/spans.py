"""The one in-memory form of annotated text: characters plus (start, end_exclusive, label).

Offsets count Unicode code points of the original text (Python ``str`` indices), never
UTF-16 units or bytes. Tag schemes exist only in ``annotation/tags.py`` and the readers.
Django-free, so learner and inference code can import it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple


class Span(NamedTuple):
    start: int
    end: int  # exclusive
    label: str


@dataclass
class Example:
    text: str
    spans: list[Span] = field(default_factory=list)
    meta: dict = field(default_factory=dict)


class SpanError(ValueError):
    """A span list that breaks an invariant; the message names the span and the problem."""


def validate_spans(text: str, spans: Iterable, labels: Iterable[str] | None = None) -> list[Span]:
    """Return the spans sorted, or raise SpanError naming the first problem.

    Invariants: integer offsets, 0 <= start < end <= len(text), label in ``labels`` when
    given, no two spans overlapping.
    """
    allowed = set(labels) if labels is not None else None
    checked: list[Span] = []
    for raw in spans:
        try:
            start, end, label = raw
        except (TypeError, ValueError):
            raise SpanError(f"span {raw!r} is not (start, end, label)") from None
        if type(start) is not int or type(end) is not int:
            raise SpanError(f"span {raw!r}: offsets must be integers")
        if not isinstance(label, str) or not label:
            raise SpanError(f"span {raw!r}: label must be a non-empty string")
        if start >= end:
            raise SpanError(f"span {raw!r} is empty (start must be below end)")
        if start < 0 or end > len(text):
            raise SpanError(f"span {raw!r} is outside the text of {len(text)} characters")
        if allowed is not None and label not in allowed:
            raise SpanError(f"span {raw!r}: label {label!r} is not in the schema")
        checked.append(Span(start, end, label))
    checked.sort()
    for left, right in zip(checked, checked[1:], strict=False):
        if right.start < left.end:
            raise SpanError(f"spans {tuple(left)!r} and {tuple(right)!r} overlap")
    return checked
