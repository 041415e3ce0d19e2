"""Batched pre-annotation of stored documents, run by the ``inference`` workers.

Which model serves a project: its active ModelVersion, or else the platform's default
bundle (recorded as a project-less ModelVersion, so every prediction names its model).
Prediction is idempotent per (document, version): a task that runs twice stores nothing
new the second time.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterable, Iterator
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, F, FloatField, Value, When
from django.utils import timezone

from learner.models import ModelVersion

from .models import Document, Prediction, Project

log = logging.getLogger(__name__)

TASK_CHUNK = 256  # documents per enqueued task
BATCH = 256  # documents per engine call and database write (the engine batches inside)
# Besides the serving version's, the answers of the project's newest versions are kept: a
# rollback to one of them reuses its answers instead of running the model over the pool again.
KEEP_VERSIONS = 2
PRUNE_CHUNK = 10_000  # predictions deleted per statement


def default_bundle_for(project: Project):
    """The platform's default bundle, if it may serve ``project``: every entity type it
    predicts is one of the project's labels. Raises ModelNotReady otherwise, as when there is
    no default bundle: pre-annotations with labels the project does not have would only be in
    the annotators' way, and the uncertainty of a model of other types means nothing here."""
    from inference import registry
    from inference.engine import ModelNotReady

    bundle = registry.default()
    foreign = sorted(set(bundle.info.entity_types) - set(project.label_names()))
    if foreign:
        raise ModelNotReady(
            f"the default model predicts types that project {project.pk} does not have "
            f"({', '.join(foreign)}); the project's first trained model will serve it"
        )
    return bundle


def default_version(project: Project | None = None) -> ModelVersion:
    """The ModelVersion row for settings.DEFAULT_BUNDLE, created on first use. With
    ``project``: only when the bundle may serve it (``default_bundle_for``)."""
    from inference import registry

    bundle = registry.default() if project is None else default_bundle_for(project)
    version, _ = ModelVersion.objects.get_or_create(
        project=None,
        bundle_path=str(settings.DEFAULT_BUNDLE),
        version=bundle.version,
        defaults={
            "status": ModelVersion.Status.ACTIVE,
            "metrics": bundle.info.metrics,
            "arch": str(bundle.info.config.get("arch", "")),
        },
    )
    return version


def serving_version(project: Project) -> ModelVersion:
    """The version that answers for ``project``: its active one, else the default bundle when
    its entity types fit the project. Raises ModelNotReady when neither can."""
    return ModelVersion.active_for(project) or default_version(project)


def load_bundle(version: ModelVersion):
    from inference import registry

    return registry.get(version.folder)


def serving_bundle(project: Project):
    """The loaded bundle answering for ``project`` (no database write, for /predict).

    Through ``inference.hotswap``: the active version is looked up at most once per
    ``ACTIVE_MODEL_TTL_MS``, and a newly activated bundle is loaded beside the old one, which
    keeps answering until the new one is ready."""
    from inference.hotswap import active_bundles

    def active_path() -> str | None:
        active = ModelVersion.active_for(project)
        if active is not None:
            return active.folder
        default_bundle_for(project)  # raises ModelNotReady when the default does not fit
        return None  # the default bundle

    return active_bundles.bundle_for((project.pk, project.created), active_path)


def enqueue_predictions(project_id: int, document_ids: list[int]) -> int:
    """Queue prediction of ``document_ids`` in chunks once the current transaction commits.

    Callers that just wrote the documents call ``nerloop.tasks.ensure_broker`` first, inside
    their transaction, so a down broker rolls the write back instead of stranding it.
    """
    from .tasks import predict_documents

    chunks = 0
    for chunk in _chunks(list(document_ids), TASK_CHUNK):
        transaction.on_commit(partial(predict_documents.delay, project_id, chunk))
        chunks += 1
    return chunks


