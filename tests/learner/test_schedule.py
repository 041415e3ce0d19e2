"""The periodic retraining check is in beat's database schedule as soon as beat starts."""

import pytest
from celery.signals import beat_init
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler

from learner.tasks import CHECK_TASK, SCHEDULE_NAME, ensure_schedule
from nerloop.celery import app

pytestmark = pytest.mark.django_db


def test_schedule_is_written_when_beat_starts(settings):
    settings.RETRAIN_CHECK_SECONDS = 45
    beat_init.send(sender=None)
    task = PeriodicTask.objects.get(name=SCHEDULE_NAME)
    assert task.task == CHECK_TASK and task.enabled
    assert (task.interval.every, task.interval.period) == (45, "seconds")
    assert CHECK_TASK in app.tasks


def test_schedule_is_idempotent_and_follows_the_setting(settings):
    ensure_schedule()
    ensure_schedule()
    settings.RETRAIN_CHECK_SECONDS = 300
    ensure_schedule()
    tasks = PeriodicTask.objects.filter(task=CHECK_TASK)
    assert tasks.count() == 1
    assert tasks.get().interval.every == 300


def test_schedule_is_what_the_database_scheduler_runs():
    ensure_schedule()
    scheduler = DatabaseScheduler(app=app, lazy=True)
    entries = scheduler.all_as_schedule()
    assert entries[SCHEDULE_NAME].task == CHECK_TASK
