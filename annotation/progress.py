"""Where a project stands: counts the dashboard and the queue pages show."""

from __future__ import annotations

from django.db.models import Count, Q
from django.utils import timezone

from learner.models import ModelVersion

from .models import Annotation, Document, Project


def feedback_pool(project: Project):
    """Validated train-split annotations the active model has not been trained on."""
    pool = Annotation.objects.filter(
        document__project=project, document__split=Document.Split.TRAIN, validated=True
    )
    active = ModelVersion.active_for(project)
    if active is not None and active.trained_until is not None:
        pool = pool.filter(updated__gt=active.trained_until)
    return pool


def progress(project: Project) -> dict:
    rows = Document.objects.filter(project=project)
    by_status = dict(rows.values_list("status").annotate(n=Count("id")).order_by())
    totals = rows.aggregate(
        total=Count("id"),
        predicted=Count("id", filter=Q(predicted_by__isnull=False)),
        eval=Count("id", filter=Q(split=Document.Split.EVAL)),
        unlabelled=Count("id", filter=Q(split=Document.Split.TRAIN, status__in=Document.OPEN)),
        assigned=Count("id", filter=Q(assigned_until__gt=timezone.now())),
    )
    active = ModelVersion.active_for(project)
    return {
        "documents": totals["total"],
        "by_status": {status: by_status.get(status, 0) for status in Document.Status.values},
        "predicted": totals["predicted"],
        "eval": totals["eval"],
        "unlabelled_pool": totals["unlabelled"],
        "queue": by_status.get(Document.Status.QUEUED, 0),
        "assigned": totals["assigned"],
        "feedback_pool": feedback_pool(project).count(),
        "retrain_threshold": project.retrain_threshold,
        "active_model": None if active is None else {"id": active.pk, "version": active.version},
    }
