"""REST endpoints of the annotation platform (mounted under /api/v1/).

Views authenticate, check the caller's role in the URL's project (``annotation.permissions``
sets ``self.project`` and ``self.role``), validate the request with a serializer, call one
model method or service and respond. Nothing slow runs here: prediction is queued.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import generics, serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import NotAuthenticated, NotFound, PermissionDenied, Throttled
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import SAFE_METHODS
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from nerloop import logins
from nerloop.errors import BodyTooLarge
from nerloop.parsers import StrictJSONParser
from nerloop.schema import ErrorSerializer

from . import exporting, importing, progress, queue
from .models import Annotation, Document, Project, ProjectMembership, Role
from .permissions import IsProjectAdmin, IsProjectAnnotator, IsProjectMember
from .serializers import (
    ActivitySerializer,
    AnnotationSerializer,
    BulkCreateSerializer,
    DocumentDetailSerializer,
    DocumentFilterSerializer,
    DocumentListSerializer,
    DocumentSerializer,
    DocumentUpdateSerializer,
    ExportQuerySerializer,
    ImportResultSerializer,
    MemberSerializer,
    ProjectSerializer,
    QueueNextSerializer,
    SubmitSerializer,
    UploadSerializer,
)


class TokenView(ObtainAuthToken):
    """POST ``{"username", "password"}`` gives the user's API token; DELETE (authenticated)
    revokes the caller's token, and the next POST makes a new one. Changing a password also
    revokes it (``annotation.tokens``). An address with too many wrong passwords gets 429
    (``nerloop.logins``)."""

    parser_classes = [StrictJSONParser, FormParser]
    authentication_classes = api_settings.DEFAULT_AUTHENTICATION_CLASSES

    @extend_schema(
        request=inline_serializer(
            "Credentials",
            {"username": serializers.CharField(), "password": serializers.CharField()},
        ),
        responses={
            200: inline_serializer("TokenAnswer", {"token": serializers.CharField()}),
            400: ErrorSerializer,
            429: ErrorSerializer,
        },
        auth=[],  # the one call that needs no credentials
    )
    def post(self, request, *args, **kwargs):
        username = request.data.get("username") if hasattr(request.data, "get") else None
        if wait := logins.seconds_locked(request, username):
            raise Throttled(wait, detail=_("too many failed logins from this address."))
        return super().post(request, *args, **kwargs)

    @extend_schema(request=None, responses={204: None, 401: ErrorSerializer})
    def delete(self, request):
        if not request.user.is_authenticated:
            raise NotAuthenticated()
        Token.objects.filter(user=request.user).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


CREATE_PROJECTS = "annotation.add_project"


class ProjectListView(generics.ListCreateAPIView):
    """Projects the caller belongs to; creating one (superusers, and users granted "Can add
    project") makes the caller its admin."""

    error_statuses = {"POST": ("403",)}  # without the permission to create projects

    serializer_class = ProjectSerializer

    def get_queryset(self):
        user = self.request.user
        return Project.objects.all() if user.is_superuser else user.projects.all()

    def get_serializer_context(self):
        roles = dict(
            ProjectMembership.objects.filter(user=self.request.user).values_list("project", "role")
        )
        if self.request.user.is_superuser:
            roles = {pk: Role.ADMIN for pk in Project.objects.values_list("pk", flat=True)}
        return {**super().get_serializer_context(), "roles": roles}

    def create(self, request, *args, **kwargs):
        # A project's admin may train on the shared workers and import; a predict-only
        # pipeline account must not make itself one. Superusers, and users granted "Can add
        # project" (Django admin, user or group), may create projects.
        if not request.user.has_perm(CREATE_PROJECTS):
            raise PermissionDenied(
                _(
                    "creating projects needs the 'Can add project' permission, which an "
                    "administrator grants in Django admin"
                )
            )
        return super().create(request, *args, **kwargs)

    def perform_create(self, serializer):
        project = serializer.save(created_by=self.request.user)
        project.add_member(self.request.user, Role.ADMIN)
        serializer.context["roles"] = {project.pk: Role.ADMIN}


class ProjectDetailView(generics.RetrieveUpdateDestroyAPIView):
    """Read a project (any member); change its name, labels or settings, or delete it with
    everything in it (admins; 409 E108 while a training run is queued or running)."""

    error_statuses = {"DELETE": ("409",)}  # E108 while training

    serializer_class = ProjectSerializer
    # PATCH changes what it names; a PUT would take a partial body the same way, so there is
    # one way (as for documents)
    http_method_names = ["get", "patch", "delete", "head", "options"]

    def get_permissions(self):
        if self.request.method in SAFE_METHODS:
            return [IsProjectMember()]
        return [IsProjectAdmin()]

    def get_object(self):
        return self.project

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "roles": {self.project.pk: self.role}}

    def perform_destroy(self, instance):
        instance.delete_everything()


