"""Retraining from the feedback pool: when to start a run, the run itself, the promotion gate.

A project has at most one queued or running TrainingRun (a partial unique constraint; the
request also locks the project row, so a second request gets the busy run back instead of an
error). The run warm-starts from the active model when the label set allows, trains on every
validated train-split annotation (a tenth held out for early stopping, so the eval split never
picks the epoch it then scores), exports a bundle, scores it through the serving engine on
the eval split, and promotes it only if its F1 is not below the active model's (scored on the
same eval set, now) by more than the project's tolerance. Whatever fails marks the run
failed with its error and leaves the active model as it was.

torch is imported only inside the run (``_train_and_export``), never by the web process.
"""

from __future__ import annotations

import logging
import shutil
import time
import traceback
from collections import Counter
from datetime import timedelta
from functools import partial
from pathlib import Path

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext_noop

from annotation.models import Annotation, Document, Project
from annotation.progress import feedback_pool
from annotation.spans import Example, Span
from nerloop.errors import CodedAPIException

from . import incremental
from .models import ModelVersion, TrainingRun

log = logging.getLogger(__name__)

WARM_ARCHITECTURES = ("bilstm_crf", "transformer_crf")
# A running run whose heartbeat is older than this lost its worker (epochs beat more often).
HEARTBEAT_STALE = timedelta(minutes=10)
# A queued run older than this has lost its message (broker restarted): send it again.
REQUEUE_AFTER = timedelta(minutes=10)


class NotReady(CodedAPIException):
    def __init__(self, detail: str):
        super().__init__("E302", detail)


# ---- what there is to learn from ------------------------------------------------------------


def readiness(project: Project) -> str | None:
    """Why the project cannot train now, or None when it can."""
    validated = Annotation.objects.filter(document__project=project, validated=True)
    if not validated.filter(document__split=Document.Split.TRAIN).exists():
        return gettext_noop("no validated annotation in the train split yet")
    if not validated.filter(document__split=Document.Split.EVAL).exists():
        return gettext_noop(
            "no validated annotation in the eval split: a new model could not be evaluated"
        )
    return None


def new_since_last_run(project: Project) -> int:
    """Validated train annotations newer than the last training attempt (or the active model).

    The threshold trigger counts these, not the whole feedback pool: after a candidate was
    refused by the gate (or a run failed) the pool stays full, and retraining on the same data
    every minute would change nothing.
    """
    pool = feedback_pool(project)
    last = TrainingRun.objects.filter(project=project).aggregate(at=Max("created"))["at"]
    return pool.filter(updated__gt=last).count() if last else pool.count()


def training_examples(project: Project, until) -> tuple[list[Example], list[Example], int]:
    """Validated annotations updated up to ``until``, as (train, eval) examples, and how many
    train documents were left out because their text is also in the eval split: a model
    scored on sentences it trained on would look better than it is, and pass the gate."""
    rows = (
        Annotation.objects.filter(document__project=project, validated=True, updated__lte=until)
        .order_by("document_id")
        .values_list("document__text", "spans", "document__split")
    )
    train: list[Example] = []
    held_out: list[Example] = []
    for text, spans, split in rows.iterator(chunk_size=2000):
        example = Example(text, [Span(s["start"], s["end"], s["label"]) for s in spans])
        (held_out if split == Document.Split.EVAL else train).append(example)
    scored = {example.text for example in held_out}
    kept = [example for example in train if example.text not in scored]
    return kept, held_out, len(train) - len(kept)


def label_counts(examples: list[Example]) -> dict:
    """What a model was trained on: sentences, characters and entities per type."""
    entities = Counter(span.label for ex in examples for span in ex.spans)
    return {
        "sentences": len(examples),
        "characters": sum(len(ex.text) for ex in examples),
        "entities": dict(sorted(entities.items())),
    }


# ---- starting a run ------------------------------------------------------------------------


