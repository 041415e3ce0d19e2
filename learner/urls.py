from django.urls import path

from . import api

PROJECT = "projects/<int:project_id>"

urlpatterns = [
    path(f"{PROJECT}/train", api.TrainView.as_view(), name="project-train"),
    path(f"{PROJECT}/runs", api.RunListView.as_view(), name="training-run-list"),
    path(f"{PROJECT}/runs/<int:run_id>", api.RunDetailView.as_view(), name="training-run-detail"),
    path(
        f"{PROJECT}/runs/<int:run_id>/cancel",
        api.CancelRunView.as_view(),
        name="training-run-cancel",
    ),
    path(f"{PROJECT}/versions", api.VersionListView.as_view(), name="model-version-list"),
    path(
        f"{PROJECT}/versions/<int:version_id>/activate",
        api.ActivateVersionView.as_view(),
        name="model-version-activate",
    ),
    path(f"{PROJECT}/metrics", api.MetricsView.as_view(), name="project-metrics"),
]
