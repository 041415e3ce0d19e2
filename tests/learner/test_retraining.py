"""Retraining service: the gate, one run at a time, the threshold trigger, the failure paths,
and (slow) real runs that train, export, gate and promote."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from annotation.models import Annotation, Document
from learner import incremental, retraining
from learner.models import ModelVersion, TrainingRun
from learner.retraining import NotReady, gate, request_training

from .loop_fixtures import add_documents, resume_examples, resume_project

pytestmark = pytest.mark.django_db


@pytest.fixture
def ready_project(datasets_dir):
    project = resume_project(retrain_threshold=5)
    add_documents(project, resume_examples(datasets_dir, limit=8), Document.Split.TRAIN)
    add_documents(project, resume_examples(datasets_dir, "test.char.bmes", limit=4), "eval")
    return project


@pytest.mark.parametrize(
    ("f1", "previous", "tolerance", "promoted"),
    [
        (0.50, None, 0.01, True),
        (0.80, 0.80, 0.0, True),
        (0.795, 0.80, 0.01, True),
        (0.789, 0.80, 0.01, False),
        (0.90, 0.80, -0.2, False),  # a negative tolerance demands a gain
    ],
)
def test_retraining_gate(f1, previous, tolerance, promoted):
    decision, reason = gate(f1, previous, tolerance)
    assert decision is promoted
    assert ("promoted" if promoted else "kept as candidate") in reason
    if previous is not None:
        assert f"{previous:.4f}" in reason
        assert "active" in gate(f1, previous, tolerance)[1]
        assert "default" in gate(f1, previous, tolerance, "default")[1]


def test_retraining_request_refuses_without_eval_annotations(datasets_dir):
    project = resume_project()
    add_documents(project, resume_examples(datasets_dir, limit=3), Document.Split.TRAIN)
    with pytest.raises(NotReady, match="eval split"):
        request_training(project)
    assert not TrainingRun.objects.exists()


def test_retraining_request_refuses_without_train_annotations(datasets_dir):
    project = resume_project()
    add_documents(project, resume_examples(datasets_dir, limit=3), Document.Split.EVAL)
    with pytest.raises(NotReady, match="train split"):
        request_training(project)


def test_retraining_second_request_returns_the_busy_run(ready_project):
    first, created = request_training(ready_project)
    again, created_again = request_training(ready_project, TrainingRun.Trigger.THRESHOLD)
    assert created and not created_again
    assert again.pk == first.pk
    assert TrainingRun.objects.filter(project=ready_project).count() == 1
    first.start()
    running, created = request_training(ready_project)
    assert (running.pk, created) == (first.pk, False)


@pytest.mark.django_db(transaction=True)
def test_retraining_concurrent_requests_make_one_run(ready_project):
    """Eight threads ask at once (each its own database connection): exactly one run."""
    barrier = threading.Barrier(8)
    outcomes, errors = [], []

    def ask():
        try:
            barrier.wait()
            outcomes.append(request_training(ready_project))
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(created for _, created in outcomes) == 1
    assert len({run.pk for run, _ in outcomes}) == 1
    assert TrainingRun.objects.filter(project=ready_project).count() == 1


def test_retraining_run_is_claimed_once(ready_project):
    run, _ = request_training(ready_project)
    assert run.start() is True
    assert TrainingRun.objects.get(pk=run.pk).start() is False
    # a duplicate delivery of the task does nothing to a run another worker holds
    assert retraining.run_training(run.pk) is None
    assert TrainingRun.objects.get(pk=run.pk).state == TrainingRun.State.RUNNING


def test_retraining_threshold_counts_annotations_since_the_last_run(ready_project):
    assert retraining.new_since_last_run(ready_project) == 8
    result = retraining.check_projects()
    run = TrainingRun.objects.get(project=ready_project)
    assert result["started"] == [run.pk]
    assert run.trigger == TrainingRun.Trigger.THRESHOLD
    # busy: no second run
    assert retraining.check_projects()["started"] == []
    run.start()
    run.fail("boom")
    # the same annotations do not trigger again after a failed (or refused) attempt ...
    assert retraining.new_since_last_run(ready_project) == 0
    assert retraining.check_projects()["started"] == []
    # ... but new validated work does, and a failed run never blocks the next one
    Annotation.objects.filter(document__project=ready_project).update(updated=timezone.now())
    assert retraining.new_since_last_run(ready_project) == 8
    assert len(retraining.check_projects()["started"]) == 1


def test_retraining_below_threshold_starts_nothing(ready_project):
    ready_project.retrain_threshold = 9
    ready_project.save()
    assert retraining.check_projects()["started"] == []


def test_retraining_reaps_a_run_whose_worker_died(ready_project):
    run, _ = request_training(ready_project)
    run.start()
    # what a killed worker leaves behind: running, heartbeat long gone
    stale = timezone.now() - retraining.HEARTBEAT_STALE - timedelta(minutes=1)
    TrainingRun.objects.filter(pk=run.pk).update(heartbeat=stale, started=stale)
    assert retraining.reap_stale_runs() == [run.pk]
    run.refresh_from_db()
    assert run.state == TrainingRun.State.FAILED
    assert run.error_code == "E301"
    assert "worker" in run.error
    again, created = request_training(ready_project)
    assert created and again.pk != run.pk


def test_retraining_keeps_a_run_with_a_fresh_heartbeat(ready_project):
    run, _ = request_training(ready_project)
    run.start()
    TrainingRun.objects.filter(pk=run.pk).update(heartbeat=timezone.now())
    assert retraining.reap_stale_runs() == []
    assert TrainingRun.objects.get(pk=run.pk).state == TrainingRun.State.RUNNING


def test_retraining_reaps_a_run_past_the_time_limit(ready_project, settings):
    settings.TRAIN_TIME_LIMIT = 60
    run, _ = request_training(ready_project)
    run.start()
    TrainingRun.objects.filter(pk=run.pk).update(
        started=timezone.now() - timedelta(seconds=200), heartbeat=timezone.now()
    )
    assert retraining.reap_stale_runs() == [run.pk]


def _dead_pid() -> int:
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_retraining_a_message_back_from_a_dead_worker_fails_its_run_at_once(
    ready_project, settings, tmp_path
):
    """acks_late gives a killed worker's message back; the next worker finds the run running
    under a pid that is gone, fails it with the reason and removes its half-written bundle,
    so the next request trains at once instead of 10 minutes later."""
    import socket

    settings.BUNDLE_DIR = tmp_path
    half = tmp_path / f"project-{ready_project.pk}" / "v2-half"
    half.mkdir(parents=True)
    (half / "model.onnx").write_bytes(b"partial")
    run, _ = request_training(ready_project)
    run.start()
    TrainingRun.objects.filter(pk=run.pk).update(
        worker=f"{socket.gethostname()}:{_dead_pid()}", heartbeat=timezone.now()
    )
    assert retraining.run_training(run.pk) is None  # the redelivered message
    run.refresh_from_db()
    assert run.state == TrainingRun.State.FAILED and run.error_code == "E301"
    assert "stopped: killed, out of memory" in run.error and "failed:" in run.log
    assert not half.exists()
    again, created = request_training(ready_project)
    assert created


def test_retraining_leaves_a_run_whose_worker_is_alive_or_elsewhere(ready_project):
    import os
    import socket

    run, _ = request_training(ready_project)
    run.start()
    for worker in (f"{socket.gethostname()}:{os.getpid()}", f"another-host:{_dead_pid()}"):
        TrainingRun.objects.filter(pk=run.pk).update(worker=worker, heartbeat=timezone.now())
        assert retraining.run_training(run.pk) is None
        assert retraining.reap_stale_runs() == []
        assert TrainingRun.objects.get(pk=run.pk).state == TrainingRun.State.RUNNING


def test_retraining_reaps_a_run_whose_worker_pid_is_gone(ready_project):
    import socket

    run, _ = request_training(ready_project)
    run.start()
    TrainingRun.objects.filter(pk=run.pk).update(
        worker=f"{socket.gethostname()}:{_dead_pid()}", heartbeat=timezone.now()
    )
    assert retraining.reap_stale_runs() == [run.pk]


def test_retraining_runs_are_sent_without_the_senders_time_limits(ready_project, monkeypatch):
    """The training worker's own NERLOOP_TRAIN_TIME_LIMIT applies, not the web process's."""
    from learner import tasks

    sent = []
    monkeypatch.setattr(tasks.retrain, "apply_async", lambda *a, **kw: sent.append(kw))
    retraining.send_run(7)
    assert sent == [{"time_limit": None, "soft_time_limit": None}]


def test_retraining_says_when_the_time_limit_stopped_a_run(ready_project, settings, monkeypatch):
    from celery.exceptions import SoftTimeLimitExceeded

    settings.TRAIN_TIME_LIMIT = 45

    def too_long(*args):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(retraining, "_train_and_export", too_long)
    run, _ = request_training(ready_project)
    retraining.run_training(run.pk)
    run.refresh_from_db()
    assert run.state == TrainingRun.State.FAILED
    assert run.error.startswith("stopped by the time limit: NERLOOP_TRAIN_TIME_LIMIT is 45s")


def test_retraining_label_counts():
    from annotation.spans import Example, Span

    examples = [Example("张三在北京", [Span(0, 2, "NAME"), Span(3, 5, "LOC")]), Example("好", [])]
    assert retraining.label_counts(examples) == {
        "sentences": 2,
        "characters": 6,
        "entities": {"LOC": 1, "NAME": 1},
    }


def test_retraining_leaves_out_train_documents_that_repeat_eval_texts(ready_project):
    eval_texts = list(
        Document.objects.filter(project=ready_project, split="eval").values_list("text", flat=True)
    )
    leaked = [doc for doc in Document.objects.filter(project=ready_project, split="train")][:3]
    for doc, text in zip(leaked, eval_texts, strict=False):
        doc.text = text
        doc.save(update_fields=["text"])
    train, held_out, overlap = retraining.training_examples(ready_project, timezone.now())
    assert overlap == 3 and len(train) == 8 - 3 and len(held_out) == 4
    assert not {ex.text for ex in train} & {ex.text for ex in held_out}


# ---- real runs --------------------------------------------------------------------------------


@pytest.fixture
def small_project(datasets_dir, tmp_path):
    project = resume_project(retrain_threshold=10, promotion_tolerance=0.05)
    add_documents(project, resume_examples(datasets_dir, limit=60), Document.Split.TRAIN)
    add_documents(project, resume_examples(datasets_dir, "dev.char.bmes", limit=25), "eval")
    budgets = {"TRAIN_TIME_BUDGET": 25, "RETRAIN_TIME_BUDGET": 25}
    with override_settings(BUNDLE_DIR=tmp_path / "bundles", **budgets):
        yield project


@pytest.mark.slow
def test_retraining_run_trains_exports_and_promotes_then_warm_starts(small_project, monkeypatch):
    project = small_project
    # hold out of these 60 train sentences as a project of thousands would
    monkeypatch.setattr(incremental, "STOP_MIN_TRAIN", 20)
    monkeypatch.setattr(incremental, "STOP_MIN", 2)
    run, _ = request_training(project)
    version_id = retraining.run_training(run.pk)
    run.refresh_from_db()
    assert run.state == TrainingRun.State.SUCCEEDED, run.error
    first = ModelVersion.objects.get(pk=version_id)
    assert run.model_version_id == first.pk
    assert first.status == ModelVersion.Status.ACTIVE
    assert "no active model" in first.gate_reason
    assert first.metrics["promoted_by_gate"] is True
    assert Path(first.bundle_path, "manifest.json").is_file()
    assert Path(first.bundle_path).parent.parent == Path(project_bundle_dir())
    assert (first.train_sentences, first.metrics["labels"]["sentences"]) == (60, 60)
    assert first.train_chars == first.metrics["labels"]["characters"] > 60
    assert set(first.metrics["labels"]["entities"]) <= set(project.label_names())
    assert 0 <= first.metrics["f1"] <= 1 and first.metrics["per_type"]
    timings = first.metrics["timings"]
    assert {"train_seconds", "export_seconds", "total_seconds"} <= set(timings)
    assert first.metrics["warm_start"] is False
    assert "epoch" in run.log and run.heartbeat is not None
    # early stopping chose the epoch on train sentences held out, not on the eval split
    held = first.metrics["stop_sentences"]
    assert 2 <= held <= 15
    assert f"early stopping on {held} train sentences held out of training" in run.log
    assert retraining.feedback_pool(project).count() == 0

    # a second run warm-starts from the active model; a gate demanding +1.0 F1 refuses it
    project.promotion_tolerance = -1.0
    project.save()
    run2, _ = request_training(project)
    second = ModelVersion.objects.get(pk=retraining.run_training(run2.pk))
    first.refresh_from_db()
    assert second.metrics["warm_start"] is True
    # the same texts held out again: the warm start never trained on them
    assert second.metrics["stop_sentences"] == held
    assert second.parent_id == first.pk
    assert second.status == ModelVersion.Status.CANDIDATE
    assert "kept as candidate" in second.gate_reason
    assert second.metrics["promoted_by_gate"] is False
    assert second.metrics["tolerance"] == -1.0
    assert second.metrics["previous_f1"] is not None
    assert first.status == ModelVersion.Status.ACTIVE

    # a label added since: the active model cannot be warm-started, so the run is a first
    # training, with a first training's limits (not the warm start's shorter ones)
    from learner import training

    used = []
    real_train = training.train

    def spy(*args, **kwargs):
        used.append(args[3])
        return real_train(*args, **kwargs)

    monkeypatch.setattr(training, "train", spy)
    project.labels = [*project.labels, {"name": "MISC"}]
    project.save()
    run3, _ = request_training(project)
    third = ModelVersion.objects.get(pk=retraining.run_training(run3.pk))
    assert third.metrics["warm_start"] is False
    assert used[0].epochs == 40 and used[0].patience == 4
    run3.refresh_from_db()
    assert "training from scratch" in run3.log


@pytest.mark.slow
def test_first_model_must_beat_the_default_model_that_serves_the_project(
    small_project, datasets_dir, tmp_path
):
    """Until a project has a version of its own, the platform's default model answers for
    it; a first model replaces it only through the gate. (A default that predicts types a
    project lacks does not serve it: tests/annotation/test_predicting.py.)"""
    run, _ = request_training(small_project)
    first = ModelVersion.objects.get(pk=retraining.run_training(run.pk))
    assert first.metrics["compared_with"] is None  # the default bundle here does not exist

    twin = resume_project(name="twin", retrain_threshold=10, promotion_tolerance=-1.0)
    add_documents(twin, resume_examples(datasets_dir, limit=20), Document.Split.TRAIN)
    add_documents(twin, resume_examples(datasets_dir, "dev.char.bmes", limit=25), "eval")
    with override_settings(DEFAULT_BUNDLE=first.bundle_path):
        run, _ = request_training(twin)
        version = ModelVersion.objects.get(pk=retraining.run_training(run.pk))
    assert version.status == ModelVersion.Status.CANDIDATE  # -1.0 tolerance: must gain 1.0
    assert version.metrics["compared_with"] == "default"
    assert version.metrics["previous_f1"] == pytest.approx(first.metrics["f1"], abs=1e-9)
    assert "below the default model's" in version.gate_reason
    assert ModelVersion.active_for(twin) is None


@pytest.mark.slow
def test_an_active_model_whose_bundle_is_gone_is_compared_by_its_recorded_f1(small_project):
    """A bundle that cannot be scored now (a restore that lost it) no longer lets any new
    model through for want of a comparison: its F1 as recorded stands in."""
    project = small_project
    lost = ModelVersion.objects.create(
        project=project, version="lost", bundle_path="/nowhere/bundles/x", metrics={"f1": 0.999}
    )
    lost.activate()
    run, _ = request_training(project)
    version = ModelVersion.objects.get(pk=retraining.run_training(run.pk))
    assert version.status == ModelVersion.Status.CANDIDATE
    assert version.metrics["previous_f1"] == 0.999 and version.metrics["previous_f1_recorded"]
    assert "recorded F1" in version.gate_reason
    assert ModelVersion.active_for(project) == lost


def test_gate_says_when_it_compares_with_a_recorded_f1():
    promote, reason = gate(0.7, 0.8, 0.01, "active", recorded=True)
    assert not promote and "its recorded F1 (its bundle could not be scored now)" in reason


def test_a_bundle_path_of_a_moved_data_folder_is_found_under_this_one(tmp_path, settings):
    settings.BUNDLE_DIR = tmp_path / "new" / "bundles"
    (settings.BUNDLE_DIR / "project-1" / "p1-v1").mkdir(parents=True)
    moved = ModelVersion(version="v", bundle_path="/old/data/bundles/project-1/p1-v1")
    assert moved.folder == str(settings.BUNDLE_DIR / "project-1" / "p1-v1")
    gone = ModelVersion(version="v", bundle_path="/old/data/bundles/project-1/p1-v9")
    assert gone.folder == "/old/data/bundles/project-1/p1-v9"  # missing either way: as stored


def project_bundle_dir():
    from django.conf import settings

    return settings.BUNDLE_DIR


@pytest.mark.slow
def test_retraining_failed_run_leaves_the_active_model(small_project, tmp_path):
    project = small_project
    active = ModelVersion.objects.create(
        project=project, version="hand-made", bundle_path=str(tmp_path / "missing")
    )
    active.activate()
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the bundle folder should go")
    with override_settings(BUNDLE_DIR=blocker, TRAIN_TIME_BUDGET=5):
        run, _ = request_training(project)
        assert retraining.run_training(run.pk) is None
    run.refresh_from_db()
    assert run.state == TrainingRun.State.FAILED
    assert run.error_code == "E301"
    assert "Error" in run.error and run.finished is not None
    active.refresh_from_db()
    assert active.status == ModelVersion.Status.ACTIVE
    assert ModelVersion.objects.filter(project=project).count() == 1
    # the next trigger works
    again, created = request_training(project)
    assert created and again.state == TrainingRun.State.QUEUED


@pytest.mark.slow
@pytest.mark.parametrize("when", ["training", "export"])
def test_a_cancelled_run_stops_and_records_no_version(small_project, monkeypatch, when):
    """Cancelled while it trains (seen at its next log line) or after its last one (seen
    before the version is recorded): no version, no bundle left, the run failed with E303."""
    from django.contrib.auth import get_user_model

    from learner import export, training

    admin = get_user_model().objects.create_user("boss")
    run, _ = request_training(small_project)

    def cancel_then(real):
        def wrapped(*args, **kwargs):
            TrainingRun.objects.get(pk=run.pk).cancel(admin)
            return real(*args, **kwargs)

        return wrapped

    if when == "training":
        monkeypatch.setattr(training, "train", cancel_then(training.train))
    else:
        monkeypatch.setattr(export, "export_bundle", cancel_then(export.export_bundle))
    assert retraining.run_training(run.pk) is None
    run.refresh_from_db()
    assert (run.state, run.error_code, run.error) == ("failed", "E303", "cancelled by boss")
    assert not ModelVersion.objects.filter(project=small_project).exists()
    bundles = Path(project_bundle_dir())
    assert not bundles.exists() or not any(bundles.rglob("manifest.json"))
