"""JSON shapes of training runs, model versions and the metrics the dashboard draws."""

from __future__ import annotations

from rest_framework import serializers

from .models import ModelVersion, TrainingRun


class TrainingRunSerializer(serializers.ModelSerializer):
    duration = serializers.FloatField(read_only=True, allow_null=True)
    model_version = serializers.SlugRelatedField(
        slug_field="version", read_only=True, allow_null=True
    )

    class Meta:
        model = TrainingRun
        fields = [
            "id",
            "trigger",
            "state",
            "created",
            "started",
            "finished",
            "heartbeat",
            "duration",
            "error",
            "error_code",
            "model_version",
        ]
        read_only_fields = fields


class TrainingRunDetailSerializer(TrainingRunSerializer):
    class Meta(TrainingRunSerializer.Meta):
        fields = [*TrainingRunSerializer.Meta.fields, "log"]
        read_only_fields = fields


class ModelVersionSerializer(serializers.ModelSerializer):
    f1 = serializers.FloatField(read_only=True, allow_null=True)
    parent = serializers.SlugRelatedField(slug_field="version", read_only=True, allow_null=True)

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "version",
            "status",
            "arch",
            "f1",
            "metrics",
            "parent",
            "train_sentences",
            "train_chars",
            "trained_until",
            "gate_reason",
            "created",
            "activated",
        ]
        read_only_fields = fields


class TrainResponseSerializer(serializers.Serializer):
    created = serializers.BooleanField(help_text="false: a run was already queued or running")
    run = TrainingRunSerializer()


class TypeScoresSerializer(serializers.Serializer):
    precision = serializers.FloatField()
    recall = serializers.FloatField()
    f1 = serializers.FloatField()
    support = serializers.IntegerField()


class LabelsUsedSerializer(serializers.Serializer):
    sentences = serializers.IntegerField()
    characters = serializers.IntegerField()
    entities = serializers.DictField(child=serializers.IntegerField())


class VersionMetricsSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    version = serializers.CharField()
    status = serializers.CharField()
    created = serializers.DateTimeField()
    activated = serializers.DateTimeField(allow_null=True)
    parent = serializers.CharField(allow_null=True)
    labels = LabelsUsedSerializer()
    f1 = serializers.FloatField(allow_null=True)
    precision = serializers.FloatField(allow_null=True)
    recall = serializers.FloatField(allow_null=True)
    per_type = serializers.DictField(child=TypeScoresSerializer())
    served = serializers.CharField(allow_null=True, help_text="the graph scored: int8 or fp32")
    eval_sentences = serializers.IntegerField(allow_null=True)
    previous_f1 = serializers.FloatField(
        allow_null=True, help_text="the serving model's F1 on the same eval set when trained"
    )
    compared_with = serializers.CharField(
        allow_null=True,
        help_text="which model the gate compared with: 'active' (the project's own) or "
        "'default' (the platform's, while the project has none); null: none to compare with",
    )
    previous_f1_recorded = serializers.BooleanField(
        help_text="previous_f1 is the F1 recorded when that model was made: its bundle could "
        "not be scored when the gate ran"
    )
    warm_start = serializers.BooleanField(allow_null=True)
    timings = serializers.DictField(child=serializers.FloatField())
    gate_reason = serializers.CharField()
    bundle_pruned = serializers.DateTimeField(
        allow_null=True,
        help_text="when prune_versions removed its bundle folder (it can no longer be "
        "activated); null while the bundle is kept",
    )
    run = TrainingRunSerializer(allow_null=True)


class DefaultModelSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="activate it with versions/{id}/activate")
    version = serializers.CharField()
    f1 = serializers.FloatField(allow_null=True, help_text="on the default model's own data")
    project_f1 = serializers.FloatField(
        allow_null=True,
        help_text="on this project's eval set, as the last gate that compared a version with "
        "the default model scored it (null: never compared)",
    )
    project_f1_gate = serializers.CharField(
        allow_null=True, help_text="the version whose gate measured project_f1"
    )
    serving = serializers.BooleanField(help_text="true until a project version is active")


class MetricsSerializer(serializers.Serializer):
    project = serializers.IntegerField()
    active_version = serializers.CharField(allow_null=True)
    default_model = DefaultModelSerializer(
        allow_null=True, help_text="null when the default model's types do not fit the project"
    )
    cannot_train = serializers.CharField(
        allow_null=True, help_text="why a run cannot start now (null: it can)"
    )
    feedback_pool = serializers.IntegerField()
    new_since_last_run = serializers.IntegerField()
    retrain_threshold = serializers.IntegerField()
    busy_run = TrainingRunSerializer(allow_null=True)
    versions = VersionMetricsSerializer(many=True)
