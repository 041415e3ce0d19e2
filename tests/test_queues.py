"""Routing: the bookkeeping tasks have a queue of their own, so a prediction backlog of one
project cannot delay another project's periodic check or re-selection."""

import pytest

from nerloop.celery import app


@pytest.mark.parametrize(
    ("task", "queue"),
    [
        ("annotation.predict_documents", "inference"),
        ("learner.repredict_pool", "inference"),
        ("learner.tasks.retrain", "training"),
        ("learner.check_projects", "control"),
        ("learner.select_batch", "control"),
        ("annotation.sweep_unpredicted", "control"),
    ],
)
def test_tasks_are_routed_to_their_queue(task, queue):
    import annotation.tasks  # noqa: F401  (registers the tasks)
    import learner.tasks  # noqa: F401

    assert task in app.tasks
    assert app.amqp.router.route({}, task)["queue"].name == queue


@pytest.mark.slow
def test_a_control_task_runs_before_a_prediction_backlog_drains(transactional_db):
    """Sixty queued predictions, then a periodic check: a worker on every queue (as `make run`
    and docker-compose start them) runs the check among the first few tasks, not last."""
    from celery.signals import task_prerun

    from nerloop.celery import make_broker_folders
    from tests.base import running_worker, wait_for

    make_broker_folders()
    with app.connection_for_write() as connection:  # what earlier tests left queued
        for queue in ("control", "inference", "training"):
            connection.default_channel.queue_purge(queue)
    started: list[str] = []

    def record(sender=None, **kwargs):
        started.append(sender.name)

    for _ in range(60):  # a project that does not exist: each task is a quick no-op
        app.send_task("annotation.predict_documents", args=[10**9, [1, 2, 3]])
    app.send_task("learner.check_projects")
    task_prerun.connect(record, weak=False)
    try:
        with running_worker():  # started after the backlog was queued
            wait_for(lambda: len(started) >= 61, timeout=120)
    finally:
        task_prerun.disconnect(record)
    assert started.index("learner.check_projects") < 5, started[:10]
