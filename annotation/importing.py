"""Bringing documents into a project: JSON bodies and uploaded files in any format.

Everything is read and checked before anything is written, and the write is one
transaction, so a rejected upload leaves no trace. Gold spans become validated annotations.
The broker is checked inside that transaction: when it is down the request fails with 503
and the documents are not stored, rather than stored and never predicted.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from rest_framework import status

from nerloop.errors import CodedAPIException
from nerloop.parsers import string_problem, unstorable
from nerloop.tasks import ensure_broker

from .formats import (
    RESERVED_META_KEYS,
    SOURCE_KEY,
    SPLIT_KEY,
    UPLOAD_FORMATS,
    FormatError,
    guess_format,
    head_lines,
    iter_examples,
    iter_located,
)
from .models import (
    Annotation,
    Document,
    Project,
    normalize_labels,
    spans_to_json,
    valid_label_name,
)
from .spans import Example, SpanError, validate_spans

BATCH = 5000  # rows per INSERT
MAX_PROBLEMS = 20  # problems listed in one error response
ANALYZE_AFTER = 10_000  # documents in one import that make statistics worth refreshing


@dataclass
class Problem:
    document: int  # 1-based position in the upload
    message: str
    line: int | None = None

    def as_dict(self) -> dict:
        out: dict = {"problem": self.message}
        if self.document:  # 0: the file as a whole
            out["document"] = self.document
        if self.line is not None:
            out["line"] = self.line
        return out


GOLD_MODES = ("auto", "all", "none")


@dataclass
class Entry:
    """One document to create. ``gold``: its spans are a human answer (possibly no entity)."""

    example: Example
    split: str = Document.Split.TRAIN
    gold: bool = False
    source: str | None = None  # the uploaded file's name, and the line the document starts on
    line: int | None = None


@dataclass
class ImportResult:
    documents: int = 0
    annotated: int = 0
    ids: list[int] = field(default_factory=list)
    labels_added: list[str] = field(default_factory=list)
    duplicates: int = 0  # entries whose text the project already had
    duplicates_other_split: int = 0  # of those, texts the project has in the other split
    skipped: int = 0  # duplicates not stored (skip_duplicates)
    spans_dropped: int = 0  # spans of labels outside the schema left out (drop_unknown_labels)
    eval_unanswered: int = 0  # eval documents stored without an answer: not scored on yet
    retrain_due: bool = False  # the answers imported reach the retrain threshold


class ImportRejected(CodedAPIException):
    """``complete``: False when checking stopped early, so ``more`` is only a lower bound
    (the detail then says ``more_at_least``)."""

    def __init__(self, problems: list[Problem], source: str | None = None, complete=True):
        shown = problems[:MAX_PROBLEMS]
        first = shown[0]
        if first.line is not None:
            where = f"line {first.line}"
        else:
            where = f"document {first.document}" if first.document else ""
        prefix = " ".join(part for part in (source, where) if part)
        message = f"{prefix}: {first.message}" if prefix else first.message
        detail = {"message": message, "problems": [p.as_dict() for p in shown]}
        if len(problems) > len(shown):
            detail["more"] = len(problems) - len(shown)
            if not complete:
                detail["more_at_least"] = True
        super().__init__("E103", message, status.HTTP_400_BAD_REQUEST)
        self.detail = detail  # keep numbers as numbers (DRF would make every leaf a string)


_JSON_KEYS = {"text", "spans", "meta", "split"}


def entries_from_json(items, default_split: str = Document.Split.TRAIN) -> list[Entry]:
    """Entries from a JSON body: ``[{"text", "meta"?, "split"?, "spans"?}, ...]``."""
    if not isinstance(items, list) or not items:
        raise ImportRejected([Problem(0, "expected a non-empty list of documents")])
    entries: list[Entry] = []
    problems: list[Problem] = []
    for index, item in enumerate(items, 1):
        try:
            entries.append(_entry_from_json(item, default_split))
        except (SpanError, ValueError) as exc:
            problems.append(Problem(index, str(exc)))
    if problems:
        raise ImportRejected(problems)
    return entries


def _entry_from_json(item, default_split: str) -> Entry:
    if not isinstance(item, dict):
        raise ValueError(f"expected an object, got {type(item).__name__}")
    unknown = sorted(set(item) - _JSON_KEYS)
    if unknown:
        hint = " (spans go in 'spans')" if "entities" in unknown or "label" in unknown else ""
        raise ValueError(
            f"unknown key {unknown[0]!r}{hint}: a document has 'text', and may have 'spans', "
            "'meta' and 'split'"
        )
    text = item.get("text")
    if not isinstance(text, str):
        raise ValueError("'text' must be a string")
    meta = item.get("meta", {})
    if not isinstance(meta, dict):
        raise ValueError("'meta' must be an object")
    check_meta_keys(meta)
    split = item.get("split", default_split)
    raw = item.get("spans", [])
    if not isinstance(raw, list):
        raise ValueError("'spans' must be a list")
    tuples = [
        (s.get("start"), s.get("end"), s.get("label")) if isinstance(s, dict) else s for s in raw
    ]
    spans = validate_spans(text, tuples)
    return Entry(Example(text, spans, meta), split, gold="spans" in item)


def check_meta_keys(meta: dict) -> None:
    """Refuse meta keys that an export writes itself (the record's text, its spans, nerloop's
    split and source): the export would drop them."""
    reserved = [key for key in RESERVED_META_KEYS if key in meta]
    if reserved:
        raise ValueError(
            f"meta key {reserved[0]!r} is taken by the export formats (reserved: "
            f"{', '.join(RESERVED_META_KEYS)}): rename it"
        )


def entries_from_upload(
    upload,
    fmt: str | None,
    scheme: str | None,
    split: str | None,
    gold: str = "auto",
    strict: bool = True,
) -> list[Entry]:
    """Entries from an uploaded file (a Django UploadedFile), its format named or guessed.

    ``gold``: ``auto`` makes documents with spans (and every CoNLL sentence, whose tags are
    an answer even when all O) validated annotations; ``all`` does so for every document;
    ``none`` imports the text only, dropping the spans (an unlabelled pool from a gold file).
    A record of a nerloop export (``nerloop_source``) is gold under ``auto`` when a human
    validated it (even with no entity), and text only otherwise (a draft, a model's spans).
    ``split`` puts every document in that split; without it a record of a nerloop export goes
    back to its own split (``nerloop_split``), any other to train.
    ``strict=False`` repairs ill-formed tag sequences (an entity left open) instead of
    refusing the file, as real corpora sometimes need.
    """
    name = getattr(upload, "name", None) or "upload"
    if upload.size > settings.IMPORT_MAX_BYTES:
        raise ImportRejected([Problem(0, f"file is larger than {settings.IMPORT_MAX_BYTES} bytes")])
    try:
        if not fmt:
            upload.seek(0)
            fmt = guess_format(name, head_lines(upload))
        if fmt not in UPLOAD_FORMATS:
            known = ", ".join(UPLOAD_FORMATS)
            raise FormatError(name, None, f"unknown format {fmt!r}; known: {known}")
        upload.seek(0)
        located = iter_located(fmt, _utf8_lines(upload.file), name, scheme, strict=strict)
        entries = [
            replace(_upload_entry(example, split, gold, fmt), source=name, line=line)
            for line, example in located
        ]
    except FormatError as exc:
        problems = [Problem(0, _upload_advice(exc, strict), exc.line)]
        if fmt in LINE_FORMATS and exc.line is not None:
            more, complete = _later_problems(upload, fmt, name, exc.line)
            problems += more
        else:
            complete = True
        raise ImportRejected(problems, name, complete) from None
    if not entries:
        raise ImportRejected([Problem(0, "the file holds no documents")], name)
    return entries


LINE_FORMATS = ("jsonl", "cluener")  # one record a line: a bad line says nothing of the next
LATER_LINES = 20_000  # read on after the first problem for more, at most


def _later_problems(upload, fmt: str, name: str, after: int) -> tuple[list[Problem], bool]:
    """The problems of the lines after line ``after`` of a JSON-lines file, each line read on
    its own, so one upload names a file's mistakes at once instead of one per try.
    ``complete`` is False when the file goes on past LATER_LINES lines more."""
    problems: list[Problem] = []
    upload.seek(0)
    for number, raw in enumerate(upload.file, 1):
        if number <= after:
            continue
        if number > after + LATER_LINES:
            return problems, False
        try:
            for _ in iter_examples(fmt, _utf8_lines([raw]), name):
                pass
        except FormatError as exc:
            problems.append(Problem(0, _upload_advice(exc, True), number))
        if len(problems) >= MAX_PROBLEMS:
            return problems, False
    return problems, True


def _upload_advice(exc: FormatError, strict: bool) -> str:
    if exc.repairable and strict:
        return (
            f"{exc.message}; to repair such sequences instead, upload with strict=false (on the "
            "import page: repair ill-formed CoNLL tags)"
        )
    return exc.message


def _upload_entry(example: Example, split: str | None, gold: str, fmt: str) -> Entry:
    # A file nerloop exported says each record's split and where its spans came from.
    source = example.meta.get(SOURCE_KEY)
    own_split = example.meta.get(SPLIT_KEY)
    if SOURCE_KEY in example.meta or SPLIT_KEY in example.meta:
        meta = {k: v for k, v in example.meta.items() if k not in (SOURCE_KEY, SPLIT_KEY)}
        example = Example(example.text, example.spans, meta)
    split = split or own_split or Document.Split.TRAIN
    if gold == "none" or (gold == "auto" and source is not None and source != "human"):
        # no human answer: the text joins the pool, to be predicted again
        return Entry(Example(example.text, [], example.meta), split, gold=False)
    is_gold = gold == "all" or bool(example.spans) or fmt == "conll" or source == "human"
    return Entry(example, split, gold=is_gold)


def _utf8_lines(binary) -> Iterator[str]:
    """The file's lines decoded one by one, so a byte that is not UTF-8 fails on its own line
    (a decoding reader reads ahead, and would blame the line after the last one it handed out)."""
    for raw in binary:
        yield raw.decode("utf-8")


def check_entries(project: Project, entries: list[Entry], extend_labels: bool) -> list[str]:
    """Check every entry against the project; return the labels to add (``extend_labels``).

    Raises ImportRejected listing each document that is empty, too long, holds what cannot be
    stored (a NUL or an unpaired surrogate, which JSON escapes allow), has an unknown split or
    a label outside the schema (with ``extend_labels``: a label that is no valid name).
    """
    known = set(project.label_names())
    splits = set(Document.Split.values)
    longest = settings.IMPORT_MAX_CHARS
    new_labels: list[str] = []
    problems: list[Problem] = []
    for index, entry in enumerate(entries, 1):
        text = entry.example.text
        if not text.strip():
            problems.append(Problem(index, "text is empty or only whitespace", entry.line))
        elif len(text) > longest:
            problems.append(
                Problem(
                    index, f"text has {len(text)} characters; the limit is {longest}", entry.line
                )
            )
        if unfit := string_problem(text):
            problems.append(Problem(index, f"text {unfit}", entry.line))
        if unfit := unstorable(entry.example.meta, "meta"):
            problems.append(Problem(index, unfit, entry.line))
        if not isinstance(entry.split, str) or entry.split not in splits:
            problems.append(
                Problem(index, f"split {entry.split!r} is not one of train, eval", entry.line)
            )
        for span in entry.example.spans:
            if span.label in known:
                continue
            if extend_labels and valid_label_name(span.label) and not unstorable(span.label):
                known.add(span.label)
                new_labels.append(span.label)
                continue
            why = "is not a valid label name" if extend_labels else "is not in the schema"
            problems.append(
                Problem(index, f"span {tuple(span)!r}: label {span.label!r} {why}", entry.line)
            )
            break
        if len(problems) > MAX_PROBLEMS * 5:  # enough to act on; stop checking
            raise ImportRejected(problems, entries[0].source, complete=index == len(entries))
    if problems:
        raise ImportRejected(problems, entries[0].source)
    return new_labels


def _text_key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def count_duplicates(project: Project, entries: list[Entry]) -> tuple[list[bool], int]:
    """Which entries repeat a text the project already has or an earlier entry has (a file
    that holds a sentence twice), and how many of those have it in the other split (a text in
    both train and eval is scored on what the model trained on)."""
    splits: dict[bytes, set[str]] = {}
    rows = project.documents.values_list("text", "split").iterator(chunk_size=5000)
    for text, split in rows:
        splits.setdefault(_text_key(text), set()).add(split)
    repeated = []
    other_split = 0
    for entry in entries:
        key = _text_key(entry.example.text)
        seen = splits.get(key)
        repeated.append(seen is not None)
        other_split += bool(seen) and bool(seen - {entry.split})
        if isinstance(entry.split, str):  # an invalid one is refused later, by name
            splits.setdefault(key, set()).add(entry.split)
    return repeated, other_split


def _without_unknown_labels(entries: list[Entry], labels: list[str]) -> tuple[list[Entry], int]:
    """The entries with only the spans of ``labels`` (a corpus imported for some of its
    types), and how many spans were left out."""
    known = set(labels)
    kept: list[Entry] = []
    dropped = 0
    for entry in entries:
        spans = [span for span in entry.example.spans if span.label in known]
        dropped += len(entry.example.spans) - len(spans)
        example = entry.example
        kept.append(replace(entry, example=Example(example.text, spans, example.meta)))
    return kept, dropped


def import_entries(
    project: Project,
    entries: list[Entry],
    extend_labels: bool = False,
    return_ids=True,
    skip_duplicates: bool = False,
    drop_unknown_labels: bool = False,
) -> ImportResult:
    """Store checked entries in one transaction and queue their prediction after commit.
    Imported answers have no annotator: they are nobody's work today (progress, activity),
    whoever uploaded the file. Entries whose text the project already has are counted (and
    not stored with ``skip_duplicates``): a file uploaded twice, or the eval file uploaded
    to train, would otherwise double documents or score the model on its training data."""
    from .predicting import enqueue_predictions

    with transaction.atomic():
        # checked against the labels as stored now, under the project's lock: a label removed
        # or added meanwhile by another request is seen, and ours are added to those
        locked = project.locked()
        repeated, other_split = count_duplicates(locked, entries)
        result = ImportResult(duplicates=sum(repeated), duplicates_other_split=other_split)
        if skip_duplicates and result.duplicates:
            entries = [entry for entry, seen in zip(entries, repeated, strict=True) if not seen]
            result.skipped = result.duplicates
        if drop_unknown_labels and not extend_labels:
            entries, result.spans_dropped = _without_unknown_labels(entries, locked.label_names())
        result.labels_added = check_entries(locked, entries, extend_labels)
        result.eval_unanswered = sum(
            1 for entry in entries if entry.split == Document.Split.EVAL and not entry.gold
        )
        new_labels = result.labels_added
        ensure_broker()
        if new_labels:
            locked.labels = normalize_labels(locked.labels + [{"name": n} for n in new_labels])
            locked.save(update_fields=["labels"])
        project.labels = locked.labels
        postgres = connection.vendor == "postgresql"
        store = _copy_chunk if postgres else _orm_chunk
        if postgres and len(entries) >= ANALYZE_AFTER:
            transaction.on_commit(_analyze)
        for chunk in _chunks(entries, BATCH):
            ids, annotated = store(project, chunk)
            enqueue_predictions(project.pk, ids)
            result.documents += len(ids)
            result.annotated += annotated
            if return_ids:
                result.ids.extend(ids)
    if result.annotated:
        from learner.retraining import retrain_due  # learner builds on annotation

        result.retrain_due = retrain_due(project)
    return result


def _analyze() -> None:
    """Refresh the planner's statistics after a big import: with the table's size unknown
    to it, PostgreSQL would pick plans made for a handful of rows until autovacuum runs."""
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Document._meta.db_table}, {Annotation._meta.db_table}")


def _status(entry: Entry) -> str:
    return Document.Status.VALIDATED if entry.gold else Document.Status.NEW


def _orm_chunk(project: Project, chunk: list[Entry]) -> tuple[list[int], int]:
    documents = Document.objects.bulk_create(
        [
            Document(
                project=project,
                text=entry.example.text,
                meta=entry.example.meta,
                split=entry.split,
                status=_status(entry),
            )
            for entry in chunk
        ]
    )
    annotations = [
        Annotation(
            document=doc,
            annotator=None,
            spans=spans_to_json(entry.example.spans),
            revision=1,
            validated=True,
        )
        for doc, entry in zip(documents, chunk, strict=True)
        if entry.gold
    ]
    Annotation.objects.bulk_create(annotations)
    return [doc.pk for doc in documents], len(annotations)


def _copy_chunk(project: Project, chunk: list[Entry]) -> tuple[list[int], int]:
    """PostgreSQL COPY, several times faster than INSERT for big uploads: ids are drawn
    from the table's sequence first, so annotations and the prediction queue can use them."""
    now = timezone.now()
    documents, annotations = Document._meta.db_table, Annotation._meta.db_table
    with connection.cursor() as cursor, connection.wrap_database_errors:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [documents, len(chunk)],
        )
        ids = [row[0] for row in cursor.fetchall()]
        raw = cursor.cursor  # psycopg's own cursor: Django's wrapper has no COPY
        columns = "id, project_id, text, meta, split, status, priority, created"
        with raw.copy(f"COPY {documents} ({columns}) FROM STDIN") as copy:
            for pk, entry in zip(ids, chunk, strict=True):
                meta = json.dumps(entry.example.meta, ensure_ascii=False)
                row = (pk, project.pk, entry.example.text, meta, entry.split, _status(entry))
                copy.write_row((*row, 0.0, now))
        annotated = 0
        columns = "document_id, annotator_id, spans, revision, validated, created, updated"
        with raw.copy(f"COPY {annotations} ({columns}) FROM STDIN") as copy:
            for pk, entry in zip(ids, chunk, strict=True):
                if entry.gold:
                    spans = json.dumps(spans_to_json(entry.example.spans), ensure_ascii=False)
                    copy.write_row((pk, None, spans, 1, True, now, now))
                    annotated += 1
    return ids, annotated


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
