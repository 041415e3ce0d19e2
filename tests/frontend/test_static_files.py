"""Static files with DEBUG off, as gunicorn serves them in the Docker image: collectstatic
fills STATIC_ROOT and WhiteNoise answers /static/ from the app itself."""

from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client

pytestmark = pytest.mark.django_db

SCRIPT = Path(settings.BASE_DIR) / "frontend" / "static" / "frontend" / "js" / "workspace.js"


@pytest.fixture
def collected(settings, tmp_path):
    settings.DEBUG = False
    settings.STATIC_ROOT = tmp_path / "static"
    call_command("collectstatic", interactive=False, verbosity=0)
    return settings.STATIC_ROOT


def test_static_files_are_served_with_debug_off(collected):
    response = Client().get("/static/frontend/js/workspace.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert b"".join(response.streaming_content) == SCRIPT.read_bytes()
    assert Client().get("/static/frontend/js/no-such-file.js").status_code == 404


def test_static_files_middleware_comes_right_after_security():
    middleware = settings.MIDDLEWARE
    security = middleware.index("django.middleware.security.SecurityMiddleware")
    assert middleware.index("whitenoise.middleware.WhiteNoiseMiddleware") == security + 1
    # before both only the probes, which answer whatever the Host header says
    assert middleware[:security] == ["nerloop.health.ProbeMiddleware"]
