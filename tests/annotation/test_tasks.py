"""The task decorator's promises, and the periodic sweep of unpredicted documents."""

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from annotation import predicting, tasks
from annotation.models import Document
from nerloop.celery import app


@pytest.mark.parametrize("task", [tasks.predict_documents, tasks.sweep_unpredicted])
def test_tasks_are_named_late_acked_and_time_limited(task):
    assert task.name.startswith("annotation.")
    assert app.tasks[task.name].name == task.name  # registered with the app
    assert task.acks_late and task.reject_on_worker_lost
    assert task.time_limit and task.soft_time_limit < task.time_limit
    assert task.ignore_result


def test_tasks_go_to_the_inference_queue():
    route = app.amqp.router.route({}, tasks.predict_documents.name)
    assert route["queue"].name == "inference"


@pytest.mark.django_db
def test_tasks_log_their_duration(world, caplog):
    caplog.set_level(logging.INFO, logger="nerloop.tasks")
    result = tasks.predict_documents.apply(args=(999_999, [1])).get()
    assert result == 0
    assert any("annotation.predict_documents ok in" in r.getMessage() for r in caplog.records)


@pytest.mark.django_db
def test_sweep_requeues_only_old_unpredicted_documents(
    world, default_bundle, django_capture_on_commit_callbacks
):
    old = world.document("旧的")
    Document.objects.filter(pk=old.pk).update(created=timezone.now() - timedelta(hours=1))
    world.document("刚导入的")
    sent = []
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert predicting.sweep_unpredicted() == 1
    for callback in callbacks:
        sent.append(callback.args)
    assert sent == [(world.project.pk, [old.pk])]


@pytest.mark.django_db
def test_sweep_leaves_projects_no_model_can_serve_yet(world, tmp_path, settings):
    settings.DEFAULT_BUNDLE = str(tmp_path / "none")  # no default model, no active version
    old = world.document("旧的")
    Document.objects.filter(pk=old.pk).update(created=timezone.now() - timedelta(hours=1))
    assert predicting.sweep_unpredicted() == 0  # nothing queued that could only do nothing
