"""Every model of the platform is in the Django admin, and its pages render."""

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from annotation.models import Annotation
from learner.models import ModelVersion, TrainingRun

MODELS = [
    model
    for label in ("annotation", "learner")
    for model in apps.get_app_config(label).get_models()
]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_admin_registers_every_model(model):
    assert admin.site.is_registered(model)


@pytest.mark.django_db
@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_admin_pages_render(world, model):
    doc = world.document()
    Annotation.objects.create(document=doc, spans=[])
    version = ModelVersion.objects.create(project=world.project, version="v1", bundle_path="/x")
    TrainingRun.objects.create(project=world.project, model_version=version)
    world.admin.is_staff = world.admin.is_superuser = True
    world.admin.save()
    client = Client()
    client.force_login(world.admin)
    meta = model._meta
    listing = client.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
    assert listing.status_code == 200
    first = model.objects.first()
    if first is not None:
        change = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[first.pk])
        assert client.get(change).status_code == 200


@pytest.mark.django_db
def test_admin_index_names_the_apps_and_models_in_the_pages_language(world):
    """The settings page sends admins to Django admin for accounts: under Chinese its
    sections and models read in Chinese too, not "ANNOTATION" and "Training runs"."""
    client = _operator(world)
    chinese = client.get(reverse("admin:index")).content.decode()
    for name in ("标注", "学习", "文档", "模型版本", "训练运行"):
        assert name in chinese, name
    assert "Training runs" not in chinese
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"  # the language switch's choice
    english = client.get(reverse("admin:index")).content.decode()
    assert "Training runs" in english and "Model versions" in english


def _operator(world) -> Client:
    world.admin.is_staff = world.admin.is_superuser = True
    world.admin.save()
    client = Client()
    client.force_login(world.admin)
    return client


@pytest.mark.django_db
def test_admin_keeps_a_projects_last_admin_and_releases_what_a_removed_member_held(world):
    from datetime import timedelta

    from django.utils import timezone

    from annotation.models import ProjectMembership

    client = _operator(world)
    held = world.document(
        assignee=world.annotator, assigned_until=timezone.now() + timedelta(minutes=5)
    )
    last_admin = ProjectMembership.objects.get(project=world.project, user=world.admin)
    url = reverse("admin:annotation_projectmembership_delete", args=[last_admin.pk])
    answer = client.post(url, {"post": "yes"}, follow=True)
    assert "项目必须至少保留一名管理员" in answer.content.decode()  # E107, in the page language
    assert "deleted successfully" not in answer.content.decode()
    assert ProjectMembership.objects.filter(pk=last_admin.pk).exists()
    # nor through the bulk action
    changelist = reverse("admin:annotation_projectmembership_changelist")
    client.post(
        changelist,
        {"action": "delete_selected", "_selected_action": [last_admin.pk], "post": "yes"},
    )
    assert ProjectMembership.objects.filter(pk=last_admin.pk).exists()
    # nor by demoting it on its change page: the rule's message, and the role stays
    change = reverse("admin:annotation_projectmembership_change", args=[last_admin.pk])
    answer = client.post(
        change,
        {"project": world.project.pk, "user": world.admin.pk, "role": "annotator"},
        follow=True,
    )
    assert "项目必须至少保留一名管理员" in answer.content.decode()  # E107, in the page language
    last_admin.refresh_from_db()
    assert last_admin.role == "admin"

    member = ProjectMembership.objects.get(project=world.project, user=world.annotator)
    url = reverse("admin:annotation_projectmembership_delete", args=[member.pk])
    client.post(url, {"post": "yes"})
    assert not ProjectMembership.objects.filter(pk=member.pk).exists()
    held.refresh_from_db()
    assert held.assignee is None and held.assigned_until is None


@pytest.mark.django_db
def test_deleting_an_annotation_reopens_its_document(world):
    client = _operator(world)
    doc = world.document(status="validated")
    annotation = Annotation.objects.create(document=doc, spans=[], validated=True)
    client.post(
        reverse("admin:annotation_annotation_delete", args=[annotation.pk]), {"post": "yes"}
    )
    doc.refresh_from_db()
    assert not Annotation.objects.filter(document=doc).exists()
    assert doc.status == "new"  # back in the pool, to be predicted and reviewed


@pytest.mark.django_db
def test_admin_deletes_a_whole_project(
    world, settings, tmp_path, django_capture_on_commit_callbacks
):
    from annotation.models import Project

    settings.BUNDLE_DIR = tmp_path
    (tmp_path / f"project-{world.project.pk}" / "v1").mkdir(parents=True)
    client = _operator(world)
    doc = world.document()
    Annotation.objects.create(document=doc, spans=[], validated=True)
    url = reverse("admin:annotation_project_delete", args=[world.project.pk])
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {"post": "yes"})
    assert not Project.objects.filter(pk=world.project.pk).exists()
    assert not (tmp_path / f"project-{world.project.pk}").exists()
