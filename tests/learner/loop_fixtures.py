"""Helpers for the learning-loop tests: projects filled from the shared Resume corpus, with
validated annotations in the train and eval splits, as an import with gold spans makes them."""

from __future__ import annotations

from pathlib import Path

from annotation.formats import read_file
from annotation.models import Annotation, Document, Project, normalize_labels, spans_to_json

RESUME_LABELS = ["CONT", "EDU", "LOC", "NAME", "ORG", "PRO", "RACE", "TITLE"]


def resume_examples(datasets_dir: Path, name: str = "train.char.bmes", limit: int | None = None):
    examples = read_file(datasets_dir / "resume" / name, strict=False)
    examples = [ex for ex in examples if 0 < len(ex.text) <= 120]
    return examples[:limit] if limit else examples


def add_documents(project: Project, examples, split: str, user=None, validated: bool = True):
    """Documents with validated gold annotations (an upload of an annotated file)."""
    documents = Document.objects.bulk_create(
        [
            Document(
                project=project,
                text=ex.text,
                split=split,
                status=Document.Status.VALIDATED if validated else Document.Status.NEW,
            )
            for ex in examples
        ]
    )
    if validated:
        Annotation.objects.bulk_create(
            [
                Annotation(
                    document=doc, annotator=user, spans=spans_to_json(ex.spans), validated=True
                )
                for doc, ex in zip(documents, examples, strict=True)
            ]
        )
    return documents


def resume_project(name: str = "resume", **settings) -> Project:
    return Project.objects.create(name=name, labels=normalize_labels(RESUME_LABELS), **settings)
