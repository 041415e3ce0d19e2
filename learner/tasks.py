"""Celery tasks of the learning loop: thin wrappers that take ids and call one service.

``retrain`` runs on the ``training`` queue (its name matches the ``learner.tasks.*`` route);
re-prediction on the ``inference`` queue with the other predictions; the periodic check and
selection are short and run on the ``control`` queue, so a prediction backlog never delays
them (settings.CELERY_TASK_ROUTES).
The beat schedule of the periodic check is written when beat starts (``beat_init``), so
``make run``, docker-compose and any other beat pick it up with the interval from settings.
"""

from __future__ import annotations

import logging

from celery.signals import beat_init
from django.conf import settings

from nerloop.tasks import nerloop_task

log = logging.getLogger(__name__)

CHECK_TASK = "learner.check_projects"
SCHEDULE_NAME = "nerloop: check feedback pools and start retraining"


@nerloop_task("learner.tasks.retrain", time_limit=settings.TRAIN_TIME_LIMIT)
def retrain(run_id: int) -> int | None:
    """One training run; a duplicate delivery finds the run already claimed and returns."""
    from .retraining import run_training

    return run_training(run_id)


@nerloop_task(CHECK_TASK, time_limit=120)
def check_projects() -> dict:
    """Periodic (beat): start runs at the threshold, settle lost runs, refill empty queues."""
    from annotation.models import Project

    from .reselection import candidate_documents, queue_is_empty
    from .retraining import check_projects as check

    result = check()
    refill = []
    # A project that is training is refilled too: its first run can take minutes, and an
    # empty queue hands out documents by age (a promotion re-selects the queue anyway).
    for project in Project.objects.order_by("id"):
        if queue_is_empty(project) and candidate_documents(project).exists():
            select_batch.delay(project.pk)
            refill.append(project.pk)
    result["selected"] = refill
    return result


@nerloop_task("learner.repredict_pool", time_limit=1800)
def repredict_pool(project_id: int) -> int:
    """Predict every not yet validated document of the project with its serving model, then
    delete the older versions' answers that no document shows any more."""
    from annotation.models import Document, Project
    from annotation.predicting import TASK_CHUNK, prune_predictions
    from annotation.predicting import predict_documents as predict

    ids = list(
        Document.objects.filter(project_id=project_id, status__in=Document.OPEN)
        .order_by("id")
        .values_list("id", flat=True)
    )
    stored = 0
    for start in range(0, len(ids), TASK_CHUNK):
        stored += predict(project_id, ids[start : start + TASK_CHUNK])
    project = Project.objects.filter(pk=project_id).first()
    if project is not None:
        prune_predictions(project)
    return stored


@nerloop_task("learner.select_batch", time_limit=300)
def select_batch(project_id: int) -> list[int]:
    from .reselection import select_batch as select

    return select(project_id)


def ensure_schedule() -> None:
    """Create or update the periodic check in django-celery-beat's tables."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    every, _ = IntervalSchedule.objects.get_or_create(
        every=settings.RETRAIN_CHECK_SECONDS, period=IntervalSchedule.SECONDS
    )
    PeriodicTask.objects.update_or_create(
        name=SCHEDULE_NAME,
        defaults={"task": CHECK_TASK, "interval": every, "enabled": True},
    )


@beat_init.connect
def _schedule_on_beat_start(sender=None, **kwargs) -> None:
    ensure_schedule()
    log.info("beat: %s every %ss", CHECK_TASK, settings.RETRAIN_CHECK_SECONDS)