class MemberListView(generics.ListCreateAPIView):
    """Who works on the project; POST adds a user or changes their role (admins)."""

    error_statuses = {"POST": ("409",)}  # E107: demoting the last admin

    serializer_class = MemberSerializer
    permission_classes = [IsProjectAdmin]
    pagination_class = None

    def get_queryset(self):
        return self.project.memberships.select_related("user").order_by("id")

    @extend_schema(responses={200: MemberSerializer, 201: MemberSerializer})
    def post(self, request, *args, **kwargs):
        """201 when the user joins the project, 200 when an existing member's role changes."""
        response = self.create(request, *args, **kwargs)
        if not self.joined:
            response.status_code = status.HTTP_200_OK
        return response

    def perform_create(self, serializer):
        data = serializer.validated_data
        self.joined = not self.project.memberships.filter(user=data["user"]).exists()
        serializer.instance = self.project.add_member(data["user"], data["role"])


class MemberDetailView(APIView):
    """DELETE takes a user off the project (admins); E107 for its last admin."""

    error_statuses = {"DELETE": ("409",)}  # E107: removing the last admin

    permission_classes = [IsProjectAdmin]

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, project_id, username):
        user = get_object_or_404(get_user_model(), username=username)
        if not self.project.remove_member(user):
            raise NotFound(f"{username} is not a member of this project")
        return Response(status=status.HTTP_204_NO_CONTENT)


class DocumentListView(generics.ListAPIView):
    """List documents with filters (annotators, admins); POST a JSON batch (admins); DELETE
    the documents the same filters list (admins; at least one filter)."""

    # a refused filter; E204 when the broker cannot take the new documents' predictions
    error_statuses = {"GET": ("400",), "DELETE": ("400",), "POST": ("503",)}

    serializer_class = DocumentListSerializer

    def get_permissions(self):
        if self.request.method in SAFE_METHODS:
            return [IsProjectAnnotator()]
        return [IsProjectAdmin()]

    def get_queryset(self):
        filters = DocumentFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        rows = self.project.documents.select_related("annotation__annotator")
        return filter_documents(rows, filters.validated_data)

    @extend_schema(parameters=[DocumentFilterSerializer])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(request=BulkCreateSerializer, responses={201: ImportResultSerializer})
    def post(self, request, project_id):
        body = {"documents": request.data} if isinstance(request.data, list) else request.data
        form = BulkCreateSerializer(data=body)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        entries = importing.entries_from_json(data["documents"], data["split"])
        result = importing.import_entries(
            self.project,
            entries,
            data["extend_labels"],
            skip_duplicates=data["skip_duplicates"],
            drop_unknown_labels=data["drop_unknown_labels"],
        )
        return Response(ImportResultSerializer(result).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="v1_projects_documents_destroy_listed",
        parameters=[DocumentFilterSerializer],
        request=None,
        responses={200: inline_serializer("Deleted", {"deleted": serializers.IntegerField()})},
    )
    def delete(self, request, project_id):
        """Delete what ``GET`` with the same filters lists, with annotations and predictions
        (a wrong import, say). Without a filter nothing is deleted: that is deleting the
        project."""
        filters = DocumentFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        named = {
            key: value
            for key, value in filters.validated_data.items()
            if key != "ordering" and value not in (None, "")
        }
        if not named:
            raise serializers.ValidationError(
                {"filters": [_("name at least one filter (q, status, split, ...)")]}
            )
        with transaction.atomic():
            rows = filter_documents(self.project.documents.all(), named).order_by()
            deleted = rows.count()
            Document.objects.filter(pk__in=rows.values("pk")).delete()
        return Response({"deleted": deleted})


