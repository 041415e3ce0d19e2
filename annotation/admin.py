"""Django admin for every annotation model: the fallback UI for an operator."""

from django.contrib import admin

from .models import Annotation, Document, Prediction, Project, ProjectMembership, Skip


class MembershipInline(admin.TabularInline):
    model = ProjectMembership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "selection_strategy", "retrain_threshold", "created"]
    search_fields = ["name"]
    inlines = [MembershipInline]


@admin.register(ProjectMembership)
class ProjectMembershipAdmin(admin.ModelAdmin):
    list_display = ["project", "user", "role", "created"]
    list_filter = ["role"]
    autocomplete_fields = ["user", "project"]


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "short_text", "split", "status", "uncertainty", "assignee"]
    list_filter = ["status", "split", "project"]
    search_fields = ["text"]
    raw_id_fields = ["assignee", "predicted_by"]
    list_select_related = ["project", "assignee"]

    @admin.display(description="text")
    def short_text(self, obj):
        return obj.text[:60]


@admin.register(Prediction)
class PredictionAdmin(admin.ModelAdmin):
    list_display = ["id", "document", "model_version", "mean_entropy", "created"]
    raw_id_fields = ["document", "model_version"]
    exclude = ["embedding"]


@admin.register(Annotation)
class AnnotationAdmin(admin.ModelAdmin):
    list_display = ["id", "document", "annotator", "revision", "validated", "updated"]
    list_filter = ["validated"]
    raw_id_fields = ["document", "annotator"]


@admin.register(Skip)
class SkipAdmin(admin.ModelAdmin):
    list_display = ["document", "user", "created"]
    raw_id_fields = ["document", "user"]
