"""What every request body of the API shares."""

from __future__ import annotations

from collections.abc import Mapping

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers


class RefusesUnknownFields:
    """A body key that names no field of the serializer is refused (400) instead of being
    ignored, so a typo such as ``skip_duplicate`` does not quietly do the default. Read-only
    fields (an ``id`` sent back with the object just fetched) are still ignored."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                known = ", ".join(
                    name for name, field in self.fields.items() if not field.read_only
                )
                message = _("unknown field; this body takes: %(known)s") % {"known": known}
                raise serializers.ValidationError({name: [message] for name in unknown})
        return super().to_internal_value(data)
