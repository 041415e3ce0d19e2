import os
import shutil
import tempfile
from pathlib import Path

import pytest
from django.conf import settings

pytest_plugins = ["tests.base"]


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    path = Path(settings.DATASETS_DIR)
    if not path.is_dir():
        pytest.skip(f"shared datasets not found at {path}")
    return path


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory):
    """On SQLite, test in a file rather than Django's shared-cache memory database: a worker
    thread and the test can then use it at once (shared cache locks whole tables)."""
    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3"):
        name = tmp_path_factory.mktemp("database") / "test.sqlite3"
        database.setdefault("TEST", {})["NAME"] = str(name)


def pytest_configure(config):
    os.environ.setdefault("SECRET_KEY", "test-only-secret")
    isolate_broker()
    # This process's own cache: the failed-login counts of one test (or of `make run` on the
    # same Redis) must not lock out the next. Set before anything touches the cache.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    # No default model unless a test installs one (the default_bundle fixture): the demo model
    # that `make run` trains into var/ must not change what the tests see (it made the metrics
    # endpoint register it inside a query count).
    settings.DEFAULT_BUNDLE = str(Path(tempfile.gettempdir()) / "nerloop-test-no-default-model")


@pytest.fixture(autouse=True)
def _empty_cache():
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def broker_down(monkeypatch):
    """Point the Celery app at a port where nothing listens, for this test only (and drop the
    embedded broker's transport, which would otherwise stand in for the URL's)."""
    from nerloop.celery import app

    monkeypatch.setattr(app.conf, "broker_url", "redis://127.0.0.1:1/0")
    monkeypatch.setitem(app.conf, "broker_transport", None)


@pytest.fixture(autouse=True)
def _default_language():
    """Each test starts in LANGUAGE_CODE: a request activates its language in the thread,
    and an API call without Accept-Language (English) must not carry over to the next test."""
    from django.utils import translation

    translation.deactivate()
    yield
    translation.deactivate()


def isolate_broker() -> None:
    """Give this test session a broker namespace of its own, as pytest-django gives it a
    database of its own: otherwise a worker of `make run` or of another test session on the
    same broker takes this session's tasks and runs them against the wrong database.
    The Celery app reads these options lazily, so setting them before any test runs is enough.
    """
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    if settings.CELERY_BROKER_URL.startswith("filesystem"):
        folder = Path(tempfile.mkdtemp(prefix="nerloop-test-broker-"))
        options.update(
            data_folder_in=str(folder),
            data_folder_out=str(folder),
            control_folder=str(folder / "control"),
        )
    else:
        options["global_keyprefix"] = f"nerloop-test-{os.getpid()}:"


def pytest_unconfigure(config):
    """Drop this session's broker namespace (a few binding keys or a temporary folder)."""
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    prefix = options.get("global_keyprefix", "")
    if prefix.startswith("nerloop-test-"):
        import redis

        client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
    folder = options.get("data_folder_in", "")
    if Path(folder).name.startswith("nerloop-test-broker-"):
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def default_bundle(tmp_path):
    """A tiny bundle installed as the platform's default model."""
    from django.test import override_settings

    from inference import registry
    from tests.inference.conftest import build_tiny_bundle

    path = build_tiny_bundle(tmp_path / "default", version="tiny-default")
    with override_settings(DEFAULT_BUNDLE=str(path)):
        yield path
    registry.unload(path)
