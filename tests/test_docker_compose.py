"""docker-compose.yml cannot run here (no Docker), so check that it says what it should and
that every command it runs exists in this project."""

import importlib
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.core.management import get_commands

ROOT = Path(__file__).resolve().parent.parent
APP_SERVICES = {"migrate", "web", "inference-worker", "training-worker", "beat"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def option(command: list[str], flag: str) -> str | None:
    for index, word in enumerate(command):
        if word == flag:
            return command[index + 1]
        if word.startswith(flag + "="):
            return word.split("=", 1)[1]
    return None


def test_compose_has_every_service(compose):
    assert set(compose["services"]) == APP_SERVICES | {"postgres", "redis"}


def test_compose_volumes_keep_the_database_and_bundles(compose):
    assert {"db", "bundles"} <= set(compose["volumes"])
    assert "db:/var/lib/postgresql/data" in compose["services"]["postgres"]["volumes"]
    for name in APP_SERVICES:
        service = compose["services"][name]
        assert "bundles:/data" in service["volumes"]
        assert service["environment"]["NERLOOP_DATA_DIR"] == "/data"


def test_compose_app_services_use_postgres_and_redis(compose):
    for name in APP_SERVICES:
        env = compose["services"][name]["environment"]
        assert env["DATABASE_URL"].startswith("postgres://") and "@postgres:" in env["DATABASE_URL"]
        assert env["REDIS_URL"] == "redis://redis:6379/0"
        assert (ROOT / compose["services"][name]["build"] / "Dockerfile").is_file()


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_compose_commands_exist_in_the_project(compose, name):
    command = compose["services"][name]["command"]
    program = command[0]
    if program == "gunicorn":
        module, _, attribute = command[1].partition(":")
        assert callable(getattr(importlib.import_module(module), attribute))
    elif program == "celery":
        assert option(command, "-A") == "nerloop"
        assert importlib.import_module("nerloop").celery_app.main == "nerloop"
        assert command[3] in {"worker", "beat"}
    elif program == "python":
        assert command[1] == "manage.py" and (ROOT / "manage.py").is_file()
        assert command[2] in get_commands()
    else:
        pytest.fail(f"{name} runs {program!r}, which this project does not provide")


def test_compose_workers_cover_every_queue(compose):
    consumed = {
        queue
        for name in ("inference-worker", "training-worker")
        for queue in option(compose["services"][name]["command"], "-Q").split(",")
    }
    assert consumed == {"control", "inference", "training"}
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    assert routed | {settings.CELERY_TASK_DEFAULT_QUEUE} <= consumed


def test_compose_beat_uses_the_database_scheduler(compose):
    assert settings.CELERY_BEAT_SCHEDULER.startswith("django_celery_beat")
    assert "beat" in compose["services"]["beat"]["command"]


def test_compose_dockerfile_copies_every_package():
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in ("nerloop", "annotation", "inference", "learner", "frontend"):
        assert f"COPY {package} ./{package}" in dockerfile


def test_compose_sets_up_an_admin_and_the_default_model(compose):
    """A fresh install answers predictions and has someone to log in as: the one-off service
    before the web server runs the embedded set-up (migrations, admin, default model)."""
    assert compose["services"]["migrate"]["command"][1:] == [
        "manage.py",
        "run_embedded",
        "--setup-only",
    ]
    assert compose["services"]["web"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )
