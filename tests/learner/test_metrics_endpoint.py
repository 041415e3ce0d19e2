"""GET /api/v1/projects/{id}/metrics: per model version, labels used, F1 and timings."""

import pytest
from django.utils import timezone

from annotation.models import Annotation, Document
from learner.models import ModelVersion, TrainingRun
from tests.base import ROLES, expected

pytestmark = pytest.mark.django_db


def url(project) -> str:
    return f"/api/v1/projects/{project.pk}/metrics"


def version_row(project, name, f1, sentences, parent=None, **extra):
    """A ModelVersion as a finished training run leaves it (see learner/retraining.py)."""
    metrics = {
        "f1": f1,
        "precision": f1,
        "recall": f1,
        "per_type": {
            "PER": {"precision": f1, "recall": f1, "f1": f1, "support": 10},
            "LOC": {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 4},
        },
        "served": "int8",
        "labels": {"sentences": sentences, "characters": 20 * sentences, "entities": {"PER": 9}},
        "eval_sentences": 14,
        "timings": {"train_seconds": 12.5, "export_seconds": 3.0, "total_seconds": 17.0},
        "warm_start": parent is not None,
        "previous_f1": parent.f1 if parent else None,
    }
    version = ModelVersion.objects.create(
        project=project,
        version=name,
        bundle_path=f"/bundles/{name}",
        metrics=metrics,
        parent=parent,
        train_sentences=sentences,
        train_chars=20 * sentences,
        trained_until=timezone.now(),
        **extra,
    )
    run = TrainingRun.objects.create(project=project, trigger="threshold")
    run.start()
    run.succeed(version)
    return version


@pytest.fixture
def history(world):
    first = version_row(world.project, "v1", 0.41, 50)
    first.activate()
    second = version_row(world.project, "v2", 0.62, 120, parent=first)
    second.activate()
    third = version_row(
        world.project, "v3", 0.55, 170, parent=second, gate_reason="kept as candidate: F1 ..."
    )
    version_row(world.other_project, "secret", 0.99, 5)
    return world, (first, second, third)


@pytest.mark.parametrize("role", ROLES)
def test_metrics_endpoint_permissions(history, role):
    world, _ = history
    response = world.api(role).get(url(world.project))
    assert response.status_code == expected(("admin", "annotator"), role, 200)


def test_metrics_endpoint_lists_versions_in_order_with_what_the_dashboard_draws(history):
    world, (first, second, third) = history
    body = world.api("annotator").get(url(world.project)).json()
    assert body["project"] == world.project.pk
    assert body["active_version"] == "v2"
    assert [v["version"] for v in body["versions"]] == ["v1", "v2", "v3"]
    assert [v["status"] for v in body["versions"]] == ["retired", "active", "candidate"]
    assert [v["f1"] for v in body["versions"]] == [0.41, 0.62, 0.55]
    v2 = body["versions"][1]
    assert v2["labels"] == {"sentences": 120, "characters": 2400, "entities": {"PER": 9}}
    assert v2["per_type"]["PER"]["f1"] == 0.62 and v2["per_type"]["LOC"]["support"] == 4
    assert v2["timings"]["train_seconds"] == 12.5
    assert v2["parent"] == "v1" and v2["previous_f1"] == 0.41 and v2["warm_start"] is True
    assert v2["run"]["state"] == "succeeded" and v2["run"]["trigger"] == "threshold"
    assert body["versions"][2]["gate_reason"].startswith("kept as candidate")


def test_metrics_endpoint_does_not_show_other_projects_versions(history):
    world, _ = history
    body = world.api("admin").get(url(world.project)).json()
    assert "secret" not in {v["version"] for v in body["versions"]}
    outsider = world.api("outsider").get(url(world.other_project)).json()
    assert [v["version"] for v in outsider["versions"]] == ["secret"]


def test_metrics_endpoint_reports_the_feedback_pool(world):
    for split in ("train", "train", "eval"):
        doc = world.document(split=split, status=Document.Status.VALIDATED)
        Annotation.objects.create(document=doc, spans=[], validated=True)
    body = world.api("admin").get(url(world.project)).json()
    assert body["feedback_pool"] == 2
    assert body["new_since_last_run"] == 2
    assert body["retrain_threshold"] == world.project.retrain_threshold
    assert body["versions"] == [] and body["active_version"] is None
    assert body["busy_run"] is None


def test_metrics_endpoint_query_count_does_not_grow_with_versions(
    history, django_assert_max_num_queries
):
    world, (_, _, third) = history
    client = world.api("admin")
    with django_assert_max_num_queries(12):
        client.get(url(world.project))
    for index in range(6):
        version_row(world.project, f"extra{index}", 0.5, 10, parent=third)
    with django_assert_max_num_queries(12):
        body = client.get(url(world.project)).json()
    assert len(body["versions"]) == 9


def test_metrics_endpoint_gives_the_default_models_f1_on_the_projects_eval_set(
    world, default_bundle
):
    """Next to "serve the default model again" the number that matters is its score on this
    project's eval set (what the gate measured), not on the data it came with."""
    first = version_row(world.project, "v1", 0.41, 50)
    first.metrics.update(compared_with="default", previous_f1=0.2)
    first.save()
    default = world.api("annotator").get(url(world.project)).json()["default_model"]
    assert default["version"] == "tiny-default"
    assert (default["project_f1"], default["project_f1_gate"]) == (0.2, "v1")
    first.activate()
    second = version_row(world.project, "v2", 0.62, 120, parent=first)  # compared with v1
    second.activate()
    default = world.api("annotator").get(url(world.project)).json()["default_model"]
    assert (default["project_f1"], default["project_f1_gate"], default["serving"]) == (
        0.2,
        "v1",
        False,
    )
