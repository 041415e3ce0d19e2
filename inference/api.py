"""``POST /api/v1/predict``: the playground and REST clients ask the served model directly.

Short texts only (settings bound the size), answered in the request; stored documents are
predicted by the ``inference`` Celery queue instead. Every error has the catalogue's shape:
E203 for a bad request, E201 (503) when no model can answer.
"""

from __future__ import annotations

import time

from drf_spectacular.utils import OpenApiExample, PolymorphicProxySerializer, extend_schema
from rest_framework.exceptions import ParseError, UnsupportedMediaType
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from nerloop.errors import CodedAPIException
from nerloop.schema import ErrorSerializer

from . import registry
from .engine import ModelBundle, ModelNotReady
from .serializers import (
    PredictBatchResponseSerializer,
    PredictRequestSerializer,
    PredictResponseSerializer,
    prediction_payload,
)


def resolve_bundle(request, data: dict) -> ModelBundle:
    """The one place that decides which model answers a request.

    With a ``project``, that project's active model (or the default bundle while it has none),
    for members of any role, clients included; anyone else gets 404 as for every project URL.
    Without one, the platform's default bundle. Raises ModelNotReady when nothing can load.
    """
    if data.get("project") is None:
        return registry.default()
    from annotation.permissions import project_and_role
    from annotation.predicting import serving_bundle

    project, _role = project_and_role(request.user, data["project"])
    return serving_bundle(project)


def _request_data(request):
    """The parsed JSON body; a body that is not JSON is a bad predict request (E203): 400
    when it does not parse, 415 when it is sent as another media type."""
    try:
        return request.data
    except (ParseError, UnsupportedMediaType) as exc:
        raise CodedAPIException(
            "E203", detail=f"the body must be JSON: {exc.detail}", status_code=exc.status_code
        ) from exc


class PredictView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="predict",
        summary="Tag one text or a batch of texts with the served model",
        request=PredictRequestSerializer,
        responses={
            200: PolymorphicProxySerializer(
                component_name="PredictResult",
                serializers=[PredictResponseSerializer, PredictBatchResponseSerializer],
                resource_type_field_name=None,
            ),
            400: ErrorSerializer,
            403: ErrorSerializer,
            404: ErrorSerializer,
            413: ErrorSerializer,
            415: ErrorSerializer,
            503: ErrorSerializer,
        },
        examples=[
            OpenApiExample("one text", value={"text": "张三在北京工作。"}, request_only=True),
            OpenApiExample(
                "a batch", value={"texts": ["张三在北京。", "李四去了上海。"]}, request_only=True
            ),
        ],
    )
    def post(self, request):
        began = time.perf_counter()
        serializer = PredictRequestSerializer(data=_request_data(request))
        if not serializer.is_valid():
            raise CodedAPIException("E203", detail=serializer.errors)
        data = serializer.validated_data
        single = "text" in data
        try:
            model = resolve_bundle(request, data)
            results = model.predict([data["text"]] if single else data["texts"])
        except ModelNotReady as exc:
            raise CodedAPIException("E201", detail=str(exc), status_code=503) from exc
        payloads = [prediction_payload(result) for result in results]
        body = payloads[0] if single else {"results": payloads}
        body["model_version"] = model.version
        body["took_ms"] = round((time.perf_counter() - began) * 1000, 2)
        return Response(body)
