"""Streaming a project out in any registered format.

One server-side cursor walks the documents with their annotations joined in, so the
number of queries does not grow with the project and memory holds one chunk at a time.
Writers come from ``annotation.formats``; this module only turns rows into Examples and
groups the writer's small pieces into larger chunks for the HTTP response.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import F, JSONField, OuterRef, Subquery

from .formats import FORMATS, SOURCE_KEY, SPLIT_KEY, iter_lines
from .models import Document, Prediction, Project
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


def documents(
    project: Project, split: str | None = None, annotated: bool = False, predictions: bool = False
):
    rows = Document.objects.filter(project=project).select_related("annotation").order_by("id")
    if split:
        rows = rows.filter(split=split)
    if annotated:
        rows = rows.filter(annotation__isnull=False)
    if predictions:
        # the answer of the version that last predicted the document (the one the queue shows)
        latest = Prediction.objects.filter(
            document=OuterRef("pk"), model_version=OuterRef("predicted_by")
        ).values("spans")[:1]
        rows = rows.annotate(
            predicted_spans=Subquery(latest, output_field=JSONField()),
            predicted_version=F("predicted_by__version"),
        )
    return rows.only("id", "text", "meta", "split", "annotation__spans", "annotation__validated")


def examples(
    project: Project, split: str | None = None, annotated: bool = False, predictions: bool = False
):
    """Each document with its annotation's spans. With ``predictions``, a document without an
    annotation carries its latest prediction's spans instead (labels the project still has).

    ``meta`` says what an upload needs to restore the project (formats that keep meta):
    ``nerloop_split`` (``train``/``eval``) and ``nerloop_source``, where the spans come from:
    ``human`` (a validated answer, "no entity" included), ``draft`` (saved, not validated),
    ``model <version>`` or ``none``."""
    labels = set(project.label_names())
    for doc in documents(project, split, annotated, predictions).iterator(chunk_size=CHUNK_ROWS):
        annotation = getattr(doc, "annotation", None)
        if annotation is not None:
            spans = [Span(s["start"], s["end"], s["label"]) for s in annotation.spans]
            source = "human" if annotation.validated else "draft"
        elif predictions and doc.predicted_spans is not None:
            spans = [
                Span(s["start"], s["end"], s["label"])
                for s in doc.predicted_spans
                if s["label"] in labels
            ]
            source = f"model {doc.predicted_version}"
        else:
            spans, source = [], "none"
        yield Example(doc.text, spans, {**doc.meta, SPLIT_KEY: doc.split, SOURCE_KEY: source})


def _answered(example: Example, predictions: bool) -> bool:
    source = example.meta[SOURCE_KEY]
    return source == "human" or (predictions and source.startswith("model "))


def export_chunks(
    project: Project,
    fmt: str,
    split: str | None = None,
    annotated: bool = False,
    predictions: bool = False,
    scheme: str = "bio",
) -> Iterator[str]:
    """The file, in pieces of about CHUNK_CHARS characters (CoNLL tags in ``scheme``).

    CoNLL cannot say where a sentence's tags come from, and whoever reads it takes every
    sentence as gold: a document with no answer would read as "no entity" and a draft as
    finished. So it holds the validated documents only, plus, with ``predictions``, those that
    carry the model's spans (asked for by name)."""
    rows = examples(project, split, annotated, predictions)
    if fmt == "conll":
        rows = (row for row in rows if _answered(row, predictions))
    buffer: list[str] = []
    size = 0
    for piece in iter_lines(fmt, rows, scheme):
        buffer.append(piece)
        size += len(piece)
        if size >= CHUNK_CHARS:
            yield "".join(buffer)
            buffer, size = [], 0
    if buffer:
        yield "".join(buffer)
