"""The API's one pagination: pages of 100 rows by default, ``?page_size=`` up to 1,000."""

from django.utils.translation import gettext as _
from rest_framework import serializers
from rest_framework.pagination import PageNumberPagination


class Pages(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 1000

    def get_page_size(self, request):
        """A page size that is not a whole number of at least 1 is refused (400), not
        replaced by the default and copied into the ``next`` link as it came; one over
        1,000 gets pages of 1,000."""
        raw = request.query_params.get(self.page_size_query_param)
        if raw is not None and not (raw.isascii() and raw.isdigit() and int(raw) >= 1):
            raise serializers.ValidationError(
                {
                    self.page_size_query_param: [
                        _("page_size must be a whole number from 1 (at most %(max)d are given)")
                        % {"max": self.max_page_size}
                    ]
                }
            )
        return super().get_page_size(request)
