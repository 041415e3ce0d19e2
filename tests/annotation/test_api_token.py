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


@pytest.fixture
def three_failures(settings):
    settings.LOGIN_FAILURES = 3
    settings.LOGIN_LOCKOUT_SECONDS = 600


def test_too_many_wrong_passwords_lock_the_address_out_of_tokens(world, three_failures):
    world.annotator.set_password("s3cret-pass")
    world.annotator.save()
    client = APIClient()
    for guess in ("a", "b", "c"):
        wrong = client.post(
            "/api/v1/auth/token", {"username": "annotator", "password": guess}, format="json"
        )
        assert wrong.status_code == 400
    locked = client.post(
        "/api/v1/auth/token",
        {"username": "annotator", "password": "s3cret-pass"},
        format="json",
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )
    assert locked.status_code == 429
    assert locked.json()["error"]["code"] == "throttled"
    assert locked.json()["error"]["message"].startswith("该地址登录失败次数过多。")
    # a client that names no language (curl, a script) is answered in English
    in_english = client.post(
        "/api/v1/auth/token", {"username": "annotator", "password": "s3cret-pass"}, format="json"
    )
    message = in_english.json()["error"]["message"]
    assert message.startswith("too many failed logins from this address.") and "seconds" in message
    assert 590 <= int(locked["Retry-After"]) <= 600
    # another address is not locked out
    other = APIClient(REMOTE_ADDR="10.0.0.7")
    assert (
        other.post(
            "/api/v1/auth/token",
            {"username": "annotator", "password": "s3cret-pass"},
            format="json",
        ).status_code
        == 200
    )


def test_the_lockout_ends_with_its_window(world, three_failures, monkeypatch):
    """On a clock the test moves (real seconds would make it depend on how fast three
    password checks run), the count and the lockout end with the window."""
    import time

    now = [time.time()]
    monkeypatch.setattr(time, "time", lambda: now[0])
    world.annotator.set_password("s3cret-pass")
    world.annotator.save()
    client = APIClient()
    for guess in ("a", "b", "c"):
        client.post(
            "/api/v1/auth/token", {"username": "annotator", "password": guess}, format="json"
        )
    body = {"username": "annotator", "password": "s3cret-pass"}
    now[0] += 599
    assert client.post("/api/v1/auth/token", body, format="json").status_code == 429
    now[0] += 2
    assert client.post("/api/v1/auth/token", body, format="json").status_code == 200


def test_login_page_and_token_share_the_count(world, three_failures):
    from django.test import Client

    world.annotator.set_password("s3cret-pass")
    world.annotator.save()
    browser = Client()
    for guess in ("a", "b"):
        page = browser.post("/login/", {"username": "annotator", "password": guess})
        assert page.status_code == 200 and "login-locked" not in page.content.decode()
    token = APIClient().post(
        "/api/v1/auth/token", {"username": "annotator", "password": "c"}, format="json"
    )
    assert token.status_code == 400
    browser.cookies["django_language"] = "en"
    page = browser.post("/login/", {"username": "annotator", "password": "s3cret-pass"})
    assert page.status_code == 200  # the form again, not a redirect into the platform
    assert "Too many failed logins from this address. Try again in 10 minutes." in (
        page.content.decode()
    )
    assert "_auth_user_id" not in browser.session


def test_the_lockout_message_is_translated(world, three_failures):
    from django.test import Client

    browser = Client()
    for guess in ("a", "b", "c", "d"):
        page = browser.post("/login/", {"username": "annotator", "password": guess})
    assert "此地址登录失败次数过多，请 10 分钟后再试。" in page.content.decode()


TOKEN = "/api/v1/auth/token"


def annotator_locked_out(world) -> tuple[APIClient, dict]:
    """A client that guessed the annotator's password wrong three times (the limit), and the
    right credentials."""
    world.annotator.set_password("s3cret-pass")
    world.annotator.save()
    client = APIClient()
    for guess in ("a", "b", "c"):
        client.post(TOKEN, {"username": "annotator", "password": guess}, format="json")
    return client, {"username": "annotator", "password": "s3cret-pass"}