def request_training(
    project: Project, trigger: str = TrainingRun.Trigger.MANUAL, user=None
) -> tuple[TrainingRun, bool]:
    """The project's busy run if there is one (``created`` False), else a new queued run
    whose task is sent once this transaction commits. Raises NotReady (E302)."""
    reason = readiness(project)
    if reason:
        raise NotReady(reason)

    with transaction.atomic():
        # Serialises concurrent requests for one project on PostgreSQL; on SQLite the
        # unique constraint below is what settles a race.
        Project.objects.select_for_update().filter(pk=project.pk).first()
        busy = TrainingRun.objects.filter(project=project, state__in=TrainingRun.BUSY).first()
        if busy is not None:
            return busy, False
        try:
            with transaction.atomic():
                run = TrainingRun.objects.create(
                    project=project, trigger=trigger, requested_by=user
                )
        except IntegrityError:
            busy = TrainingRun.objects.filter(project=project, state__in=TrainingRun.BUSY).first()
            if busy is None:
                raise
            return busy, False
        transaction.on_commit(partial(send_run, run.pk))
    log.info("project %s: training run %s queued (%s)", project.pk, run.pk, trigger)
    return run, True


def check_projects() -> dict:
    """Beat's periodic job: settle lost runs, then start a run for every project whose pool of
    new validated annotations reached its threshold."""
    reaped = reap_stale_runs()
    started = []
    for project in Project.objects.filter(retrain_threshold__gt=0).order_by("id"):
        if not retrain_due(project):
            continue
        run, created = request_training(project, TrainingRun.Trigger.THRESHOLD)
        if created:
            started.append(run.pk)
    return {"started": started, "reaped": reaped}


def retrain_due(project: Project) -> bool:
    """Whether the periodic check starts a run for the project at its next pass: the
    threshold is on and reached, the project can train, and no run is busy."""
    if not project.retrain_threshold:
        return False
    if TrainingRun.objects.filter(project=project, state__in=TrainingRun.BUSY).exists():
        return False
    return new_since_last_run(project) >= project.retrain_threshold and not readiness(project)


def send_run(run_id: int) -> None:
    """Enqueue a run with no time limits in the message: the training worker applies its own
    NERLOOP_TRAIN_TIME_LIMIT (Celery would otherwise carry the sender's, the web process's)."""
    from .tasks import retrain

    retrain.apply_async((run_id,), time_limit=None, soft_time_limit=None)


def fail_lost_run(run: TrainingRun, now=None) -> bool:
    """Mark a running run whose worker is gone as failed (with a clear error, and the line in
    its log), and remove the bundle it left half-written; False if it was not running."""
    now = now or timezone.now()
    error = (
        f"the worker running this job ({run.worker or 'unknown'}) stopped: killed, out of "
        f"memory or past the {settings.TRAIN_TIME_LIMIT}s time limit; the active model is "
        "unchanged"
    )
    lost = TrainingRun.objects.filter(pk=run.pk, state=TrainingRun.State.RUNNING).update(
        state=TrainingRun.State.FAILED, finished=now, error=error, error_code="E301"
    )
    if not lost:
        return False
    run.refresh_from_db()
    run.append_log(f"failed: {error}")
    folder = Path(settings.BUNDLE_DIR) / f"project-{run.project_id}"
    for partial_bundle in folder.glob("*") if folder.is_dir() else ():
        # a bundle folder with no version: what the lost run was writing
        unfinished = partial_bundle.is_dir() and not (partial_bundle / "manifest.json").is_file()
        if unfinished and not ModelVersion.objects.filter(bundle_path=str(partial_bundle)).exists():
            shutil.rmtree(partial_bundle, ignore_errors=True)
    log.warning("training run %s lost its worker: marked failed", run.pk)
    return True


def reap_stale_runs(now=None) -> list[int]:
    """Fail running runs whose worker is gone (no heartbeat, or past the hard time limit) and
    re-send queued runs whose message was lost; return the ids of the runs failed."""

    now = now or timezone.now()
    limit = timedelta(seconds=settings.TRAIN_TIME_LIMIT + 60)
    failed = []
    for run in TrainingRun.objects.filter(state=TrainingRun.State.RUNNING):
        beat = run.heartbeat or run.started or run.created
        stale = now - beat > HEARTBEAT_STALE or (run.started and now - run.started > limit)
        if (stale or run.worker_gone()) and fail_lost_run(run, now):
            failed.append(run.pk)
    stale_queue = TrainingRun.objects.filter(
        state=TrainingRun.State.QUEUED, created__lt=now - REQUEUE_AFTER
    )
    for run_id in stale_queue.values_list("pk", flat=True):
        # start() is a conditional claim, so a duplicate message does nothing
        transaction.on_commit(partial(send_run, run_id))
    return failed


