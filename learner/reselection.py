"""Filling a project's review queue with the batch its selection strategy picks.

Reads the stored predictions (uncertainty and embedding of the model that predicted each
document last), runs the strategy from ``learner.selection`` on plain arrays, and marks the
chosen documents ``queued`` with a descending ``priority`` (the queue serves the highest
first). Without any prediction yet, the strategies' cold start clusters the texts instead.
"""

from __future__ import annotations

import logging
import time

import numpy as np
from django.db import transaction
from django.db.models import Case, Count, F, FloatField, Value, When
from django.db.models.functions import Length

from annotation.models import Document, Prediction, Project

from . import selection
from .models import ModelVersion

log = logging.getLogger(__name__)

# Documents an annotator may still be handed that selection may (re)rank.
SELECTABLE = (Document.Status.NEW, Document.Status.PREDICTED, Document.Status.QUEUED)


def candidate_documents(project: Project):
    return Document.objects.filter(
        project=project, split=Document.Split.TRAIN, status__in=SELECTABLE
    )


def _version_for_selection(project: Project, documents) -> int | None:
    """The model whose predictions to compare: the active one when it has predicted any of
    the candidates, else whichever model predicted most of them (the default bundle before a
    project's first training). Mixing models would compare incomparable numbers."""
    active = ModelVersion.active_for(project)
    if active is not None and documents.filter(predicted_by=active).exists():
        return active.pk
    top = (
        documents.filter(predicted_by__isnull=False)
        .values("predicted_by")
        .annotate(n=Count("id"))
        .order_by("-n", "-predicted_by")
        .first()
    )
    return top["predicted_by"] if top else None


def build_pool(project: Project) -> selection.Pool:
    documents = candidate_documents(project)
    version_id = _version_for_selection(project, documents)
    if version_id is None:
        rows = list(documents.order_by("id").values_list("id", "text"))
        return selection.Pool(
            ids=np.array([r[0] for r in rows], dtype=np.int64),
            lengths=np.array([len(r[1]) for r in rows], dtype=np.int64),
            texts=[r[1] for r in rows],
        )
    predictions = (
        Prediction.objects.filter(
            model_version_id=version_id,
            document__in=documents.filter(predicted_by_id=version_id),
        )
        .annotate(length=Length("document__text"))
        .order_by("document_id")
        .values_list(
            "document_id",
            "length",
            "mean_entropy",
            "max_entropy",
            "least_confidence",
            "mnlp",
            "embedding",
        )
    )
    ids, lengths, scores, vectors = [], [], [], []
    for doc_id, length, mean_e, max_e, least, mnlp, embedding in predictions.iterator(
        chunk_size=5000
    ):
        ids.append(doc_id)
        lengths.append(length)
        scores.append(
            {"mean_entropy": mean_e, "max_entropy": max_e, "least_confidence": least, "mnlp": mnlp}
        )
        vectors.append(np.frombuffer(bytes(embedding), dtype="<f4"))
    embeddings = None
    if vectors and all(len(v) == len(vectors[0]) for v in vectors) and len(vectors[0]):
        embeddings = np.stack(vectors)
    return selection.Pool(
        ids=np.array(ids, dtype=np.int64),
        lengths=np.array(lengths, dtype=np.int64),
        uncertainty=selection.uncertainty_arrays(scores),
        embeddings=embeddings,
    )


def distinct_texts(project: Project, pool: selection.Pool) -> selection.Pool:
    """The pool with one candidate per distinct text and none whose text someone already
    answered in the project: a copy teaches the model nothing new (a pool imported twice
    handed an annotator five copies of one sentence in a row)."""
    if len(pool) == 0:
        return pool
    if pool.texts is not None:  # the cold start read them already
        text_of = dict(zip(pool.ids.tolist(), pool.texts, strict=True))
    else:
        rows = candidate_documents(project).values_list("id", "text")
        text_of = dict(rows.iterator(chunk_size=5000))
    answered = set(
        Document.objects.filter(project=project, annotation__isnull=False)
        .values_list("text", flat=True)
        .iterator(chunk_size=5000)
    )
    seen: set[str] = set()
    keep = []
    for index, doc_id in enumerate(pool.ids.tolist()):
        text = text_of.get(doc_id)
        if text is None or text in answered or text in seen:
            continue
        seen.add(text)
        keep.append(index)
    if len(keep) == len(pool):
        return pool
    rows = np.asarray(keep, dtype=np.int64)
    return selection.Pool(
        ids=pool.ids[rows],
        lengths=pool.lengths[rows],
        uncertainty={key: values[rows] for key, values in pool.uncertainty.items()},
        embeddings=None if pool.embeddings is None else pool.embeddings[rows],
        texts=None if pool.texts is None else [pool.texts[i] for i in keep],
    )


def select_batch(project_id: int, seed: int | None = None) -> list[int]:
    """Queue the next batch of ``project``; returns the chosen document ids, best first."""
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return []
    started = time.monotonic()
    pool = distinct_texts(project, build_pool(project))
    strategy = project.selection_strategy
    if strategy not in selection.STRATEGIES:
        log.warning("project %s: unknown strategy %r, using the default", project.pk, strategy)
        strategy = selection.DEFAULT_STRATEGY
    budget = selection.Budget(max(1, project.batch_size))
    rng_seed = seed if seed is not None else int(time.time())
    chosen = [int(i) for i in selection.select(strategy, pool, budget, seed=rng_seed)]
    _mark_queued(project, chosen)
    log.info(
        "project %s: %s queued %d of %d candidates in %.2fs",
        project.pk,
        strategy,
        len(chosen),
        len(pool),
        time.monotonic() - started,
    )
    return chosen


def _mark_queued(project: Project, chosen: list[int]) -> None:
    """The chosen documents become ``queued`` with priorities n..1; the previous batch's
    leftovers go back to ``predicted``/``new`` with priority 0."""
    ranks = {doc_id: float(len(chosen) - rank) for rank, doc_id in enumerate(chosen)}
    with transaction.atomic():
        leftovers = (
            candidate_documents(project)
            .filter(status=Document.Status.QUEUED)
            .exclude(pk__in=chosen)
        )
        leftovers.filter(predicted_by__isnull=False).update(
            status=Document.Status.PREDICTED, priority=0.0
        )
        leftovers.filter(predicted_by__isnull=True).update(status=Document.Status.NEW, priority=0.0)
        candidate_documents(project).exclude(pk__in=chosen).filter(priority__gt=0).update(
            priority=0.0
        )
        if chosen:
            candidate_documents(project).filter(pk__in=chosen).update(
                status=Document.Status.QUEUED,
                priority=Case(
                    *[When(pk=doc_id, then=Value(rank)) for doc_id, rank in ranks.items()],
                    default=F("priority"),
                    output_field=FloatField(),
                ),
            )


def queue_is_empty(project: Project) -> bool:
    return not candidate_documents(project).filter(status=Document.Status.QUEUED).exists()
