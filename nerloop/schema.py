"""The OpenAPI schema's view of errors: every operation lists the error body
(``nerloop.errors``) under the statuses it can fail with. Besides those every operation of
its kind has, a view names its own in ``error_statuses`` (method -> statuses): a 409 of a
conflict, a 400 of a refused query string."""

from __future__ import annotations

from django.utils.functional import lazy
from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers
from rest_framework.permissions import AllowAny


def _codes_help() -> str:
    from django.utils.translation import override

    from .errors import Errors

    with override("en"):
        catalogue = "; ".join(
            f"{name} {getattr(Errors, name)}" for name in dir(Errors) if name[:1] == "E"
        )
    return (
        f"the catalogue's code ({catalogue}), or DRF's for what any endpoint can answer "
        "(invalid, parse_error, not_authenticated, authentication_failed, permission_denied, "
        "not_found, method_not_allowed, unsupported_media_type, not_acceptable, throttled, "
        "too_large)"
    )


class ErrorBodySerializer(serializers.Serializer):
    code = serializers.CharField(help_text=lazy(_codes_help, str)())
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
        if self.method in ("POST", "PUT", "PATCH") or self._is_list_view():
            statuses.append("400")  # a refused body, or a refused ?page_size=
        permissions = self.view.get_permissions()
        if permissions and not any(isinstance(p, AllowAny) for p in permissions):
            statuses += ["401", "403"]
        if "{" in self.path:
            statuses.append("404")
        statuses += getattr(self.view, "error_statuses", {}).get(self.method, ())
        for code in statuses:
            bodies.setdefault(code, self._get_response_for_code(ErrorSerializer, code))
        return bodies