# ---- the run ---------------------------------------------------------------------------------


class RunCancelled(Exception):
    """An admin cancelled the run while it worked (it is already marked failed)."""


class _RunLog:
    """Appends lines to the run's log and beats its heartbeat, one small UPDATE per line;
    raises RunCancelled once an admin has cancelled the run (checked at every line)."""

    def __init__(self, run: TrainingRun):
        self.run = run
        self.started = time.monotonic()

    def __call__(self, line: str) -> None:
        stamp = f"[{time.monotonic() - self.started:7.1f}s] "
        self.run.log = f"{self.run.log}{stamp}{line.rstrip()}\n"
        self.run.heartbeat = timezone.now()
        self.run.save(update_fields=["log", "heartbeat"])
        if not self.run.still_running():
            raise RunCancelled


def run_training(run_id: int) -> int | None:
    """Carry out one queued run; returns the new version's id (None when nothing was done).
    Safe to run twice: only the caller that moves the run from queued to running works."""
    run = TrainingRun.objects.select_related("project").filter(pk=run_id).first()
    if run is None:
        return None
    if not run.start():
        # a message for a running run: the worker that had it died (the message came back,
        # acks_late), or another one has it; fail it now in the first case, not in 10 minutes
        if run.worker_gone():
            fail_lost_run(run)
        return None
    say = _RunLog(run)
    say(f"run {run.pk} ({run.trigger}) started")
    made: list[Path] = []  # the bundle folder, once there is one, to remove on failure
    from threadpoolctl import threadpool_limits

    try:
        with threadpool_limits(limits=settings.TRAIN_THREADS):  # numpy's pools, like torch's
            version, promoted = _train_and_export(run, say, made)
    except RunCancelled:  # already marked failed by whoever cancelled it
        log.info("training run %s cancelled", run.pk)
        _remove_unrecorded(made)
        return None
    except Exception as exc:  # any failure ends the run; the active model is never touched
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        if isinstance(exc, SoftTimeLimitExceeded):
            detail = (
                f"stopped by the time limit: NERLOOP_TRAIN_TIME_LIMIT is "
                f"{settings.TRAIN_TIME_LIMIT}s, and a run is stopped 30s before it to clean up"
            )
        say(f"failed: {detail}")
        log.exception("training run %s failed", run.pk)
        run.heartbeat = timezone.now()
        run.fail(f"{detail}\n\n{traceback.format_exc()}", getattr(exc, "code", "E301"))
        _remove_unrecorded(made)
        return None
    if promoted:
        after_promotion(run.project_id)
    return version.pk


def _remove_unrecorded(folders: list[Path]) -> None:
    """Half-written bundle folders no version records."""
    for folder in folders:
        if not ModelVersion.objects.filter(bundle_path=str(folder)).exists():
            shutil.rmtree(folder, ignore_errors=True)


def _train_and_export(run: TrainingRun, say, made: list[Path]) -> tuple[ModelVersion, bool]:
    from annotation.predicting import serving_version
    from inference.engine import ModelNotReady

    from .export import export_bundle, score_bundle
    from .incremental import oversample, stopping_split
    from .training import TrainedModel, TrainOptions, train, warm_start_fits

    project = run.project
    timings: dict[str, float] = {}
    clock = time.monotonic()
    cutoff = timezone.now()
    train_examples, eval_examples, overlap = training_examples(project, cutoff)
    if overlap:
        say(f"left out {overlap} train documents whose text is in the eval split too")
    if not train_examples or not eval_examples:
        raise NotReady(
            readiness(project) or "every validated train document repeats a text of the eval split"
        )
    timings["load_seconds"] = time.monotonic() - clock
    counts = label_counts(train_examples)
    say(
        f"{counts['sentences']} train sentences ({counts['characters']} characters), "
        f"{len(eval_examples)} eval sentences"
    )

    active = ModelVersion.active_for(project)
    warm = None
    arch = "bilstm_crf"
    if active is not None and active.arch in WARM_ARCHITECTURES:
        if (Path(active.folder) / "model.pt").is_file():
            arch = active.arch
            warm = TrainedModel.load(active.folder)
        else:
            say(f"active version {active.version} has no weights to warm-start from")
    if warm is not None and not warm_start_fits(warm, train_examples, arch, project.label_names()):
        # decided here, not inside train(): a model trained from scratch needs the full limits
        say(
            f"no warm start from {active.version}: the project's labels changed since it was "
            "trained; training from scratch"
        )
        warm = None
    options = TrainOptions(
        epochs=12 if warm else 40,
        patience=2 if warm else 4,
        time_budget=settings.RETRAIN_TIME_BUDGET if warm else settings.TRAIN_TIME_BUDGET,
        seed=13 + run.pk,
        threads=settings.TRAIN_THREADS,
        progress=False,
    )
    # The eval split scores the model and the gate: early stopping must not pick the epoch
    # that scores best on it (a retrain on the same data gained 4 F1 points that way).
    fit, stop = stopping_split(train_examples, seed=project.pk)  # the same texts every run
    if stop:
        say(f"early stopping on {len(stop)} train sentences held out of training")
    else:
        fewer = incremental.STOP_MIN_TRAIN
        say(f"early stopping on the eval split: fewer than {fewer} train sentences")
    clock = time.monotonic()
    trained = train(
        oversample(fit),
        stop or eval_examples,
        arch,
        options,
        warm,
        log=say,
        labels=project.label_names(),
    )
    timings["train_seconds"] = time.monotonic() - clock

    number = ModelVersion.objects.filter(project=project).count() + 1
    name = f"p{project.pk}-v{number}-{cutoff:%Y%m%d%H%M%S}"
    folder = Path(settings.BUNDLE_DIR) / f"project-{project.pk}" / name
    clock = time.monotonic()
    made.append(folder)
    export_bundle(trained, folder, {"eval": eval_examples}, version=name)
    timings["export_seconds"] = time.monotonic() - clock

    metrics = _served_metrics(folder)
    clock = time.monotonic()
    previous = None
    # what serves the project now (an admin may have switched it meanwhile): its active
    # version, else the platform's default model when that fits the project's labels
    try:
        serving = serving_version(project)
    except ModelNotReady:  # no default bundle, or one of other types: nothing to compare with
        serving = None
    against = "default" if serving is not None and serving.project_id is None else "active"
    recorded = False
    if serving is not None:
        try:
            previous = score_bundle(serving.folder, eval_examples, int8=_int8(serving))["f1"]
        except Exception as exc:  # an unloadable serving bundle cannot block a replacement...
            say(f"the {against} version {serving.version} could not be scored: {exc!r}")
            # ... but neither may a worse one pass for lack of a comparison: its F1 as
            # recorded when it was made stands in (an eval set since grown, but its best word)
            previous = serving.f1
            recorded = previous is not None
    timings["gate_seconds"] = time.monotonic() - clock
    timings["queued_seconds"] = (run.started - run.created).total_seconds()
    timings["total_seconds"] = (timezone.now() - run.started).total_seconds()
    metrics.update(
        {
            "labels": counts,
            "eval_sentences": len(eval_examples),
            "stop_sentences": len(stop),  # 0: early stopping used the eval split
            "timings": {k: round(v, 2) for k, v in timings.items()},
            # train() skips the warm start when the label set changed since the active model
            "warm_start": warm is not None and list(warm.tags) == list(trained.tags),
            "epochs": trained.summary.get("epochs"),
            "best_epoch": trained.summary.get("best_epoch"),
            "previous_f1": previous,
            "compared_with": against if previous is not None else None,
            "previous_f1_recorded": recorded,
            "tolerance": project.promotion_tolerance,
        }
    )
    promote, reason = gate(
        metrics["f1"], previous, project.promotion_tolerance, against, recorded=recorded
    )
    metrics["promoted_by_gate"] = promote
    say(reason)
    with transaction.atomic():
        # cancelled since its last log line: no version, and the serving model stays
        running = TrainingRun.objects.select_for_update().filter(
            pk=run.pk, state=TrainingRun.State.RUNNING
        )
        if not list(running.values_list("pk", flat=True)):
            raise RunCancelled
        version = ModelVersion.objects.create(
            project=project,
            version=name,
            bundle_path=str(folder),
            arch=trained.arch,
            metrics=metrics,
            parent=active,
            train_sentences=counts["sentences"],
            train_chars=counts["characters"],
            trained_until=cutoff,
            gate_reason=reason,
        )
        if promote:
            version.activate()
        say(f"version {name}: F1 {metrics['f1']:.4f}, {'active' if promote else 'candidate'}")
        run.succeed(version)  # under the run's lock: a cancel from now on finds it ended
    return version, promote