def test_one_persons_typos_lock_out_that_account_not_the_address(world, three_failures):
    """Behind a shared proxy or NAT everyone has one address: an intern's typos must not lock
    the admin out; guessing many accounts from one place is still stopped."""
    world.admin.set_password("admin-pass-1")
    world.admin.save()
    client, annotator = annotator_locked_out(world)
    assert client.post(TOKEN, annotator, format="json").status_code == 429
    good = {"username": "admin", "password": "admin-pass-1"}
    assert client.post(TOKEN, good, format="json").status_code == 200
    for k in range(3 * 5):  # the address itself, over many accounts
        client.post(TOKEN, {"username": f"user{k}", "password": "x"}, format="json")
    assert client.post(TOKEN, good, format="json").status_code == 429


def test_behind_a_trusted_proxy_the_forwarded_address_is_counted(world, three_failures, settings):
    settings.TRUSTED_PROXIES = 1
    token = "/api/v1/auth/token"
    bad = {"username": "annotator", "password": "x"}
    for _ in range(3):  # a client spoofing its own X-Forwarded-For gains nothing
        APIClient(HTTP_X_FORWARDED_FOR=f"1.2.3.{_}, 203.0.113.9").post(token, bad, format="json")
    locked = APIClient(HTTP_X_FORWARDED_FOR="203.0.113.9").post(token, bad, format="json")
    assert locked.status_code == 429
    other = APIClient(HTTP_X_FORWARDED_FOR="198.51.100.7").post(token, bad, format="json")
    assert other.status_code == 400  # another client behind the same proxy


def test_one_account_guessed_from_many_addresses_is_locked_out_everywhere(
    world, three_failures, settings
):
    """Made-up X-Forwarded-For headers (a client reaching gunicorn without the proxy) or a
    botnet give every guess another address: the account's own count stops them."""
    from django.core.management import call_command

    settings.TRUSTED_PROXIES = 1
    world.annotator.set_password("s3cret-pass")
    world.annotator.save()
    world.admin.set_password("admin-pass-1")
    world.admin.save()
    bad = {"username": "annotator", "password": "x"}
    for k in range(3 * 5 - 1):  # one wrong guess from each address: under every other limit
        guess = APIClient(HTTP_X_FORWARDED_FOR=f"198.51.100.{k}").post(TOKEN, bad, format="json")
        assert guess.status_code == 400
    good = {"username": "annotator", "password": "s3cret-pass"}
    fresh = APIClient(HTTP_X_FORWARDED_FOR="203.0.113.50")
    assert fresh.post(TOKEN, good, format="json").status_code == 200  # not yet
    APIClient(HTTP_X_FORWARDED_FOR="198.51.100.99").post(TOKEN, bad, format="json")
    assert fresh.post(TOKEN, good, format="json").status_code == 429
    admin = {"username": "admin", "password": "admin-pass-1"}
    assert fresh.post(TOKEN, admin, format="json").status_code == 200  # others are not
    call_command("unlock_logins", "--user", "annotator")
    assert fresh.post(TOKEN, good, format="json").status_code == 200


def test_unlock_logins_ends_a_lockout(world, three_failures):
    from django.core.management import call_command

    client, good = annotator_locked_out(world)
    assert client.post(TOKEN, good, format="json").status_code == 429
    call_command("unlock_logins", "127.0.0.1", "--user", "annotator")
    assert client.post(TOKEN, good, format="json").status_code == 200


def test_without_its_cache_login_still_works(world, three_failures, monkeypatch):
    """A broken Redis must not keep the right password out (it used to answer 500)."""
    from django.core.cache import cache

    def down(*args, **kwargs):
        raise ConnectionError("cache down")

    for name in ("get", "add", "incr", "set"):
        monkeypatch.setattr(cache, name, down)
    world.annotator.set_password("s3cret-pass")
    world.annotator.save()
    client = APIClient()
    token = "/api/v1/auth/token"
    wrong = {"username": "annotator", "password": "no"}
    assert client.post(token, wrong, format="json").status_code == 400
    good = {"username": "annotator", "password": "s3cret-pass"}
    assert client.post(token, good, format="json").status_code == 200