def filter_documents(rows, data: dict):
    if data.get("q"):
        rows = rows.filter(text__icontains=data["q"])
    for field in ("status", "split"):
        if data.get(field):
            rows = rows.filter(**{field: data[field]})
    if data.get("has_prediction") is not None:
        rows = rows.filter(predicted_by__isnull=not data["has_prediction"])
    if data.get("uncertainty_min") is not None:
        rows = rows.filter(uncertainty__gte=data["uncertainty_min"])
    if data.get("uncertainty_max") is not None:
        rows = rows.filter(uncertainty__lte=data["uncertainty_max"])
    field = data.get("ordering") or "id"
    name = {"annotated": "annotation__updated"}.get(field.lstrip("-"), field.lstrip("-"))
    # Documents without the value (no prediction, no annotation) last either way, on every
    # database; the id breaks ties so that pages neither repeat nor skip a document.
    key = F(name).desc(nulls_last=True) if field.startswith("-") else F(name).asc(nulls_last=True)
    return rows.order_by(key, "id")


class DocumentUploadView(APIView):
    """Import a file (CLUENER, CoNLL, JSONL, Label Studio); gold spans become annotations."""

    # a body over NERLOOP_MAX_BODY_BYTES, a body that is not multipart, the broker down (E204)
    error_statuses = {"POST": ("413", "415", "503")}

    permission_classes = [IsProjectAdmin]
    parser_classes = [MultiPartParser]

    @extend_schema(request=UploadSerializer, responses={201: ImportResultSerializer})
    def post(self, request, project_id):
        # Django's body limit leaves file uploads out; an import runs within the request, so
        # the same limit holds here (a 44 MB file took five minutes, past any proxy timeout).
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            raise BodyTooLarge()
        form = UploadSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        entries = importing.entries_from_upload(
            data["file"],
            data.get("format"),
            data.get("scheme") or None,
            data.get("split") or None,
            data["gold"],
            data["strict"],
        )
        result = importing.import_entries(
            self.project,
            entries,
            data["extend_labels"],
            return_ids=False,
            skip_duplicates=data["skip_duplicates"],
            drop_unknown_labels=data["drop_unknown_labels"],
        )
        body = ImportResultSerializer(result).data
        body.pop("ids")  # a file may hold a million documents: list them with GET documents
        return Response(body, status=status.HTTP_201_CREATED)


class DocumentDetailView(generics.RetrieveUpdateDestroyAPIView):
    """One document with its annotation and latest prediction; PATCH moves it to the other
    split or replaces its meta, DELETE removes it with them (admins)."""

    serializer_class = DocumentDetailSerializer
    lookup_url_kwarg = "document_id"
    http_method_names = ["get", "patch", "delete", "head", "options"]

    @extend_schema(request=DocumentUpdateSerializer, responses=DocumentDetailSerializer)
    def patch(self, request, *args, **kwargs):
        document = self.get_object()
        form = DocumentUpdateSerializer(document, data=request.data, partial=True)
        form.is_valid(raise_exception=True)
        form.save()  # updates ``document`` in place
        return Response(DocumentDetailSerializer(document).data)

    def get_permissions(self):
        if self.request.method in SAFE_METHODS:
            return [IsProjectAnnotator()]
        return [IsProjectAdmin()]

    def get_queryset(self):
        return self.project.documents.select_related("annotation__annotator")


class AnnotationView(APIView):
    """GET the document's annotation; POST spans with the revision they were made on."""

    error_statuses = {"POST": ("409",)}  # E102: a stale revision

    permission_classes = [IsProjectAnnotator]

    def document(self, document_id) -> Document:
        rows = self.project.documents.select_related("annotation__annotator")
        return get_object_or_404(rows, pk=document_id)

    @extend_schema(responses=AnnotationSerializer)
    def get(self, request, project_id, document_id):
        annotation = getattr(self.document(document_id), "annotation", None)
        if annotation is None:
            return Response(
                {"spans": [], "revision": 0, "validated": False, "annotator": None,
                 "created": None, "updated": None}
            )  # fmt: skip
        return Response(AnnotationSerializer(annotation).data)

    @extend_schema(request=SubmitSerializer, responses=AnnotationSerializer)
    def post(self, request, project_id, document_id):
        form = SubmitSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        document = self.document(document_id)
        document.project = self.project
        annotation = Annotation.submit(
            document, request.user, data["spans"], data["revision"], validated=not data["draft"]
        )
        return Response(AnnotationSerializer(annotation).data)


