"""GET /versions, POST /versions/{id}/activate (rollback), GET /runs and /runs/{id}."""

import pytest

from learner.models import ModelVersion, TrainingRun
from tests.base import ROLES, expected
from tests.inference.conftest import build_tiny_bundle

pytestmark = pytest.mark.django_db


@pytest.fixture
def versions(world, tmp_path):
    paths = {name: str(build_tiny_bundle(tmp_path / name, version=name)) for name in ("v1", "v2")}
    old = ModelVersion.objects.create(project=world.project, version="v1", bundle_path=paths["v1"])
    old.activate()
    new = ModelVersion.objects.create(project=world.project, version="v2", bundle_path=paths["v2"])
    new.activate()
    foreign = ModelVersion.objects.create(
        project=world.other_project, version="x1", bundle_path="/b/x1"
    )
    return world, old, new, foreign


def activate_url(world, version) -> str:
    return f"/api/v1/projects/{world.project.pk}/versions/{version.pk}/activate"


@pytest.mark.parametrize("role", ROLES)
def test_versions_endpoint_list_permissions(versions, role):
    world, *_ = versions
    response = world.api(role).get(f"/api/v1/projects/{world.project.pk}/versions")
    assert response.status_code == expected(("admin", "annotator"), role, 200)
    if response.status_code == 200:
        names = [v["version"] for v in response.json()["results"]]
        assert names == ["v2", "v1"]


@pytest.mark.parametrize("role", ROLES)
def test_versions_endpoint_activate_permissions(versions, role):
    world, old, new, _ = versions
    response = world.api(role).post(activate_url(world, old))
    assert response.status_code == expected(("admin",), role, 200)
    old.refresh_from_db()
    assert old.status == ("active" if role == "admin" else "retired")


def test_versions_endpoint_rollback_retires_the_current_and_queues_refresh(
    versions, django_capture_on_commit_callbacks
):
    world, old, new, _ = versions
    with django_capture_on_commit_callbacks() as callbacks:
        response = world.api("admin").post(activate_url(world, old))
    assert response.json()["status"] == "active"
    assert "activated by an admin" in response.json()["gate_reason"]
    old.refresh_from_db()
    assert old.metrics["activated_by_admin_at"]  # the dashboard says it in the UI's language
    new.refresh_from_db()
    assert new.status == "retired"
    assert ModelVersion.active_for(world.project) == old
    assert len(callbacks) == 1  # the re-predict -> re-select chain


def test_versions_endpoint_refuses_a_bundle_that_fails_verification(versions):
    from pathlib import Path

    world, old, new, _ = versions
    (Path(old.bundle_path) / "model.int8.onnx").write_bytes(b"changed on disk")
    response = world.api("admin").post(activate_url(world, old))
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "E202"
    assert "model.int8.onnx" in response.json()["error"]["detail"]
    assert ModelVersion.active_for(world.project) == new  # the serving model stays


def test_versions_endpoint_cannot_activate_another_projects_version(versions):
    world, _, new, foreign = versions
    response = world.api("admin").post(activate_url(world, foreign))
    assert response.status_code == 404
    foreign.refresh_from_db()
    assert foreign.status == "candidate"
    assert ModelVersion.active_for(world.project) == new


def test_versions_endpoint_activate_with_broker_down_is_503(versions, broker_down):
    world, old, new, _ = versions
    response = world.api("admin").post(activate_url(world, old))
    assert response.status_code == 503
    assert ModelVersion.active_for(world.project) == new


@pytest.mark.parametrize("role", ROLES)
def test_runs_endpoint_permissions(world, role):
    run = TrainingRun.objects.create(project=world.project)
    run.start()
    run.append_log("epoch 1 ...")
    listing = world.api(role).get(f"/api/v1/projects/{world.project.pk}/runs")
    detail = world.api(role).get(f"/api/v1/projects/{world.project.pk}/runs/{run.pk}")
    assert listing.status_code == expected(("admin", "annotator"), role, 200)
    assert detail.status_code == expected(("admin", "annotator"), role, 200)
    if detail.status_code == 200:
        assert detail.json()["state"] == "running"
        assert "epoch 1" in detail.json()["log"]
        assert "log" not in listing.json()["results"][0]


def test_runs_endpoint_other_projects_run_is_not_found(world):
    foreign = TrainingRun.objects.create(project=world.other_project)
    response = world.api("admin").get(f"/api/v1/projects/{world.project.pk}/runs/{foreign.pk}")
    assert response.status_code == 404


def test_versions_endpoint_goes_back_to_the_default_model(
    versions, default_bundle, django_capture_on_commit_callbacks
):
    """A project version activated by mistake (one the gate refused) is undone by serving the
    default model again, which the metrics endpoint offers while its types fit the project."""
    from annotation.models import Project
    from annotation.predicting import serving_version

    world, old, new, _ = versions
    metrics_url = f"/api/v1/projects/{world.project.pk}/metrics"
    default = world.api("admin").get(metrics_url).json()["default_model"]
    assert default["serving"] is False and default["version"] == "tiny-default"
    with django_capture_on_commit_callbacks() as callbacks:
        response = world.api("admin").post(
            f"/api/v1/projects/{world.project.pk}/versions/{default['id']}/activate"
        )
    assert response.status_code == 200 and response.json()["version"] == "tiny-default"
    assert ModelVersion.active_for(world.project) is None
    assert serving_version(world.project).pk == default["id"]
    new.refresh_from_db()
    assert new.status == "retired" and len(callbacks) == 1
    assert world.api("admin").get(metrics_url).json()["default_model"]["serving"] is True

    # a project whose labels the default model does not predict cannot be sent to it
    other = Project.objects.create(name="其他", labels=[{"name": "药品"}])
    other.add_member(world.admin, "admin")
    refused = world.api("admin").post(
        f"/api/v1/projects/{other.pk}/versions/{default['id']}/activate"
    )
    assert refused.status_code == 404
    assert (
        world.api("admin").get(f"/api/v1/projects/{other.pk}/metrics").json()["default_model"]
        is None
    )


def test_deleting_a_version_removes_its_bundle_folder(
    world, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.BUNDLE_DIR = tmp_path / "bundles"
    folder = settings.BUNDLE_DIR / f"project-{world.project.pk}" / "v1"
    folder.mkdir(parents=True)
    (folder / "model.onnx").write_bytes(b"x")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    kept = ModelVersion.objects.create(
        project=world.project, version="v0", bundle_path=str(outside)
    )
    version = ModelVersion.objects.create(
        project=world.project, version="v1", bundle_path=str(folder)
    )
    with django_capture_on_commit_callbacks(execute=True):
        version.delete()
        kept.delete()
    assert not folder.exists()
    assert outside.exists()  # not the platform's to remove
