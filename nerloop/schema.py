"""The OpenAPI schema's view of errors: every operation lists the error body
(``nerloop.errors``) under the statuses it can fail with, unless the view says otherwise."""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers
from rest_framework.permissions import AllowAny


class ErrorBodySerializer(serializers.Serializer):
    code = serializers.CharField(help_text="E1xx annotation, E2xx inference, E3xx learner")
    message = serializers.CharField(help_text="in the request's language (Accept-Language)")
    detail = serializers.JSONField(
        help_text="what was wrong: a sentence, or field -> messages for a refused body"
    )


class ErrorSerializer(serializers.Serializer):
    error = ErrorBodySerializer()


class ErrorsAutoSchema(AutoSchema):
    def _get_response_bodies(self, direction="response"):
        bodies = super()._get_response_bodies(direction)
        if direction != "response":
            return bodies
        statuses = []
        if self.method in ("POST", "PUT", "PATCH"):
            statuses.append("400")
        permissions = self.view.get_permissions()
        if permissions and not any(isinstance(p, AllowAny) for p in permissions):
            statuses += ["401", "403"]
        if "{" in self.path:
            statuses.append("404")
        for code in statuses:
            bodies.setdefault(code, self._get_response_for_code(ErrorSerializer, code))
        return bodies
