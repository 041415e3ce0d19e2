"""REST endpoints of the learning loop (mounted under /api/v1/projects/{id}/).

Starting a run and choosing the served version are for project admins; annotators and admins
read runs, versions and metrics; clients (predict only) and non-members get 403/404 as on
every project URL. Nothing slow runs here: a run is queued on the ``training`` queue.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.permissions import IsProjectAdmin, IsProjectAnnotator
from nerloop.errors import CodedAPIException
from nerloop.tasks import ensure_broker

from . import metrics, retraining
from .models import ModelVersion, TrainingRun
from .serializers import (
    MetricsSerializer,
    ModelVersionSerializer,
    TrainingRunDetailSerializer,
    TrainingRunSerializer,
    TrainResponseSerializer,
)


class TrainView(APIView):
    """Start a training run now; while one is queued or running, that one is returned."""

    error_statuses = {"POST": ("503",)}  # E204: the broker is unreachable

    permission_classes = [IsProjectAdmin]

    @extend_schema(
        request=None, responses={200: TrainResponseSerializer, 202: TrainResponseSerializer}
    )
    def post(self, request, project_id):
        ensure_broker()
        run, created = retraining.request_training(
            self.project, TrainingRun.Trigger.MANUAL, request.user
        )
        body = {"created": created, "run": TrainingRunSerializer(run).data}
        return Response(body, status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK)


class RunListView(generics.ListAPIView):
    serializer_class = TrainingRunSerializer
    permission_classes = [IsProjectAnnotator]

    def get_queryset(self):
        return self.project.training_runs.select_related("model_version").order_by("-id")


class RunDetailView(generics.RetrieveAPIView):
    serializer_class = TrainingRunDetailSerializer
    permission_classes = [IsProjectAnnotator]
    lookup_url_kwarg = "run_id"

    def get_queryset(self):
        return self.project.training_runs.select_related("model_version")


class CancelRunView(APIView):
    """Cancel a queued or running run (admins): it ends failed (E303, naming who cancelled
    it), a running one at its next epoch, and the serving model stays. 409 once it ended."""

    permission_classes = [IsProjectAdmin]
    error_statuses = {"POST": ("409",)}

    @extend_schema(request=None, responses=TrainingRunSerializer)
    def post(self, request, project_id, run_id):
        run = get_object_or_404(self.project.training_runs, pk=run_id)
        if not run.cancel(request.user):
            raise CodedAPIException(
                "E304", f"run {run.pk} has already ended ({run.state})", status_code=409
            )
        return Response(TrainingRunSerializer(run).data)


class VersionListView(generics.ListAPIView):
    serializer_class = ModelVersionSerializer
    permission_classes = [IsProjectAnnotator]

    def get_queryset(self):
        return self.project.model_versions.select_related("parent").order_by("-id")


class ActivateVersionView(APIView):
    """Serve this version now (rollback included), whatever the gate said."""

    error_statuses = {"POST": ("409", "503")}  # E202: its bundle fails verification; E204

    permission_classes = [IsProjectAdmin]

    @extend_schema(request=None, responses=ModelVersionSerializer)
    def post(self, request, project_id, version_id):
        version = ModelVersion.objects.filter(project=self.project, pk=version_id).first()
        if version is None:  # the default model, when it may serve the project
            version = metrics.default_model(self.project)
            if version is None or version.pk != version_id:
                raise NotFound(f"project {self.project.pk} has no model version {version_id}")
        ensure_broker()  # activation queues re-prediction and re-selection
        version = retraining.activate(version, self.project)
        return Response(ModelVersionSerializer(version).data)


class MetricsView(APIView):
    """Per model version: labels used, F1 overall and per type, timings, status."""

    permission_classes = [IsProjectAnnotator]

    @extend_schema(responses=MetricsSerializer)
    def get(self, request, project_id):
        return Response(metrics.project_metrics(self.project))