def enqueue_unpredicted(project: Project, older_than: timedelta | None = None) -> int:
    """Queue every document of ``project`` that no model has predicted yet."""
    documents = Document.objects.filter(project=project, predicted_by__isnull=True)
    if older_than is not None:
        documents = documents.filter(created__lt=timezone.now() - older_than)
    ids = list(documents.order_by("id").values_list("id", flat=True))
    return enqueue_predictions(project.pk, ids) if ids else 0


def predict_documents(project_id: int, document_ids: Iterable[int], batch: int = BATCH) -> int:
    """Predict the listed documents of a project not yet predicted by its serving version.

    Returns how many predictions were stored. Documents deleted meanwhile are skipped.
    """
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return 0
    version = serving_version(project)
    bundle = load_bundle(version)
    ids = list(document_ids)
    done = Prediction.objects.filter(model_version=version, document_id__in=ids)
    # Predicted by this version before (a rollback to it): its answers stand, and become the
    # documents' current ones again, uncertainty included, without running the model.
    again = done.exclude(document__predicted_by=version).values_list("document_id", "mean_entropy")
    for group in _chunks(list(again), batch):
        with transaction.atomic():
            mark_predicted(version, group, project.pk)
    documents = list(
        Document.objects.filter(project=project, pk__in=ids)
        .exclude(pk__in=done.values("document_id"))
        .only("id", "text")
        .order_by("id")
    )
    stored = 0
    for group in _chunks(documents, batch):
        answers = bundle.predict([doc.text for doc in group])
        stored += store_predictions(version, group, answers, project.pk)
    return stored


