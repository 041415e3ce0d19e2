from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from annotation import progress
from annotation.models import Annotation, normalize_labels
from inference import registry
from learner.models import ModelVersion
from tests.base import ROLES, expected
from tests.inference.conftest import build_tiny_bundle

pytestmark = pytest.mark.django_db


def url(world) -> str:
    return f"/api/v1/projects/{world.project.pk}/progress"


@pytest.mark.parametrize("role", ROLES)
def test_progress_permissions(world, role):
    response = world.api(role).get(url(world))
    assert response.status_code == expected(("admin", "annotator"), role, 200)


def test_progress_counts(world):
    version = ModelVersion.objects.create(
        project=world.project, version="v1", bundle_path="/x", status="active"
    )
    world.document("一")
    world.document("二", status="predicted", predicted_by=version, uncertainty=0.3)
    world.document("三", status="queued", predicted_by=version, uncertainty=0.5, priority=1)
    done = world.document("四", status="validated")
    Annotation.objects.create(document=done, validated=True)
    world.document("五", split="eval", status="validated")
    world.document("别处", project=world.other_project)
    data = world.api("annotator").get(url(world)).json()
    assert data["documents"] == 5
    assert data["by_status"] == {
        "new": 1,
        "predicted": 1,
        "queued": 1,
        "annotated": 0,
        "validated": 2,
    }
    assert data["predicted"] == 2
    assert data["eval"] == 1
    assert data["eval_validated"] == 1
    assert data["unlabelled_pool"] == 3
    assert data["queue"] == 1
    assert data["feedback_pool"] == 1
    assert data["new_since_last_run"] == 1  # what the retraining trigger counts
    assert data["active_model"] == {"id": version.pk, "version": "v1"}


def test_progress_left_for_you_counts_what_the_queue_can_still_give_the_caller(world):
    from annotation.models import Skip

    world.document(
        "一", assignee=world.annotator, assigned_until=timezone.now() + timedelta(minutes=5)
    )
    world.document("二", assignee=world.admin, assigned_until=timezone.now() + timedelta(minutes=5))
    world.document("三", assignee=world.admin, assigned_until=timezone.now() - timedelta(minutes=5))
    skipped = world.document("四")
    Skip.objects.create(document=skipped, user=world.annotator)
    world.document("五", status="validated")
    world.document("六", split="eval")
    data = world.api("annotator").get(url(world)).json()
    # 一 (held by the caller) and 三 (an expired claim); not 二 (held by someone else),
    # 四 (skipped), 五 (done) or 六 (eval)
    assert data["left_for_you"] == 2 and data["unlabelled_pool"] == 4
    # the admin: 二 (their own), 三 and 四
    assert world.api("admin").get(url(world)).json()["left_for_you"] == 3
    assert data["assigned"] == 2  # 一 and 二
    world.admin.delete()  # a deleted user's claim keeps its time, but nobody holds 二 now
    assert world.api("annotator").get(url(world)).json()["assigned"] == 1


def test_progress_feedback_pool_excludes_what_the_active_model_saw(world):
    old = world.document("旧", status="validated")
    Annotation.objects.create(document=old, validated=True)
    ModelVersion.objects.create(
        project=world.project,
        version="v1",
        bundle_path="/x",
        status="active",
        trained_until=timezone.now(),
    )
    new = world.document("新", status="validated")
    Annotation.objects.create(document=new, validated=True)
    draft = world.document("草稿", status="annotated")
    Annotation.objects.create(document=draft, validated=False)
    assert world.api("admin").get(url(world)).json()["feedback_pool"] == 1


def test_progress_done_today_counts_the_callers_validated_annotations_of_today(world):
    midnight = progress.day_start(timezone.localdate())
    for text in ("一", "二"):
        Annotation.submit(world.document(text), world.annotator, [], revision=0)
    Annotation.submit(world.document("草稿"), world.annotator, [], revision=0, validated=False)
    Annotation.submit(world.document("管理员的"), world.admin, [], revision=0)
    Annotation.submit(world.document("别处", project=world.other_project), world.annotator, [], 0)
    old = Annotation.submit(world.document("昨天"), world.annotator, [], revision=0)
    Annotation.objects.filter(pk=old.pk).update(updated=midnight - timedelta(seconds=1))
    assert world.api("annotator").get(url(world)).json()["done_today"] == 2
    assert world.api("admin").get(url(world)).json()["done_today"] == 1


def test_progress_done_today_starts_at_midnight_in_the_server_time_zone(world, settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    midnight = progress.day_start(timezone.localdate())
    assert midnight.utcoffset() == timedelta(hours=8)
    before = Annotation.submit(world.document("前"), world.annotator, [], revision=0)
    after = Annotation.submit(world.document("后"), world.annotator, [], revision=0)
    Annotation.objects.filter(pk=before.pk).update(updated=midnight - timedelta(minutes=1))
    Annotation.objects.filter(pk=after.pk).update(updated=midnight + timedelta(minutes=1))
    assert world.api("annotator").get(url(world)).json()["done_today"] == 1


def test_progress_names_the_model_serving_the_project(world, tmp_path):
    default = build_tiny_bundle(tmp_path / "default", version="tiny-default")
    api = world.api("annotator")
    try:
        with override_settings(DEFAULT_BUNDLE=str(default)):
            serving = api.get(url(world)).json()["serving_model"]
            assert serving["version"] == "tiny-default" and serving["default"] is True
            # A project with types the default model does not fit waits for its own model.
            world.project.labels = normalize_labels(["NAME", "TITLE"])
            world.project.save()
            assert api.get(url(world)).json()["serving_model"] is None
            mine = ModelVersion.objects.create(
                project=world.project, version="v1", bundle_path="/x", status="active"
            )
            serving = api.get(url(world)).json()["serving_model"]
            assert serving == {"id": mine.pk, "version": "v1", "default": False}
    finally:
        registry.unload(default)
