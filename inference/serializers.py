"""Request validation and response shapes of ``POST /api/v1/predict``.

Limits are read from settings at validation time (not at import), so a deployment's
``NERLOOP_PREDICT_MAX_CHARS``, ``NERLOOP_PREDICT_MAX_TEXTS`` and
``NERLOOP_PREDICT_MAX_TOTAL_CHARS`` and tests' override_settings both apply. Their messages are
in the request's language: the playground shows them as they come. Responses are built as
plain dicts (``prediction_payload``): the serializers below them only describe the shape for
the OpenAPI schema, keeping per-text overhead small.
"""

from __future__ import annotations

from django.conf import settings
from django.utils.translation import gettext as _
from rest_framework import serializers

from nerloop.serializers import RefusesUnknownFields

from .engine import TextPrediction


class StrictTextField(serializers.CharField):
    """A JSON string and nothing else: DRF's CharField would turn 123 into "123". (A lone
    surrogate or a NUL never gets here: ``nerloop.parsers.StrictJSONParser`` refuses the body.)"""

    def __init__(self, **kwargs):
        kwargs.setdefault("allow_blank", True)
        kwargs.setdefault("trim_whitespace", False)  # offsets are into the text as sent
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


def _check_length(text: str, where: str) -> None:
    limit = settings.PREDICT_MAX_CHARS
    if len(text) > limit:
        raise serializers.ValidationError(
            _("%(where)s has %(count)d characters; the limit is %(limit)d")
            % {"where": where, "count": len(text), "limit": limit}
        )


class PredictRequestSerializer(RefusesUnknownFields, serializers.Serializer):
    text = StrictTextField(
        required=False,
        help_text="one text; give this or texts. At most NERLOOP_PREDICT_MAX_CHARS "
        "(default 10,000) characters",
    )
    texts = serializers.ListField(
        child=StrictTextField(),
        required=False,
        allow_empty=False,
        help_text="several texts, answered in order; give this or text. At most "
        "NERLOOP_PREDICT_MAX_TEXTS (default 256) texts of NERLOOP_PREDICT_MAX_CHARS each, "
        "NERLOOP_PREDICT_MAX_TOTAL_CHARS (default 200,000) in all",
    )
    project = serializers.IntegerField(
        required=False,
        help_text="answer with this project's active model (any role in the project may ask)",
    )

    def validate_text(self, value: str) -> str:
        _check_length(value, "text")
        return value

    def validate_texts(self, value: list[str]) -> list[str]:
        limit = settings.PREDICT_MAX_TEXTS
        if len(value) > limit:
            raise serializers.ValidationError(
                _("%(count)d texts sent; the limit is %(limit)d")
                % {"count": len(value), "limit": limit}
            )
        for index, text in enumerate(value):
            _check_length(text, f"texts[{index}]")
        total, limit = sum(map(len, value)), settings.PREDICT_MAX_TOTAL_CHARS
        if total > limit:  # one request must not hold a web worker for many seconds
            raise serializers.ValidationError(
                _(
                    "the texts hold %(count)d characters in all; the limit is %(limit)d per "
                    "request: send them in several requests"
                )
                % {"count": total, "limit": limit}
            )
        return value

    def validate(self, attrs: dict) -> dict:
        given = [name for name in ("text", "texts") if name in self.initial_data]
        if len(given) != 1:
            problem = "both" if given else "neither"
            raise serializers.ValidationError(
                f"send exactly one of 'text' and 'texts' ({problem} given)"
            )
        return attrs


class EntitySerializer(serializers.Serializer):
    text = serializers.CharField()
    label = serializers.CharField()
    start = serializers.IntegerField(help_text="first character, in code points")
    end = serializers.IntegerField(help_text="one past the last character (exclusive)")
    score = serializers.FloatField(
        help_text="geometric mean of the CRF marginals of the span's tags on the best path"
    )


class UncertaintySerializer(serializers.Serializer):
    mean_entropy = serializers.FloatField()
    max_entropy = serializers.FloatField()
    least_confidence = serializers.FloatField(help_text="1 - P(best tag path)")
    mnlp = serializers.FloatField(help_text="log P(best tag path) / length")


class TextResultSerializer(serializers.Serializer):
    entities = EntitySerializer(many=True)
    uncertainty = UncertaintySerializer()


class PredictResponseSerializer(TextResultSerializer):
    model_version = serializers.CharField()
    took_ms = serializers.FloatField()


class PredictBatchResponseSerializer(serializers.Serializer):
    results = TextResultSerializer(many=True)
    model_version = serializers.CharField()
    took_ms = serializers.FloatField()


def prediction_payload(prediction: TextPrediction) -> dict:
    """One text's entities and uncertainty, JSON-ready."""
    return {
        "entities": [
            {
                "text": e.text,
                "label": e.label,
                "start": e.start,
                "end": e.end,
                "score": round(e.score, 4),
            }
            for e in prediction.entities
        ],
        "uncertainty": {key: round(value, 6) for key, value in prediction.uncertainty.items()},
    }
