"""Settings read from the environment, checked in a fresh process as a deployment starts it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

LOGIN_BEHIND_PROXY = """
import django, json
django.setup()
from django.conf import settings
print(json.dumps({
    "proxy_header": settings.SECURE_PROXY_SSL_HEADER,
    "secure_cookies": [settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE],
    "trusted": settings.CSRF_TRUSTED_ORIGINS,
    "proxies": settings.TRUSTED_PROXIES,
}))
"""


def start(code: str, cwd: Path = ROOT, **env) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh Python with the settings module and ``env`` (SECRET_KEY "x"
    unless given), from ``cwd``."""
    environ = {**os.environ, "DJANGO_SETTINGS_MODULE": "nerloop.settings", "SECRET_KEY": "x"}
    environ.update(env, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=environ, capture_output=True, text=True
    )


def django_process(code: str, cwd: Path = ROOT, **env) -> dict:
    done = start(code, cwd, **env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_behind_an_https_proxy_requests_are_https_and_cookies_secure():
    got = django_process(
        LOGIN_BEHIND_PROXY,
        NERLOOP_HTTPS_PROXY="1",
        NERLOOP_TRUSTED_PROXIES="1",
        NERLOOP_CSRF_TRUSTED_ORIGINS="https://ner.example.org, https://ner.example.org:8443",
    )
    assert got == {
        "proxy_header": ["HTTP_X_FORWARDED_PROTO", "https"],
        "secure_cookies": [True, True],
        "trusted": ["https://ner.example.org", "https://ner.example.org:8443"],
        "proxies": 1,
    }


def test_without_a_proxy_nothing_forwarded_is_trusted():
    got = django_process(LOGIN_BEHIND_PROXY)
    assert got["proxy_header"] is None and got["secure_cookies"] == [False, False]
    assert got["trusted"] == [] and got["proxies"] == 0


@pytest.mark.django_db
def test_the_login_form_works_through_an_https_proxy(settings, django_user_model):
    """What a TLS-terminating proxy sends: the browser's https Origin, X-Forwarded-Proto."""
    from django.test import Client

    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    django_user_model.objects.create_user("ann", password="pw-for-ann-1")
    browser = Client(enforce_csrf_checks=True)
    proxied = {"HTTP_X_FORWARDED_PROTO": "https", "HTTP_HOST": "testserver"}
    browser.get("/login/", **proxied)
    token = browser.cookies["csrftoken"].value
    answer = browser.post(
        "/login/",
        {"username": "ann", "password": "pw-for-ann-1", "csrfmiddlewaretoken": token},
        **proxied,
        HTTP_ORIGIN="https://testserver",
        HTTP_REFERER="https://testserver/login/",
    )
    assert answer.status_code == 302, answer.content.decode()[-1500:]


def test_the_env_example_names_every_setting_read():
    import re

    read = set(
        re.findall(
            r'env_(?:str|int|bool|list)\("([A-Z_]+)"', (ROOT / "nerloop/settings.py").read_text()
        )
    )
    example = (ROOT / ".env.example").read_text()
    named = set(re.findall(r"^#? ?([A-Z_]+)=", example, flags=re.MULTILINE))
    assert read - named == set()
    # paths left to their defaults (under the data folder): a relative one in .env would
    # override the image's own
    for path_setting in ("NERLOOP_STATIC_ROOT", "NERLOOP_DEFAULT_BUNDLE"):
        assert re.search(rf"^# {path_setting}=/", example, flags=re.MULTILINE)


def test_a_bad_log_level_is_refused_in_words():
    done = start("import django; django.setup()", NERLOOP_LOG_LEVEL="verbose")
    assert done.returncode != 0 and "NERLOOP_LOG_LEVEL='VERBOSE' is not DEBUG" in done.stderr


SETTINGS_READ = """
import django, json
django.setup()
from django.conf import settings
print(json.dumps({
    "debug": settings.DEBUG,
    "failures": settings.LOGIN_FAILURES,
    "data_dir": str(settings.DATA_DIR),
}))
"""


def test_every_setting_can_come_from_a_file(tmp_path):
    """NAME_FILE (a Docker or systemd secret) works for every setting, whatever its type:
    it used to be honoured by text settings only, so DEBUG_FILE was silently ignored."""
    (tmp_path / "debug").write_text("1\n")
    (tmp_path / "failures").write_text("5\n")
    got = django_process(
        SETTINGS_READ,
        DEBUG_FILE=str(tmp_path / "debug"),
        NERLOOP_LOGIN_FAILURES_FILE=str(tmp_path / "failures"),
    )
    assert (got["debug"], got["failures"]) == (True, 5)


def test_a_relative_data_dir_is_the_project_folders_whatever_the_working_directory(tmp_path):
    got = django_process(SETTINGS_READ, tmp_path, NERLOOP_DATA_DIR="var")
    assert got["data_dir"] == str(ROOT / "var")


def test_the_env_examples_placeholder_secret_key_is_refused():
    done = start("import django; django.setup()", SECRET_KEY="change-me", DEBUG="0")
    assert done.returncode != 0 and "placeholder" in done.stderr
