from django.urls import path, re_path

from . import api
from .formats import FORMATS

FORMAT_PATTERN = "|".join(sorted(FORMATS))
PROJECT = "projects/<int:project_id>"

urlpatterns = [
    path("auth/token", api.TokenView.as_view(), name="api-token"),
    path("projects", api.ProjectListView.as_view(), name="project-list"),
    path(f"{PROJECT}", api.ProjectDetailView.as_view(), name="project-detail"),
    path(f"{PROJECT}/members", api.MemberListView.as_view(), name="project-members"),
    path(
        f"{PROJECT}/members/<str:username>",
        api.MemberDetailView.as_view(),
        name="project-member",
    ),
    path(f"{PROJECT}/progress", api.ProgressView.as_view(), name="project-progress"),
    path(f"{PROJECT}/activity", api.ActivityView.as_view(), name="project-activity"),
    path(f"{PROJECT}/documents", api.DocumentListView.as_view(), name="document-list"),
    path(f"{PROJECT}/documents/upload", api.DocumentUploadView.as_view(), name="document-upload"),
    path(
        f"{PROJECT}/documents/<int:document_id>",
        api.DocumentDetailView.as_view(),
        name="document-detail",
    ),
    path(
        f"{PROJECT}/documents/<int:document_id>/annotation",
        api.AnnotationView.as_view(),
        name="annotation",
    ),
    path(f"{PROJECT}/queue/next", api.QueueNextView.as_view(), name="queue-next"),
    path(
        f"{PROJECT}/queue/<int:document_id>/skip",
        api.QueueActionView.as_view(queue_action="skip"),
        name="queue-skip",
    ),
    path(
        f"{PROJECT}/queue/<int:document_id>/release",
        api.QueueActionView.as_view(queue_action="release"),
        name="queue-release",
    ),
    re_path(
        rf"^projects/(?P<project_id>[0-9]+)/export/(?P<fmt>{FORMAT_PATTERN})$",
        api.ExportView.as_view(),
        name="project-export",
    ),
]
