"""Request and response shapes of the annotation API."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from learner.selection import STRATEGIES
from nerloop.serializers import RefusesUnknownFields

from .formats import UPLOAD_FORMATS
from .importing import GOLD_MODES, check_meta_keys
from .models import Annotation, Document, Project, ProjectMembership, Role, normalize_labels
from .tags import SCHEMES


class ProjectSerializer(RefusesUnknownFields, serializers.ModelSerializer):
    labels = serializers.JSONField(
        required=False,
        help_text='ordered labels: [{"name": "PER", "color": "#a78bfa", "hotkey": "1"}, ...]',
    )
    role = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = [
            "id",
            "name",
            "description",
            "labels",
            "retrain_threshold",
            "promotion_tolerance",
            "selection_strategy",
            "batch_size",
            "created",
            "role",
        ]
        read_only_fields = ["id", "created", "role"]
        extra_kwargs = {
            "retrain_threshold": {
                "min_value": 0,
                "max_value": 1_000_000,
                "help_text": "validated annotations since the last training run that start "
                "another; 0: only when an admin starts one",
            },
            "batch_size": {"min_value": 1, "max_value": 1000},
        }

    def get_role(self, project) -> str | None:
        roles = self.context.get("roles") or {}
        return roles.get(project.pk)

    def validate_labels(self, value):
        return normalize_labels(value)

    def validate_name(self, value):
        """Two of the caller's projects cannot share a name (in any case), or the project menu
        and the API listing could not tell them apart."""
        request = self.context.get("request")
        if request is not None and request.user.is_authenticated:
            same = Project.objects.filter(
                name__iexact=value, memberships__user=request.user
            ).exclude(pk=getattr(self.instance, "pk", None))
            if same.exists():
                raise serializers.ValidationError(
                    _("You already have a project named “%(name)s”.") % {"name": value}
                )
        return value

    def validate_selection_strategy(self, value):
        if value not in STRATEGIES:
            raise serializers.ValidationError(f"unknown strategy; known: {', '.join(STRATEGIES)}")
        return value

    def validate_promotion_tolerance(self, value):
        if not 0 <= value <= 1:
            raise serializers.ValidationError(_("must be between 0 and 1 (absolute F1)"))
        return value

    def update(self, instance, validated_data):
        """Applied to the stored row under its lock: two admins' edits at once both land (each
        request started from the project as it was), and a label still in use stays."""
        with transaction.atomic():
            project = instance.locked()
            labels = validated_data.pop("labels", None)
            if labels is not None:
                project.set_labels(labels)
            return super().update(project, validated_data)


class MemberSerializer(RefusesUnknownFields, serializers.ModelSerializer):
    username = serializers.SlugRelatedField(
        source="user",
        slug_field="username",
        queryset=get_user_model().objects.all(),
        error_messages={"does_not_exist": _("there is no user called {value}")},
    )
    role = serializers.ChoiceField(choices=Role.choices)

    class Meta:
        model = ProjectMembership
        fields = ["username", "role", "created"]
        read_only_fields = ["created"]


class DocumentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Document
        fields = [
            "id",
            "text",
            "meta",
            "split",
            "status",
            "uncertainty",
            "predicted_by",
            "priority",
            "created",
        ]


class AnnotationSerializer(serializers.ModelSerializer):
    """A document's annotation; GET of a document without one answers revision 0, no spans,
    and null annotator and times."""

    annotator = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    created = serializers.DateTimeField(read_only=True, allow_null=True)
    updated = serializers.DateTimeField(read_only=True, allow_null=True)

    class Meta:
        model = Annotation
        fields = ["spans", "revision", "validated", "annotator", "created", "updated"]


class DocumentDetailSerializer(DocumentSerializer):
    annotation = serializers.SerializerMethodField()
    prediction = serializers.SerializerMethodField()

    class Meta(DocumentSerializer.Meta):
        fields = DocumentSerializer.Meta.fields + ["annotation", "prediction"]

    def get_annotation(self, doc) -> dict | None:
        annotation = getattr(doc, "annotation", None)
        return None if annotation is None else AnnotationSerializer(annotation).data

    def get_prediction(self, doc) -> dict | None:
        prediction = doc.latest_prediction()
        if prediction is None:
            return None
        return {
            "spans": prediction.spans,
            "model_version": prediction.model_version.version,
            "mean_entropy": prediction.mean_entropy,
            "max_entropy": prediction.max_entropy,
            "least_confidence": prediction.least_confidence,
            "mnlp": prediction.mnlp,
            "created": prediction.created,
        }


class DocumentUpdateSerializer(RefusesUnknownFields, serializers.ModelSerializer):
    """What PATCH may change of a document: its split and its meta (a JSON object). The text
    stays: annotations and predictions are offsets into it."""

    class Meta:
        model = Document
        fields = ["split", "meta"]

    def validate_meta(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError(_("meta must be a JSON object"))
        try:
            check_meta_keys(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None
        return value

    def to_internal_value(self, data):
        fixed = sorted({"text", "status"} & set(data)) if isinstance(data, dict) else []
        if fixed:
            message = _("cannot be changed: delete the document and import it again")
            raise serializers.ValidationError({name: [message] for name in fixed})
        return super().to_internal_value(data)


class DocumentListSerializer(DocumentSerializer):
    """A row of the document list: the document and its annotation (null when none)."""

    annotation = AnnotationSerializer(read_only=True, allow_null=True)

    class Meta(DocumentSerializer.Meta):
        fields = DocumentSerializer.Meta.fields + ["annotation"]


class DocumentFilterSerializer(serializers.Serializer):
    q = serializers.CharField(
        required=False,
        max_length=200,
        help_text="only documents whose text contains this (letters in either case)",
    )
    status = serializers.ChoiceField(choices=Document.Status.choices, required=False)
    split = serializers.ChoiceField(choices=Document.Split.choices, required=False)
    has_prediction = serializers.BooleanField(required=False, allow_null=True, default=None)
    uncertainty_min = serializers.FloatField(required=False)
    uncertainty_max = serializers.FloatField(required=False)
    ordering = serializers.ChoiceField(
        choices=[
            "id",
            "-id",
            "uncertainty",
            "-uncertainty",
            "created",
            "-created",
            "annotated",
            "-annotated",
        ],
        help_text="annotated: by the time of the annotation's last submission",
        required=False,
    )


def _scheme_lowered(data):
    """The request's data with ``scheme`` in lower case: BIO, Bioes and bmes all work."""
    scheme = data.get("scheme") if hasattr(data, "get") else None
    if isinstance(scheme, str) and scheme != scheme.lower():
        data = data.copy()
        data["scheme"] = scheme.lower()
    return data