def _int8(version: ModelVersion) -> bool:
    return bool(settings.SERVE_INT8) and (Path(version.folder) / "model.int8.onnx").is_file()


def _served_metrics(folder: Path) -> dict:
    """The bundle's eval scores for the graph that will serve (INT8 when served INT8)."""
    from inference.bundle import BundleInfo

    headline = dict(BundleInfo.read(folder).metrics)
    fp32 = {k: headline[k] for k in ("f1", "precision", "recall", "per_type") if k in headline}
    int8 = headline.get("int8")
    served = "int8" if settings.SERVE_INT8 and int8 else "fp32"
    chosen = int8 if served == "int8" else fp32
    return {
        "f1": chosen["f1"],
        "precision": chosen["precision"],
        "recall": chosen["recall"],
        "per_type": chosen.get("per_type", {}),
        "served": served,
        "fp32": fp32,
        "int8": int8,
    }


def gate(
    f1: float,
    previous: float | None,
    tolerance: float,
    against: str = "active",
    recorded: bool = False,
) -> tuple[bool, str]:
    """Promote unless the new F1 is below the serving model's by more than ``tolerance``;
    ``against`` names that model: the project's active version, or the default model.
    ``recorded``: ``previous`` is the F1 stored when that model was made, not a score now."""
    if previous is None:
        return True, f"promoted: no active model to compare with (F1 {f1:.4f})"
    where = (
        "its recorded F1 (its bundle could not be scored now)"
        if recorded
        else "on the same eval set"
    )
    if f1 >= previous - tolerance:
        return True, (
            f"promoted: F1 {f1:.4f} vs {against} {previous:.4f} {where} (tolerance {tolerance:.4f})"
        )
    return False, (
        f"kept as candidate: F1 {f1:.4f} is more than {tolerance:.4f} below the {against} "
        f"model's {previous:.4f}, {where}"
    )


# ---- after a version changes -----------------------------------------------------------------


def activate(version: ModelVersion, project: Project) -> ModelVersion:
    """An admin's explicit choice (rollback included): serve ``version`` now, then refresh the
    pool's predictions and the review queue. ``version`` may be the platform's default model
    (no project): the project's own active version is then retired and the default serves it
    again. A bundle that fails verification (a file missing or changed on disk) is refused
    with E202 (409), and the serving model stays: activating it would report a version that
    no process can load."""
    from inference.bundle import BundleError, verify

    try:
        verify(version.folder)
    except BundleError as exc:
        raise CodedAPIException("E202", str(exc), status_code=409) from None
    now = timezone.now()
    with transaction.atomic():
        if version.project_id is None:
            ModelVersion.objects.filter(project=project, status=ModelVersion.Status.ACTIVE).update(
                status=ModelVersion.Status.RETIRED
            )
        else:
            version.activate()
            ModelVersion.objects.filter(pk=version.pk).update(
                gate_reason=f"{version.gate_reason}\nactivated by an admin at {now:%c}"
                if version.gate_reason
                else f"activated by an admin at {now:%c}",
                metrics={**version.metrics, "activated_by_admin_at": now.isoformat()},
            )
        transaction.on_commit(lambda: after_promotion(project.pk))
    version.refresh_from_db()
    return version


def after_promotion(project_id: int) -> None:
    """Re-predict the unlabelled documents with the new active model, then re-select the
    review queue: a Celery chain on the inference queue."""
    from celery import chain
    from kombu.exceptions import OperationalError

    from .tasks import repredict_pool, select_batch

    try:
        chain(repredict_pool.si(project_id), select_batch.si(project_id)).delay()
    except (OperationalError, OSError) as exc:
        # the new model serves anyway; the periodic check refills the queue when it empties
        log.warning(
            "project %s: could not queue re-prediction after promotion: %s", project_id, exc
        )
