"""Probes for a load balancer or a monitor; no login needed, nothing secret in the answer.

Both answer GET and HEAD, whatever the Host header says (``ProbeMiddleware``).

- ``GET /healthz``: the web process answers (liveness).
- ``GET /readyz``: it can do its work: the database answers, the broker accepts a connection,
  and the default model is loaded or loads. 200 with each check ``ok``, else 503 naming the
  failed check (a model that cannot load is reported but does not fail readiness: projects
  with their own model still work, and predictions without one get E201).
"""

from __future__ import annotations

from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_safe

from inference import registry
from nerloop.tasks import BrokerUnavailable, ensure_broker


@require_safe
def healthz(request):
    return JsonResponse({"status": "ok"})


@require_safe
def readyz(request):
    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 (whatever the driver raises)
        checks["database"] = f"unreachable: {type(exc).__name__}"
    try:
        ensure_broker()
        checks["broker"] = "ok"
    except BrokerUnavailable:
        checks["broker"] = "unreachable"
    try:
        checks["default_model"] = f"ok ({registry.default().version})"
    except registry.ModelNotReady as exc:
        checks["default_model"] = f"not loaded: {exc}"
    ready = checks["database"] == "ok" and checks["broker"] == "ok"
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503
    )


PROBES = {"/healthz": healthz, "/readyz": readyz}


class ProbeMiddleware:
    """Answers the probes before any other middleware. A load balancer or an orchestrator
    probing by address (``Host: 10.0.0.5:8000``) names no host of ALLOWED_HOSTS, and Django
    would answer 400 DisallowedHost; probes reveal nothing and change nothing, so their Host
    is not checked. A HEAD gets the status and headers without the body."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        view = PROBES.get(request.path_info)
        if view is None:
            return self.get_response(request)
        response = view(request)
        if request.method == "HEAD":
            headless = HttpResponse(status=response.status_code)
            headless["Content-Type"] = response["Content-Type"]
            return headless
        return response
