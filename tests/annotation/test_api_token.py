"""POST /api/v1/auth/token, and both ways of authenticating: token and session."""

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def test_token_is_issued_for_valid_credentials_and_authenticates(world):
    world.annotator.set_password("s3cret-pass")
    world.annotator.save()
    client = APIClient()
    response = client.post(
        "/api/v1/auth/token", {"username": "annotator", "password": "s3cret-pass"}, format="json"
    )
    assert response.status_code == 200
    token = response.json()["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get(f"/api/v1/projects/{world.project.pk}").status_code == 200


def test_token_is_refused_for_wrong_credentials(world):
    response = APIClient().post(
        "/api/v1/auth/token", {"username": "annotator", "password": "nope"}, format="json"
    )
    assert response.status_code == 400


def test_token_bad_token_is_refused(world):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef")
    response = client.get("/api/v1/projects")
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"
    assert response.json()["error"]["code"] == "authentication_failed"


def test_session_login_authenticates_with_csrf(world):
    world.admin.set_password("s3cret-pass")
    world.admin.save()
    client = APIClient(enforce_csrf_checks=True)
    assert client.login(username="admin", password="s3cret-pass")
    assert client.get("/api/v1/projects").status_code == 200
    refused = client.post("/api/v1/projects", {"name": "x"}, format="json")
    assert refused.status_code == 403  # a session write needs the CSRF token
