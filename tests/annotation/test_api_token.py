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


def _token(client, username: str, password: str) -> str:
    response = client.post(
        "/api/v1/auth/token", {"username": username, "password": password}, format="json"
    )
    assert response.status_code == 200
    return response.json()["token"]


def test_token_can_be_revoked_and_a_new_one_issued(world):
    world.annotator.set_password("s3cret-pass")
    world.annotator.save()
    client = APIClient()
    old = _token(client, "annotator", "s3cret-pass")
    client.credentials(HTTP_AUTHORIZATION=f"Token {old}")
    assert client.delete("/api/v1/auth/token").status_code == 204
    assert client.get("/api/v1/projects").status_code == 401
    new = _token(APIClient(), "annotator", "s3cret-pass")
    assert new != old
    assert APIClient().delete("/api/v1/auth/token").status_code == 401  # whose token?


def test_token_dies_with_the_password_it_was_issued_under(world):
    world.annotator.set_password("s3cret-pass")
    world.annotator.save()
    old = _token(APIClient(), "annotator", "s3cret-pass")
    world.annotator.first_name = "不是密码"
    world.annotator.save()  # other changes keep it
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {old}")
    assert client.get("/api/v1/projects").status_code == 200
    world.annotator.set_password("n3w-pass-after-a-leak")
    world.annotator.save()
    assert client.get("/api/v1/projects").status_code == 401
    assert _token(APIClient(), "annotator", "n3w-pass-after-a-leak") != old


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/api/v1/auth/token", "application/json"),
        ("/api/v1/predict", "application/json"),
        ("/api/v1/projects/{pk}/documents", "application/json"),
    ],
)
def test_api_refuses_json_nested_too_deeply_in_words(world, path, content_type):
    body = '[{"text": "x", "meta": ' + '{"a": ' * 5000 + "1" + "}" * 5000 + "}]"
    response = world.api("admin").post(
        path.format(pk=world.project.pk), data=body, content_type=content_type
    )
    assert response.status_code == 400
    assert "nested too deeply" in response.content.decode()
