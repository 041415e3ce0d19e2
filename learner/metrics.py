"""What the dashboard draws: per model version, the labels it learned from and its F1.

One query for the versions and one for their runs, however many versions there are (plus
the default model and what keeps the project from training).
"""

from __future__ import annotations

from django.utils.translation import gettext

from annotation.models import Project
from annotation.progress import feedback_pool

from .models import ModelVersion, TrainingRun
from .retraining import new_since_last_run, readiness
from .serializers import TrainingRunSerializer


def version_metrics(version: ModelVersion, run: TrainingRun | None) -> dict:
    metrics = version.metrics or {}
    labels = metrics.get("labels") or {}
    return {
        "id": version.pk,
        "version": version.version,
        "status": version.status,
        "created": version.created,
        "activated": version.activated,
        "parent": version.parent.version if version.parent_id else None,
        "labels": {
            "sentences": labels.get("sentences", version.train_sentences),
            "characters": labels.get("characters", version.train_chars),
            "entities": labels.get("entities", {}),
        },
        "f1": metrics.get("f1"),
        "precision": metrics.get("precision"),
        "recall": metrics.get("recall"),
        "per_type": metrics.get("per_type", {}),
        "served": metrics.get("served"),
        "eval_sentences": metrics.get("eval_sentences"),
        "previous_f1": metrics.get("previous_f1"),
        "compared_with": metrics.get("compared_with"),
        "previous_f1_recorded": bool(metrics.get("previous_f1_recorded")),
        "tolerance": metrics.get("tolerance"),
        "promoted_by_gate": metrics.get("promoted_by_gate"),
        "activated_by_admin_at": metrics.get("activated_by_admin_at"),
        "warm_start": metrics.get("warm_start"),
        "timings": metrics.get("timings", {}),
        "gate_reason": version.gate_reason,
        "bundle_pruned": metrics.get("bundle_pruned"),
        "run": TrainingRunSerializer(run).data if run is not None else None,
    }


def default_model(project: Project) -> ModelVersion | None:
    """The default model's version row when its entity types fit the project, else None."""
    from annotation.predicting import default_version
    from inference.engine import ModelNotReady

    try:
        return default_version(project)
    except ModelNotReady:
        return None


def _compared_with_default(metrics: dict) -> bool:
    return metrics.get("compared_with") == "default" and metrics.get("previous_f1") is not None


def project_metrics(project: Project) -> dict:
    versions = list(
        ModelVersion.objects.filter(project=project).select_related("parent").order_by("id")
    )
    runs = {
        run.model_version_id: run
        for run in TrainingRun.objects.filter(
            project=project, model_version__isnull=False
        ).select_related("model_version")
    }
    busy = (
        TrainingRun.objects.filter(project=project, state__in=TrainingRun.BUSY)
        .select_related("model_version")
        .first()
    )
    active = next((v for v in versions if v.status == ModelVersion.Status.ACTIVE), None)
    default = default_model(project)
    # its F1 on this project's eval set, as the last gate that compared a version with it
    # scored it (its own metrics are on the data it was trained for: 0.985 on the demo's)
    gated = next((v for v in reversed(versions) if _compared_with_default(v.metrics or {})), None)
    return {
        "project": project.pk,
        "active_version": active.version if active else None,
        # the platform's default model where it may serve the project: what serves before the
        # first promotion, and what an admin can go back to
        "default_model": {
            "id": default.pk,
            "version": default.version,
            "f1": (default.metrics or {}).get("f1"),
            "project_f1": gated.metrics["previous_f1"] if gated else None,
            "project_f1_gate": gated.version if gated else None,
            "serving": active is None,
        }
        if default is not None
        else None,
        # why a full pool does not start a run (no eval split yet, ...), None when it can
        "cannot_train": gettext(reason) if (reason := readiness(project)) else None,
        "feedback_pool": feedback_pool(project).count(),
        "new_since_last_run": new_since_last_run(project),
        "retrain_threshold": project.retrain_threshold,
        "busy_run": TrainingRunSerializer(busy).data if busy is not None else None,
        "versions": [version_metrics(v, runs.get(v.pk)) for v in versions],
    }
