"""POST /api/v1/predict with a ``project``: that project's active model, for any member."""

import pytest
from django.test import override_settings

from annotation.models import normalize_labels
from inference import registry
from learner.models import ModelVersion
from tests.base import ROLES, expected
from tests.inference.conftest import build_tiny_bundle

pytestmark = pytest.mark.django_db


@pytest.fixture
def bundles(tmp_path):
    default = build_tiny_bundle(tmp_path / "default", version="tiny-default")
    mine = build_tiny_bundle(tmp_path / "mine", version="tiny-project", seed=5)
    with override_settings(DEFAULT_BUNDLE=str(default)):
        yield default, mine
    registry.unload(default)
    registry.unload(mine)


@pytest.mark.parametrize("role", ROLES)
def test_predict_project_permissions(world, bundles, role):
    ModelVersion.objects.create(
        project=world.project, version="tiny-project", bundle_path=str(bundles[1])
    ).activate()
    body = {"text": "张三在北京。", "project": world.project.pk}
    response = world.api(role).post("/api/v1/predict", body, format="json")
    assert response.status_code == expected(("admin", "annotator", "client"), role, 200)
    if response.status_code == 200:
        assert response.json()["model_version"] == "tiny-project"


def test_predict_project_without_active_model_uses_the_default(world, bundles):
    body = {"texts": ["张三在北京。"], "project": world.project.pk}
    response = world.api("client").post("/api/v1/predict", body, format="json")
    assert response.status_code == 200
    assert response.json()["model_version"] == "tiny-default"


def test_predict_without_project_uses_the_default(world, bundles):
    ModelVersion.objects.create(
        project=world.project, version="tiny-project", bundle_path=str(bundles[1])
    ).activate()
    response = world.api("client").post("/api/v1/predict", {"text": "张三"}, format="json")
    assert response.json()["model_version"] == "tiny-default"


def test_predict_unknown_project_is_not_found(world, bundles):
    body = {"text": "张三", "project": 987654}
    assert world.api("admin").post("/api/v1/predict", body, format="json").status_code == 404


def test_predict_project_whose_types_the_default_lacks_gets_503(world, bundles):
    world.project.labels = normalize_labels(["ORG"])
    world.project.save()
    body = {"texts": ["张三在北京。"], "project": world.project.pk}
    response = world.api("client").post("/api/v1/predict", body, format="json")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "E201"
    assert "PER" in response.json()["error"]["detail"]
