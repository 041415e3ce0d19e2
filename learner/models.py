"""Model versions and training runs: the learner's records in the database.

A ModelVersion points at a bundle folder (``docs/bundle.md``); its status says whether a
project serves it. ``project`` is empty for the platform-wide default bundle, so predictions
made before a project has a model of its own still name the version that made them.
Progress lives on TrainingRun rows, never in a task result backend.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

from django.conf import settings
from django.db import models, transaction
from django.db.models import Q
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils import timezone
from django.utils.translation import pgettext_lazy


class ModelVersion(models.Model):
    class Status(models.TextChoices):
        CANDIDATE = "candidate", "candidate"
        ACTIVE = "active", "active"
        RETIRED = "retired", "retired"

    project = models.ForeignKey(
        "annotation.Project",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="model_versions",
        help_text="empty for the platform's default bundle",
    )
    version = models.CharField(max_length=100)
    bundle_path = models.CharField(max_length=500)
    arch = models.CharField(max_length=50, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.CANDIDATE)
    # {"f1", "precision", "recall", "per_type": {type: {...}}, ...} as in the bundle's metrics.json
    metrics = models.JSONField(default=dict, blank=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    train_sentences = models.PositiveIntegerField(default=0)
    train_chars = models.PositiveIntegerField(default=0)
    # Annotations updated up to this moment were in the training set; later ones form the
    # feedback pool of the next retrain.
    trained_until = models.DateTimeField(null=True, blank=True)
    gate_reason = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)
    activated = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = pgettext_lazy("model", "model version")
        verbose_name_plural = pgettext_lazy("model", "model versions")
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "version"], name="unique_version"),
            models.UniqueConstraint(
                fields=["bundle_path", "version"],
                condition=Q(project__isnull=True),
                name="unique_default_version",
            ),
            models.UniqueConstraint(
                fields=["project"], condition=Q(status="active"), name="one_active_per_project"
            ),
        ]
        indexes = [models.Index(fields=["project", "status"], name="version_project_status")]

    def __str__(self) -> str:
        return f"{self.version} ({self.status})"

    @property
    def f1(self) -> float | None:
        return self.metrics.get("f1")

    @property
    def folder(self) -> str:
        """The bundle folder to load: ``bundle_path`` when it is there; else, for a path under
        another data folder's ``bundles/`` (a database restored next to a data folder that
        moved), the same place under this platform's BUNDLE_DIR when that exists."""
        path = Path(self.bundle_path)
        if path.is_dir() or "bundles" not in path.parts:
            return self.bundle_path
        parts = path.parts
        below = parts[len(parts) - parts[::-1].index("bundles") :]
        moved = Path(settings.BUNDLE_DIR).joinpath(*below)
        return str(moved) if moved.is_dir() else self.bundle_path

    @classmethod
    def active_for(cls, project) -> ModelVersion | None:
        return cls.objects.filter(project=project, status=cls.Status.ACTIVE).first()

    def activate(self) -> None:
        """Make this the project's served version; the previous active one is retired."""
        with transaction.atomic():
            if self.project_id is not None:
                ModelVersion.objects.filter(
                    project_id=self.project_id, status=self.Status.ACTIVE
                ).exclude(pk=self.pk).update(status=self.Status.RETIRED)
            self.status = self.Status.ACTIVE
            self.activated = timezone.now()
            self.gate_reason = self.gate_reason or ""
            self.save(update_fields=["status", "activated", "gate_reason"])

    def keep_as_candidate(self, reason: str) -> None:
        self.status = self.Status.CANDIDATE
        self.gate_reason = reason
        self.save(update_fields=["status", "gate_reason"])