QUEUE_ITEM = inline_serializer(
    "QueueItem",
    {
        "document": DocumentSerializer(),
        "assigned_until": serializers.DateTimeField(),
        "expires_in": serializers.FloatField(),
        "prediction": serializers.JSONField(allow_null=True),
        "annotation": serializers.JSONField(allow_null=True),
        "revision": serializers.IntegerField(),
    },
)


class QueueNextView(APIView):
    """The next document to review, assigned to the caller until it expires; 204 if none.

    ``?exclude=<id of the item on screen>`` gives the item after it (at most two held)."""

    error_statuses = {"GET": ("400",)}  # a refused ?exclude=

    permission_classes = [IsProjectAnnotator]

    @extend_schema(
        parameters=[QueueNextSerializer],
        responses={200: QUEUE_ITEM, 204: OpenApiResponse(description="queue empty")},
    )
    def get(self, request, project_id):
        form = QueueNextSerializer(data=request.query_params)
        form.is_valid(raise_exception=True)
        exclude = form.validated_data.get("exclude")
        document = queue.next_document(self.project, request.user, exclude)
        if document is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(queue.item(document))


class QueueActionView(APIView):
    """Skip (never offer it to me again) or release (give it back) my current item."""

    error_statuses = {"POST": ("409",)}  # E105: not yours

    permission_classes = [IsProjectAnnotator]
    queue_action = ""  # a Document method: "skip" or "release"

    @extend_schema(request=None, responses={204: None})
    def post(self, request, project_id, document_id):
        document = get_object_or_404(self.project.documents, pk=document_id)
        getattr(document, self.queue_action)(request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class _StreamWhateverIsAccepted(DefaultContentNegotiation):
    """The file goes out in its format's content type whatever the client's Accept header
    says (``application/octet-stream`` included); errors are JSON."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class ExportView(APIView):
    """Stream the project as a file: ``?split=train|eval``, ``?annotated=1`` to filter;
    ``?predictions=1`` fills documents without an annotation with the model's latest spans;
    ``?scheme=bioes`` (or bmes) for CoNLL tags other than BIO."""

    error_statuses = {"GET": ("400",)}  # a refused query string

    permission_classes = [IsProjectAdmin]
    content_negotiation_class = _StreamWhateverIsAccepted

    @extend_schema(
        parameters=[
            ExportQuerySerializer,
            OpenApiParameter("project_id", int, OpenApiParameter.PATH),
            OpenApiParameter(
                "fmt", str, OpenApiParameter.PATH, enum=sorted(exporting.CONTENT_TYPES)
            ),
        ],
        responses={
            (200, content_type): OpenApiTypes.BINARY
            for content_type in sorted({ct for ct, _ in exporting.CONTENT_TYPES.values()})
        },
    )
    def get(self, request, project_id, fmt):
        query = ExportQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        split = query.validated_data.get("split")
        annotated = query.validated_data["annotated"]
        predictions = query.validated_data["predictions"]
        content_type, extension = exporting.CONTENT_TYPES[fmt]
        chunks = exporting.export_chunks(
            self.project, fmt, split, annotated, predictions, query.validated_data["scheme"]
        )
        response = StreamingHttpResponse(chunks, content_type=f"{content_type}; charset=utf-8")
        name = f"project-{self.project.pk}-{fmt}.{extension}"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


class ProgressView(APIView):
    """Counts by status, predicted documents, pool and queue sizes, the active model, and
    the caller's validated annotations today (``done_today``)."""

    permission_classes = [IsProjectAnnotator]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, project_id):
        return Response(progress.progress(self.project, request.user))


class ActivityView(APIView):
    """Validated annotations per annotator per day over the last 30 days: everyone's for
    admins, an annotator's own for annotators (colleagues' output is not theirs to see)."""

    permission_classes = [IsProjectAnnotator]

    @extend_schema(responses=ActivitySerializer(many=True))
    def get(self, request, project_id):
        only = None if self.role == Role.ADMIN else request.user
        return Response(progress.activity(self.project, only))
