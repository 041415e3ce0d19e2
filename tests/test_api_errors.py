"""Every answer under /api/ is the API's JSON error envelope, never an HTML page."""

import json

import pytest

from annotation.models import Document

pytestmark = pytest.mark.django_db


def _error(response, status: int, code: str) -> dict:
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code
    return error


@pytest.mark.parametrize("path", ["/api/v1/predict", "/api/v1/projects/{pk}/documents"])
def test_api_a_body_over_the_limit_is_refused_in_json(world, settings, path):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000
    body = json.dumps({"text": "张" * 5000} if "predict" in path else [{"text": "张" * 5000}])
    response = world.api("admin").post(
        path.format(pk=world.project.pk), data=body, content_type="application/json"
    )
    error = _error(response, 413, "too_large")
    assert "2000 bytes" in error["message"] and "NERLOOP_MAX_BODY_BYTES" in error["message"]
    assert not Document.objects.exists()


@pytest.mark.parametrize(
    "path",
    ["/api/v1/nope", "/api/v1/projects/{pk}/export/csv", "/api/v1/projects/{pk}/documents/x"],
)
def test_api_an_unknown_url_is_a_json_404(world, path):
    response = world.api("admin").get(path.format(pk=world.project.pk))
    assert "no API endpoint at" in _error(response, 404, "not_found")["message"]


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_api_an_unknown_url_is_a_json_404_for_every_method_without_csrf(world, method):
    """A token client (no cookie, no CSRF token) that adds a trailing slash learns the URL is
    wrong, not that its CSRF token is."""
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    response = getattr(client, method)(
        "/api/v1/predict/", data={"text": "张伟"}, content_type="application/json"
    )
    assert "no API endpoint at /api/v1/predict/" in _error(response, 404, "not_found")["message"]


def test_api_a_missing_object_and_a_missing_project_give_the_same_code(world):
    api = world.api("admin")
    other = world.document(project=world.other_project)
    missing_doc = api.get(f"/api/v1/projects/{world.project.pk}/documents/{other.pk}")
    missing_project = api.get("/api/v1/projects/999999")
    _error(missing_doc, 404, "not_found")
    _error(missing_project, 404, "not_found")


def test_api_a_validation_error_names_the_field_in_its_message(world):
    url = f"/api/v1/projects/{world.project.pk}"
    response = world.api("admin").patch(url, {"batch_size": 0}, format="json")
    error = _error(response, 400, "invalid")
    assert error["message"].startswith("batch_size: ")
    assert error["detail"]["batch_size"]


def test_api_catalogue_messages_follow_the_requests_language(world):
    """One language per answer: the catalogue's message is translated like DRF's own."""
    api = world.api("admin")
    url = f"/api/v1/projects/{world.project.pk}"
    body = {"labels": [{"name": "PER"}, {"name": "PER"}]}
    chinese = api.patch(url, body, format="json", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert _error(chinese, 400, "E106")["message"] == "标签设置无效"
    english = api.patch(url, body, format="json", HTTP_ACCEPT_LANGUAGE="en")
    assert _error(english, 400, "E106")["message"] == "invalid label schema"


def test_an_unexpected_failure_answers_the_api_in_json_and_a_browser_in_html(world, monkeypatch):
    """The database gone, a bug: a token client still gets the JSON envelope."""
    from django.db.utils import OperationalError

    def broken(*args, **kwargs):
        raise OperationalError("could not connect to server")

    monkeypatch.setattr("annotation.api.ProjectListView.get_queryset", broken)
    api = world.api("admin")
    api.raise_request_exception = False
    error = _error(api.get("/api/v1/projects"), 500, "server_error")
    assert "try again" in error["message"] or "重试" in error["message"]

    from django.test import RequestFactory

    from nerloop.errors import server_error

    page = server_error(RequestFactory().get("/projects/"))  # a page: Django's own HTML
    assert page.status_code == 500 and not page["Content-Type"].startswith("application/json")