class ExportQuerySerializer(serializers.Serializer):
    def to_internal_value(self, data):
        return super().to_internal_value(_scheme_lowered(data))

    scheme = serializers.ChoiceField(
        choices=SCHEMES,
        default="bio",
        help_text="the tags of a CoNLL export: bio, bioes or bmes (other formats have none)",
    )
    split = serializers.ChoiceField(
        choices=Document.Split.choices, required=False, help_text="only this split"
    )
    annotated = serializers.BooleanField(
        default=False, help_text="only documents with an annotation (validated or draft)"
    )
    predictions = serializers.BooleanField(
        default=False,
        help_text="a document without an annotation gets the spans of the version that last "
        "predicted it (labels the project still has)",
    )


class ImportOptionsSerializer(RefusesUnknownFields, serializers.Serializer):
    """What a JSON batch and a file upload both may ask of an import."""

    extend_labels = serializers.BooleanField(default=False)
    skip_duplicates = serializers.BooleanField(
        default=False,
        help_text="true: documents whose text the project already has are not stored "
        "(counted in duplicates and skipped either way)",
    )
    drop_unknown_labels = serializers.BooleanField(
        default=False,
        help_text="true: spans of labels the project does not have are left out (a corpus "
        "imported for some of its types); extend_labels adds them instead",
    )


