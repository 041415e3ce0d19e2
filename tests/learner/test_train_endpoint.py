"""POST /api/v1/projects/{id}/train: admins start a run; a second request gets the busy one."""

import pytest

from annotation.models import Annotation, Document
from learner.models import TrainingRun
from tests.base import ROLES, expected

pytestmark = pytest.mark.django_db


def url(project) -> str:
    return f"/api/v1/projects/{project.pk}/train"


@pytest.fixture
def ready(world):
    """Project A with one validated annotation in each split."""
    for split in (Document.Split.TRAIN, Document.Split.EVAL):
        doc = world.document("张三在北京工作。", split=split, status=Document.Status.VALIDATED)
        Annotation.objects.create(
            document=doc,
            annotator=world.annotator,
            spans=[{"start": 0, "end": 2, "label": "PER"}, {"start": 3, "end": 5, "label": "LOC"}],
            validated=True,
        )
    return world


@pytest.mark.parametrize("role", ROLES)
def test_train_endpoint_permissions(ready, role):
    response = ready.api(role).post(url(ready.project))
    assert response.status_code == expected(("admin",), role, 202)
    runs = TrainingRun.objects.filter(project=ready.project)
    assert runs.count() == (1 if role == "admin" else 0)


def test_train_endpoint_queues_a_run_and_enqueues_its_task(
    ready, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = ready.api("admin").post(url(ready.project))
    assert response.status_code == 202
    body = response.json()
    assert body["created"] is True
    run = TrainingRun.objects.get(pk=body["run"]["id"])
    assert (run.state, run.trigger, run.requested_by) == ("queued", "manual", ready.admin)
    assert body["run"]["state"] == "queued"
    assert len(callbacks) == 1  # retrain.delay(run id), sent only once the run is committed


def test_train_endpoint_second_request_returns_the_running_run(ready):
    first = ready.api("admin").post(url(ready.project)).json()["run"]
    TrainingRun.objects.get(pk=first["id"]).start()
    response = ready.api("admin").post(url(ready.project))
    assert response.status_code == 200
    assert response.json()["created"] is False
    assert response.json()["run"]["id"] == first["id"]
    assert response.json()["run"]["state"] == "running"
    assert TrainingRun.objects.filter(project=ready.project).count() == 1


def test_train_endpoint_other_projects_run_does_not_block(ready):
    TrainingRun.objects.create(project=ready.other_project)
    response = ready.api("admin").post(url(ready.project))
    assert response.status_code == 202


def test_train_endpoint_without_eval_annotations_is_e302(world):
    doc = world.document(split=Document.Split.TRAIN)
    Annotation.objects.create(document=doc, spans=[], validated=True)
    response = world.api("admin").post(url(world.project))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "E302"
    assert "eval split" in error["detail"]
    assert not TrainingRun.objects.exists()


def test_train_endpoint_broker_down_is_503_and_creates_nothing(ready, broker_down):
    response = ready.api("admin").post(url(ready.project))
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "E204"
    assert not TrainingRun.objects.exists()


def test_train_endpoint_get_is_not_allowed(ready):
    assert ready.api("admin").get(url(ready.project)).status_code == 405


def cancel_url(project, run) -> str:
    return f"/api/v1/projects/{project.pk}/runs/{run['id']}/cancel"


@pytest.mark.parametrize("role", ROLES)
def test_cancel_endpoint_permissions(ready, role):
    run = ready.api("admin").post(url(ready.project)).json()["run"]
    response = ready.api(role).post(cancel_url(ready.project, run))
    assert response.status_code == expected(("admin",), role, 200)
    state = TrainingRun.objects.get(pk=run["id"]).state
    assert state == ("failed" if role == "admin" else "queued")


def test_cancel_ends_a_busy_run_and_frees_the_project(ready):
    admin = ready.api("admin")
    run = admin.post(url(ready.project)).json()["run"]
    TrainingRun.objects.get(pk=run["id"]).start()
    response = admin.post(cancel_url(ready.project, run))
    assert response.status_code == 200
    body = response.json()
    assert body["state"] == "failed" and body["error_code"] == "E303"
    stored = TrainingRun.objects.get(pk=run["id"])
    assert stored.error == "cancelled by admin" and stored.finished is not None
    # once ended, cancelling again is a conflict; a new run can start at once
    again = admin.post(cancel_url(ready.project, run))
    assert again.status_code == 409 and again.json()["error"]["code"] == "E304"
    assert admin.post(url(ready.project)).status_code == 202


def test_cancel_a_run_of_another_project_is_404(ready):
    other = TrainingRun.objects.create(project=ready.other_project)
    response = ready.api("admin").post(cancel_url(ready.project, {"id": other.pk}))
    assert response.status_code == 404
    assert TrainingRun.objects.get(pk=other.pk).state == "queued"
