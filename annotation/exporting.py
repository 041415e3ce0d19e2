"""Streaming a project out in any registered format.

One server-side cursor walks the documents with their annotations joined in, so the
number of queries does not grow with the project and memory holds one chunk at a time.
Writers come from ``annotation.formats``; this module only turns rows into Examples and
groups the writer's small pieces into larger chunks for the HTTP response.
"""

from __future__ import annotations

from collections.abc import Iterator

from .formats import FORMATS, iter_lines
from .models import Document, Project
from .spans import Example, Span

CHUNK_ROWS = 2000  # rows fetched per round trip
CHUNK_CHARS = 256 * 1024  # characters per response chunk

CONTENT_TYPES = {
    "cluener": ("application/x-ndjson", "json"),
    "jsonl": ("application/x-ndjson", "jsonl"),
    "conll": ("text/plain", "conll"),
    "label_studio": ("application/json", "json"),
}
assert set(CONTENT_TYPES) == set(FORMATS), "every format needs a content type"


def documents(project: Project, split: str | None = None, annotated: bool = False):
    rows = Document.objects.filter(project=project).select_related("annotation").order_by("id")
    if split:
        rows = rows.filter(split=split)
    if annotated:
        rows = rows.filter(annotation__isnull=False)
    return rows.only("id", "text", "meta", "annotation__spans")


def examples(project: Project, split: str | None = None, annotated: bool = False):
    for doc in documents(project, split, annotated).iterator(chunk_size=CHUNK_ROWS):
        annotation = getattr(doc, "annotation", None)
        spans = (
            []
            if annotation is None
            else [Span(s["start"], s["end"], s["label"]) for s in annotation.spans]
        )
        yield Example(doc.text, spans, doc.meta)


def export_chunks(
    project: Project, fmt: str, split: str | None = None, annotated: bool = False
) -> Iterator[str]:
    """The file, in pieces of about CHUNK_CHARS characters."""
    buffer: list[str] = []
    size = 0
    for piece in iter_lines(fmt, examples(project, split, annotated)):
        buffer.append(piece)
        size += len(piece)
        if size >= CHUNK_CHARS:
            yield "".join(buffer)
            buffer, size = [], 0
    if buffer:
        yield "".join(buffer)
