"""Conversion between spans and per-character tags (BIO, BIOES; BMES is BIOES spelled M).

Only format readers/writers, training and the decoder see tags; everything else sees spans.
"""

from __future__ import annotations

from collections.abc import Sequence

from .spans import Span

SCHEMES = ("bio", "bioes", "bmes")


class TagError(ValueError):
    """A tag sequence that is not valid in its scheme; ``index`` is the offending position.
    ``repairable``: reading leniently (``strict=False``) fixes it, as for an I- with no entity;
    a tag that is no tag at all ('extra') it does not."""

    def __init__(self, index: int, message: str, repairable: bool = True):
        super().__init__(message)
        self.index = index
        self.repairable = repairable


def spans_to_tags(length: int, spans: Sequence[Span], scheme: str = "bioes") -> list[str]:
    if scheme not in SCHEMES:
        raise ValueError(f"unknown tag scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")
    inside = "M" if scheme == "bmes" else "I"
    tags = ["O"] * length
    for start, end, label in spans:
        if scheme == "bio":
            tags[start] = f"B-{label}"
            for i in range(start + 1, end):
                tags[i] = f"I-{label}"
        elif end - start == 1:
            tags[start] = f"S-{label}"
        else:
            tags[start] = f"B-{label}"
            for i in range(start + 1, end - 1):
                tags[i] = f"{inside}-{label}"
            tags[end - 1] = f"E-{label}"
    return tags


def split_tag(tag: str) -> tuple[str, str]:
    """'B-PER' -> ('B', 'PER'); 'O' -> ('O', '')."""
    if tag == "O":
        return "O", ""
    prefix, sep, label = tag.partition("-")
    if not sep or not label or prefix not in {"B", "I", "M", "E", "S"}:
        raise TagError(-1, f"malformed tag {tag!r}", repairable=False)
    return prefix, label


def detect_scheme(tags: Sequence[str]) -> str:
    """Guess the scheme of a whole file's tags: BMES if any M-, BIOES if any E-/S-, else BIO."""
    prefixes = {tag.split("-", 1)[0] for tag in tags if tag != "O"}
    if "M" in prefixes:
        return "bmes"
    if prefixes & {"E", "S"}:
        return "bioes"
    return "bio"


def tags_to_spans(tags: Sequence[str], scheme: str = "bioes", strict: bool = True) -> list[Span]:
    """Spans from tags. ``strict`` raises TagError on an ill-formed sequence (an I- with no
    entity, a B- never closed in BIOES); otherwise ill-formed pieces are repaired the usual
    lenient way (a stray I-/M-/E- starts an entity), as a decoder needs."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown tag scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")
    spans: list[Span] = []
    start, label = -1, ""

    def close(end: int) -> None:
        nonlocal start, label
        if start >= 0:
            spans.append(Span(start, end, label))
        start, label = -1, ""

    for i, tag in enumerate(tags):
        try:
            prefix, lab = split_tag(tag)
        except TagError as exc:
            raise TagError(i, str(exc), exc.repairable) from None
        if prefix == "M":
            prefix = "I"
        if scheme == "bio" and prefix in {"E", "S"}:
            if strict:
                raise TagError(i, f"tag {tag!r} is not part of the BIO scheme")
            prefix = "I" if prefix == "E" else "B"
        if prefix == "O":
            if strict and scheme != "bio" and start >= 0:
                raise TagError(i, f"entity {label!r} opened at {start} is never closed with E-")
            close(i)
        elif prefix == "B":
            if strict and scheme != "bio" and start >= 0:
                raise TagError(i, f"entity {label!r} opened at {start} is never closed with E-")
            close(i)
            start, label = i, lab
        elif prefix == "S":
            if strict and start >= 0:
                raise TagError(i, f"entity {label!r} opened at {start} is never closed with E-")
            close(i)
            spans.append(Span(i, i + 1, lab))
        else:  # I or E
            if start < 0 or lab != label:
                if strict:
                    raise TagError(i, f"tag {tag!r} continues no open entity")
                close(i)
                start, label = i, lab
            if prefix == "E":
                close(i + 1)
    if strict and scheme != "bio" and start >= 0:
        raise TagError(len(tags), f"entity {label!r} opened at {start} is never closed with E-")
    close(len(tags))
    return spans