class TrainingRun(models.Model):
    class Trigger(models.TextChoices):
        MANUAL = "manual", "manual"
        THRESHOLD = "threshold", "threshold"

    class State(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        SUCCEEDED = "succeeded", "succeeded"
        FAILED = "failed", "failed"

    BUSY = (State.QUEUED, State.RUNNING)

    project = models.ForeignKey(
        "annotation.Project", on_delete=models.CASCADE, related_name="training_runs"
    )
    trigger = models.CharField(max_length=20, choices=Trigger.choices, default=Trigger.MANUAL)
    state = models.CharField(max_length=20, choices=State.choices, default=State.QUEUED)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    # Touched as the run makes progress; a running run whose heartbeat stopped lost its worker.
    heartbeat = models.DateTimeField(null=True, blank=True)
    # "host:pid" of the process running it: on that host, a dead pid means a lost run at once
    worker = models.CharField(max_length=200, blank=True)
    log = models.TextField(blank=True)
    error = models.TextField(blank=True)
    error_code = models.CharField(max_length=10, blank=True)
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )

    class Meta:
        verbose_name = pgettext_lazy("model", "training run")
        verbose_name_plural = pgettext_lazy("model", "training runs")
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project"],
                condition=Q(state__in=["queued", "running"]),
                name="one_busy_run_per_project",
            )
        ]

    def __str__(self) -> str:
        return f"run {self.pk} of project {self.project_id}: {self.state}"

    @property
    def duration(self) -> float | None:
        if self.started and self.finished:
            return (self.finished - self.started).total_seconds()
        return None

    def start(self) -> bool:
        """Move queued -> running with a conditional UPDATE; False if another worker has it."""
        now = timezone.now()
        worker = f"{socket.gethostname()}:{os.getpid()}"
        won = TrainingRun.objects.filter(pk=self.pk, state=self.State.QUEUED).update(
            state=self.State.RUNNING, started=now, worker=worker
        )
        if won:
            self.state, self.started, self.worker = self.State.RUNNING, now, worker
        return bool(won)

    def worker_gone(self) -> bool:
        """Whether the process that ran this run is known to be dead: it ran on this host and
        its pid is gone (killed, out of memory). False when it cannot be told from here."""
        host, _, pid = self.worker.rpartition(":")
        if self.state != self.State.RUNNING or host != socket.gethostname() or not pid.isdigit():
            return False
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # alive, someone else's
            return False
        return False

    def append_log(self, line: str) -> None:
        self.log = f"{self.log}{line.rstrip()}\n"
        self.save(update_fields=["log"])

    def succeed(self, model_version: ModelVersion | None) -> None:
        self.state, self.finished = self.State.SUCCEEDED, timezone.now()
        self.model_version = model_version
        self.save(update_fields=["state", "finished", "model_version"])

    def cancel(self, user) -> bool:
        """End a queued or running run as failed (E303, naming who cancelled it); a running
        one's worker stops at its next log line or before it records a version. False when
        the run had already ended."""
        note = f"cancelled by {user.get_username()}"
        ended = TrainingRun.objects.filter(pk=self.pk, state__in=self.BUSY).update(
            state=self.State.FAILED, finished=timezone.now(), error=note, error_code="E303"
        )
        self.refresh_from_db()
        return bool(ended)

    def still_running(self) -> bool:
        return TrainingRun.objects.filter(pk=self.pk, state=self.State.RUNNING).exists()

    def fail(self, error: str, code: str = "E301") -> None:
        self.state, self.finished = self.State.FAILED, timezone.now()
        self.error, self.error_code = error, code
        self.save(update_fields=["state", "finished", "error", "error_code"])


@receiver(post_delete, sender=ModelVersion)
def remove_bundle_folder(sender, instance: ModelVersion, **kwargs) -> None:
    """A project's version deleted (Django admin, a script) takes its bundle folder with it,
    once the deletion is committed; the default model's bundle and folders outside the
    platform's bundle folder are never touched."""
    if instance.project_id is None:
        return
    folder = Path(instance.folder).resolve()
    root = Path(settings.BUNDLE_DIR).resolve()
    if folder != root and root in folder.parents:
        transaction.on_commit(lambda: shutil.rmtree(folder, ignore_errors=True))