class BulkCreateSerializer(ImportOptionsSerializer):
    documents = serializers.ListField(child=serializers.JSONField(), allow_empty=False)
    split = serializers.ChoiceField(choices=Document.Split.choices, default="train")


class UploadSerializer(ImportOptionsSerializer):
    file = serializers.FileField()
    format = serializers.ChoiceField(
        choices=UPLOAD_FORMATS,
        required=False,
        allow_blank=True,
        help_text="text: one document per line (no spans); guessed from the file when absent",
    )
    scheme = serializers.ChoiceField(
        choices=SCHEMES, required=False, allow_blank=True, help_text="bio, bioes or bmes, any case"
    )

    def to_internal_value(self, data):
        return super().to_internal_value(_scheme_lowered(data))

    split = serializers.ChoiceField(
        choices=Document.Split.choices,
        required=False,
        allow_blank=True,
        help_text="every document to this split; by default a nerloop export's records go back "
        "to their own split (nerloop_split), others to train",
    )
    gold = serializers.ChoiceField(
        choices=GOLD_MODES,
        default="auto",
        help_text="which records become validated annotations. auto: those with spans, every "
        "CoNLL sentence (all O is an answer), and a nerloop export's human-validated records; a "
        "JSON lines or CLUENER record without spans imports as text to annotate. all: every "
        "record (a record without spans is an answer of no entity). none: text only, spans "
        "dropped (an unlabelled pool from a gold file)",
    )
    strict = serializers.BooleanField(
        default=True, help_text="false: repair ill-formed CoNLL tag sequences instead of refusing"
    )


class ImportResultSerializer(serializers.Serializer):
    documents = serializers.IntegerField(help_text="documents stored")
    annotated = serializers.IntegerField()
    labels_added = serializers.ListField(child=serializers.CharField())
    duplicates = serializers.IntegerField(
        help_text="documents of the import whose text the project already had, or an "
        "earlier document of the same import"
    )
    duplicates_other_split = serializers.IntegerField(
        help_text="of those, texts the project has in the other split (train vs eval): "
        "a model would be scored on what it trained on"
    )
    skipped = serializers.IntegerField(help_text="duplicates not stored (skip_duplicates)")
    eval_unanswered = serializers.IntegerField(
        help_text="eval documents stored without an answer (records without spans, with gold "
        "auto): no model is scored on them until someone annotates them; gold=all makes such "
        "a record an answer of no entity"
    )
    spans_dropped = serializers.IntegerField(
        help_text="spans left out for a label the project does not have (drop_unknown_labels)"
    )
    retrain_due = serializers.BooleanField(
        help_text="true: imported answers count as validated annotations, and with them the "
        "project reached its retrain_threshold, so the periodic check (every "
        "NERLOOP_RETRAIN_CHECK_SECONDS, default 60) starts a training run; set the threshold "
        "to 0 first to import without training"
    )
    ids = serializers.ListField(
        child=serializers.IntegerField(),
        required=False,
        help_text="the stored documents' ids, in order (JSON posts only; file uploads omit "
        "them); skipped duplicates have none",
    )


class SubmitSerializer(RefusesUnknownFields, serializers.Serializer):
    spans = serializers.JSONField()
    revision = serializers.IntegerField(min_value=0)
    draft = serializers.BooleanField(default=False)


class QueueNextSerializer(serializers.Serializer):
    exclude = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="the item on screen: keep it and give (claim) the one after it",
    )


class ActivitySerializer(serializers.Serializer):
    annotator = serializers.CharField(help_text="username")
    day = serializers.DateField(help_text="in the server's time zone")
    count = serializers.IntegerField(help_text="validated annotations last submitted that day")