def store_predictions(
    version: ModelVersion, documents: list[Document], answers, project_id: int
) -> int:
    """Write one Prediction per document and denormalise its uncertainty onto the document.
    Documents deleted while the model ran (or their whole project) are skipped."""
    rows = []
    for doc, answer in zip(documents, answers, strict=True):
        rows.append(
            Prediction(
                document=doc,
                model_version=version,
                spans=[
                    {"start": e.start, "end": e.end, "label": e.label, "score": round(e.score, 4)}
                    for e in answer.entities
                ],
                mean_entropy=answer.uncertainty["mean_entropy"],
                max_entropy=answer.uncertainty["max_entropy"],
                least_confidence=answer.uncertainty["least_confidence"],
                mnlp=answer.uncertainty["mnlp"],
                embedding=Prediction.pack(answer.embedding),
            )
        )
    with transaction.atomic():
        # the documents still there, locked until commit: one deleted meanwhile is skipped,
        # and one deleted from now on waits, then takes its prediction with it
        alive = set(
            Document.objects.select_for_update()
            .filter(pk__in=[row.document.pk for row in rows])
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        rows = [row for row in rows if row.document.pk in alive]
        if rows:
            insert_predictions(rows)
            scores = [(row.document.pk, row.mean_entropy) for row in rows]
            mark_predicted(version, scores, project_id)
    return len(rows)


def insert_predictions(rows: list[Prediction]) -> None:
    """PostgreSQL: COPY (a few times faster than a 256-row INSERT). Should another task have
    stored some of these meanwhile (a redelivered message), the unique constraint stops the
    COPY and an INSERT that skips the existing rows takes its place."""
    if connection.vendor == "postgresql":
        try:
            with transaction.atomic():
                _copy_predictions(rows)
            return
        except IntegrityError:
            log.info("some predictions existed already; inserting the rest")
    Prediction.objects.bulk_create(rows, ignore_conflicts=True)


def _copy_predictions(rows: list[Prediction]) -> None:
    now = timezone.now()
    columns = (
        "document_id, model_version_id, spans, mean_entropy, max_entropy, least_confidence,"
        " mnlp, embedding, created"
    )
    table = Prediction._meta.db_table
    with (
        connection.cursor() as cursor,
        connection.wrap_database_errors,
        cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(
                (
                    row.document.pk,
                    row.model_version_id,
                    json.dumps(row.spans, ensure_ascii=False),
                    row.mean_entropy,
                    row.max_entropy,
                    row.least_confidence,
                    row.mnlp,
                    row.embedding,
                    now,
                )
            )


def prune_predictions(project: Project) -> int:
    """Delete the answers no document shows any more: predictions by versions other than the
    serving one and the project's KEEP_VERSIONS newest, of documents a later version has
    predicted since. Without this every retrain adds a row per open document (about 80 MB per
    retrain at 64,000 documents, embeddings included). Returns how many were deleted."""
    from inference.engine import ModelNotReady

    keep = set(
        ModelVersion.objects.filter(project=project)
        .order_by("-id")
        .values_list("pk", flat=True)[:KEEP_VERSIONS]
    )
    with contextlib.suppress(ModelNotReady):  # no model serves: keep only the newest
        keep.add(serving_version(project).pk)
    stale = (
        Prediction.objects.filter(document__project=project, document__predicted_by__isnull=False)
        .exclude(model_version_id__in=keep)
        .exclude(document__predicted_by=F("model_version"))
    )
    deleted = 0
    while ids := list(stale.values_list("pk", flat=True)[:PRUNE_CHUNK]):
        deleted += Prediction.objects.filter(pk__in=ids).delete()[0]
    if deleted:
        log.info("project %s: %s predictions of older versions deleted", project.pk, deleted)
    return deleted


def still_serves(version: ModelVersion, project_id: int) -> bool:
    """Whether ``version`` still answers for the project: its active version, or the default
    one while the project has none."""
    active = (
        ModelVersion.objects.filter(project_id=project_id, status=ModelVersion.Status.ACTIVE)
        .values_list("pk", flat=True)
        .first()
    )
    return active == version.pk if version.project_id is not None else active is None


def mark_predicted(version: ModelVersion, scores: list[tuple[int, float]], project_id: int) -> None:
    """One UPDATE for the batch (each row rewritten once): the uncertainty per id, the
    version, and new -> predicted decided in SQL, so a status that a submission set meanwhile
    stays. PostgreSQL joins the values as arrays; elsewhere a CASE does the same, slower.

    Nothing is marked when ``version`` no longer serves the project (an admin activated
    another one while this batch was being predicted): its predictions stay stored, and the
    documents keep the answers of the version that serves, which re-prediction brings."""
    if not scores or not still_serves(version, project_id):
        return
    ids = [pk for pk, _ in scores]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {Document._meta.db_table} AS d SET uncertainty = v.u,"
                " predicted_by_id = %s,"
                " status = CASE WHEN d.status = %s THEN %s ELSE d.status END"
                " FROM unnest(%s::bigint[], %s::double precision[]) AS v(id, u)"
                " WHERE d.id = v.id",
                [version.pk, Document.Status.NEW, Document.Status.PREDICTED, ids,
                 [score for _, score in scores]],
            )  # fmt: skip
        return
    uncertainty = Case(
        *[When(pk=pk, then=Value(score)) for pk, score in scores], output_field=FloatField()
    )
    status = Case(
        When(status=Document.Status.NEW, then=Value(Document.Status.PREDICTED)),
        default=F("status"),
    )
    Document.objects.filter(pk__in=ids).update(
        uncertainty=uncertainty, predicted_by=version, status=status
    )


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def sweep_unpredicted(grace: timedelta = timedelta(minutes=30)) -> int:
    """Re-queue documents left unpredicted (a task lost with its worker, a model not ready).

    ``grace`` leaves alone documents still waiting behind a long import in the queue; a
    document queued twice costs the second task one query (it is skipped as predicted).
    A project no model can serve yet is left alone: its tasks would do nothing, every ten
    minutes, ahead of real work in the queue (30,000 such documents held it for minutes), and
    its first promotion predicts the whole pool anyway."""
    from inference.engine import ModelNotReady

    queued = 0
    for project in Project.objects.filter(documents__predicted_by__isnull=True).distinct():
        try:
            serving_version(project)
        except ModelNotReady:
            continue
        queued += enqueue_unpredicted(project, older_than=grace)
    if queued:
        log.info("re-queued %d prediction chunks", queued)
    return queued
