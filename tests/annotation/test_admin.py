"""Every model of the platform is in the Django admin, and its pages render."""

import pytest
from django.apps import apps
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
