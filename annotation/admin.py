"""Django admin for every annotation model: the fallback UI for an operator."""

from django.contrib import admin, messages
from django.shortcuts import redirect

from nerloop.errors import CodedAPIException, Errors

from .models import Annotation, Document, Prediction, Project, ProjectMembership, Role, Skip


class MembershipInline(admin.TabularInline):
    model = ProjectMembership
    extra = 0
    autocomplete_fields = ["user"]


class MembershipRules:
    """Memberships change through ``Project.add_member``/``remove_member`` here as in the API:
    a project keeps an admin (E107, shown as an error message), and a user taken off or made
    a client gives back the documents they held."""

    def _guarded(self, request, change) -> bool:
        try:
            change()
        except CodedAPIException as exc:
            self.message_user(request, str(exc.detail), messages.ERROR)
            return False
        return True

    def _save_membership(self, request, membership) -> None:
        if not self._guarded(
            request, lambda: membership.project.add_member(membership.user, membership.role)
        ):
            return
        membership.pk = ProjectMembership.objects.get(
            project=membership.project, user=membership.user
        ).pk

    def _delete_membership(self, request, membership) -> None:
        self._guarded(request, lambda: membership.project.remove_member(membership.user))


@admin.register(Project)
class ProjectAdmin(MembershipRules, admin.ModelAdmin):
    list_display = ["id", "name", "selection_strategy", "retrain_threshold", "created"]
    search_fields = ["name"]
    inlines = [MembershipInline]

    def delete_model(self, request, obj):  # as the API deletes it: bundles too, not mid-run
        self._guarded(request, obj.delete_everything)

    def delete_queryset(self, request, queryset):
        for project in queryset:
            self._guarded(request, project.delete_everything)

    def save_formset(self, request, form, formset, change):
        if formset.model is not ProjectMembership:
            return super().save_formset(request, form, formset, change)
        memberships = formset.save(commit=False)
        for membership in memberships:
            self._save_membership(request, membership)
        for membership in formset.deleted_objects:
            self._delete_membership(request, membership)


@admin.register(ProjectMembership)
class ProjectMembershipAdmin(MembershipRules, admin.ModelAdmin):
    list_display = ["project", "user", "role", "created"]
    list_filter = ["role"]
    autocomplete_fields = ["user", "project"]

    def save_model(self, request, obj, form, change):
        if change and "user" in form.changed_data:  # moved to another user: the old one leaves
            old = ProjectMembership.objects.get(pk=obj.pk)
            if not self._guarded(request, lambda: old.project.remove_member(old.user)):
                return
        self._save_membership(request, obj)

    def delete_view(self, request, object_id, extra_context=None):
        # the last admin's membership: E107's message instead of "deleted successfully"
        membership = self.get_object(request, object_id)
        if request.method == "POST" and membership is not None and membership.role == Role.ADMIN:
            project = membership.project
            if not project.memberships.filter(role=Role.ADMIN).exclude(pk=membership.pk).exists():
                self.message_user(request, Errors.E107, messages.ERROR)
                return redirect("admin:annotation_projectmembership_change", membership.pk)
        return super().delete_view(request, object_id, extra_context)

    def delete_model(self, request, obj):
        self._delete_membership(request, obj)

    def delete_queryset(self, request, queryset):
        for membership in queryset.select_related("project", "user"):
            self._delete_membership(request, membership)


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
