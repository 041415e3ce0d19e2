"""Where a project stands: counts the dashboard and the queue pages show.

Days are calendar days in the server's time zone (``TIME_ZONE``). An annotation counts on
the day it was last submitted by the user it names: the table keeps one annotation per
document, so a document re-annotated by someone else moves to them, and gold spans of an
import count for the user who imported them.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.db.models import Count, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from learner.models import ModelVersion

from .models import Annotation, Document, Project
from .queue import candidates, held_by


def feedback_pool(project: Project):
    """Validated train-split annotations the active model has not been trained on."""
    pool = Annotation.objects.filter(
        document__project=project, document__split=Document.Split.TRAIN, validated=True
    )
    active = ModelVersion.active_for(project)
    if active is not None and active.trained_until is not None:
        pool = pool.filter(updated__gt=active.trained_until)
    return pool


ACTIVITY_DAYS = 30


def day_start(day: date) -> datetime:
    """Midnight at the start of ``day`` in the server's time zone, as an aware datetime."""
    return timezone.make_aware(datetime.combine(day, time.min))


def done_today(project: Project, user) -> int:
    """``user``'s validated annotations in ``project`` last submitted today."""
    return Annotation.objects.filter(
        document__project=project,
        annotator=user,
        validated=True,
        updated__gte=day_start(timezone.localdate()),
    ).count()


def activity(project: Project, only=None, days: int = ACTIVITY_DAYS) -> list[dict]:
    """Validated annotations per annotator per day over the last ``days`` days (today
    included), oldest day first: one aggregate query. ``only``: that user's rows alone."""
    since = day_start(timezone.localdate() - timedelta(days=days - 1))
    rows = Annotation.objects.filter(
        document__project=project, validated=True, annotator__isnull=False, updated__gte=since
    )
    if only is not None:
        rows = rows.filter(annotator=only)
    grouped = (
        rows.annotate(day=TruncDate("updated"))
        .values("day", "annotator__username")
        .annotate(count=Count("id"))
        .order_by("day", "annotator__username")
    )
    return [
        {"annotator": row["annotator__username"], "day": row["day"], "count": row["count"]}
        for row in grouped
    ]


def left_for(project: Project, user) -> int:
    """Documents the queue can still give ``user``: open train documents nobody else holds
    and ``user`` has not skipped, plus the ones ``user`` holds."""
    return candidates(project, user).count() + len(held_by(project, user))


def serving_model(project: Project) -> dict | None:
    """The model answering for the project now, ``{"id", "version", "default"}`` (``default``:
    the platform's default model, while the project has no active version), or None."""
    from inference.engine import ModelNotReady

    from .predicting import serving_version

    try:
        version = serving_version(project)
    except ModelNotReady:
        return None
    return {"id": version.pk, "version": version.version, "default": version.project_id is None}


def new_since_last_run(project: Project) -> int:
    from learner.retraining import new_since_last_run as count  # learner builds on annotation

    return count(project)


def progress(project: Project, user=None) -> dict:
    rows = Document.objects.filter(project=project)
    by_status = dict(rows.values_list("status").annotate(n=Count("id")).order_by())
    totals = rows.aggregate(
        total=Count("id"),
        predicted=Count("id", filter=Q(predicted_by__isnull=False)),
        eval=Count("id", filter=Q(split=Document.Split.EVAL)),
        eval_validated=Count(
            "id", filter=Q(split=Document.Split.EVAL, status=Document.Status.VALIDATED)
        ),
        unlabelled=Count("id", filter=Q(split=Document.Split.TRAIN, status__in=Document.OPEN)),
        # a deleted user's claim keeps its time but no holder: nobody holds that document
        assigned=Count("id", filter=Q(assigned_until__gt=timezone.now(), assignee__isnull=False)),
    )
    active = ModelVersion.active_for(project)
    return {
        "documents": totals["total"],
        "by_status": {status: by_status.get(status, 0) for status in Document.Status.values},
        "predicted": totals["predicted"],
        "eval": totals["eval"],
        "eval_validated": totals["eval_validated"],
        "unlabelled_pool": totals["unlabelled"],
        "queue": by_status.get(Document.Status.QUEUED, 0),
        "assigned": totals["assigned"],
        "feedback_pool": feedback_pool(project).count(),
        "new_since_last_run": new_since_last_run(project),
        "retrain_threshold": project.retrain_threshold,
        "active_model": None if active is None else {"id": active.pk, "version": active.version},
        "serving_model": serving_model(project),
        "done_today": None if user is None else done_today(project, user),
        "left_for_you": None if user is None else left_for(project, user),
    }
