"""Django admin for model versions and training runs."""

from django.contrib import admin

from .models import ModelVersion, TrainingRun


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "version", "status", "f1", "train_sentences", "created"]
    list_filter = ["status", "project"]
    raw_id_fields = ["parent"]


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "trigger", "state", "started", "finished"]
    list_filter = ["state", "trigger", "project"]
    raw_id_fields = ["model_version", "requested_by"]
