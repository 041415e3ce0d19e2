from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from nerloop.errors import api_not_found

urlpatterns = [
    path("admin/", admin.site.urls),
    # /healthz and /readyz: nerloop.health.ProbeMiddleware answers them before any route
    path("api/v1/", include("inference.urls")),
    path("api/v1/", include("annotation.urls")),
    path("api/v1/", include("learner.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    re_path(r"^api/", api_not_found),
    path("", include("frontend.urls")),
]

handler500 = "nerloop.errors.server_error"
